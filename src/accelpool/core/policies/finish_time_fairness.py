"""finish-time-fairness: Themis-style, equalize finish time relative to running alone on a fair share.

Notation (see core/allocation.py):

    iso_j = max_t tput[j,t] * min(1, cap[t] / (n * scale_j))    steps/s job j would get alone on an
            equal 1/n share of each type (the "isolated" speed; n = jobs that can run), with per-job
            fairness; with tenant fairness (the default) its fair share is its device target
            D_j = min(scale_j, fair weight) under the shares program -> tenant -> job (core.problem):
            iso_j = max_t tput[j,t] * min(1, D_j/scale_j)
            and w_j = 1 (the weights are in D_j)
    rho_j = finish time shared / finish time isolated = (R_j / eff_j) / (R_j / iso_j) = iso_j / eff_j
            for remaining steps R_j (the remaining-work form; elapsed time is not in the problem)

    w_j = the job's fair weight (hierarchical shares program -> tenant -> job, or its own weight)
    minimize max_j w_j * rho_j   <=>   maximize min_j eff_j / (w_j * iso_j)
    i.e. weighted max-min of sum_t a[j,t] x[j,t] with a[j,t] = tput[j,t] / (w_j * iso_j), solved and
    water-filled by the same engine as max-min-fairness (so it is Pareto-efficient as well).

``objective`` is the worst (largest) rho_j among jobs that can run.
"""

from __future__ import annotations

import time

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem
from accelpool.core.policies._seam import (
    build_rows,
    fill_spare,
    finish,
    uncontended,
    usable_mask,
)
from accelpool.core.policies._waterfill import max_min_waterfill

NAME = "finish-time-fairness"


def finish_time_fairness(problem: AllocationProblem) -> Allocation:
    """Minimize the largest weighted finish-time ratio rho_j, then water-fill."""
    started = time.perf_counter()
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    runnable = usable.any(axis=1)
    n_run = max(1, int(runnable.sum()))
    tput = np.where(usable, problem.throughput, 0.0)
    if problem.fairness == "tenant":
        # the job's fair share is its device target under the shares program -> tenant -> job
        share = np.minimum(1.0, problem.fair_weight / problem.scale)[:, None] * np.ones((1, problem.n_types))
        weight = np.ones(problem.n_jobs)
    else:
        share = np.minimum(1.0, problem.capacity[None, :] / (n_run * problem.scale[:, None]))
        weight = problem.fair_weight
    iso = (tput * share).max(axis=1) if problem.n_types else np.zeros(problem.n_jobs)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(iso[:, None] > 0, tput / (weight * np.maximum(iso, 1e-300))[:, None], 0.0)
    quick = uncontended(problem, usable, rows, a)
    if quick is not None:
        x, levels = quick, (a * quick).sum(axis=1)
    else:
        x, levels = max_min_waterfill(a, problem.scale, rows, usable)
        x = fill_spare(problem, usable, rows, x, a)
    final = (a * x).sum(axis=1)
    worst = float((1.0 / np.maximum(final[runnable], 1e-300)).max()) if runnable.any() else 0.0
    return finish(problem, x, rows, NAME, worst, started)
