"""max-throughput: the most total normalized throughput the pool can deliver (fairness ignored).

Notation (see core/allocation.py and _seam.py):

    a[j,t] = w_j * tput[j,t] / max_{t' usable} tput[j,t']     weighted normalized speed, so that steps/s
                                                               of different jobs are comparable
    maximize   sum_j sum_t a[j,t] x[j,t]
    s.t.       sum_t x[j,t] <= 1, every rule row and pool of _seam (capacity, reserve, caps, quotas)

Ties (equal totals) are broken toward earlier jobs by a tiny bonus (1e-9 per position), so the result
is deterministic. ``objective`` is the total normalized throughput.
"""

from __future__ import annotations

import time

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem
from accelpool.core.policies._seam import build_rows, fill_spare, finish, lp_model, uncontended, usable_mask

NAME = "max-throughput"


def max_throughput(problem: AllocationProblem) -> Allocation:
    """Maximize the sum of weighted normalized throughput over the rule-constrained polytope."""
    started = time.perf_counter()
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    tput = np.where(usable, problem.throughput, 0.0)
    best = tput.max(axis=1) if problem.n_types else np.zeros(problem.n_jobs)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(best[:, None] > 0, tput * (problem.weight / np.maximum(best, 1e-300))[:, None], 0.0)
    x = np.zeros((problem.n_jobs, problem.n_types))
    quick = uncontended(problem, usable, rows, a)
    if quick is not None:
        x = quick
    elif usable.any():
        model = lp_model(problem, usable, rows)
        cost = np.zeros(model.n_cols)
        bonus = 1e-9 * (problem.n_jobs - model.jobs) / max(problem.n_jobs, 1)
        cost[: model.n_x] = -(a[model.jobs, model.types] + bonus)
        res = model.solve(cost)
        if res.ok:
            x = model.x_matrix(res.x, problem.n_jobs, problem.n_types)
    x = fill_spare(problem, usable, rows, x, a)
    return finish(problem, x, rows, NAME, float((a * x).sum()), started)
