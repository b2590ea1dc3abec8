"""min-cost: meet each job's deadline at the lowest cost in KRW under per-type prices.

Notation (see core/allocation.py and _seam.py):

    price[t]   KRW per device-hour (integer);  cost of x = sum_j sum_t price[t] * s_j * x[j,t]  (KRW/h)
    D          jobs with a deadline and known remaining steps
    need_j     = min(R_j / time_to_deadline_j, max_t tput[j,t])   steps/s job j must average to finish
               in time (a job already past its deadline needs its best speed)
    u_j        shortfall, the fraction of need_j not met (0..1)

    phase 1:  minimize sum_{j in D} u_j
              s.t. sum_t tput[j,t] x[j,t] + need_j u_j >= need_j   (j in D)
                   sum_t x[j,t] <= 1, every rule row and pool of _seam, x = 0 for jobs not in D
    phase 2:  minimize cost(x)  s.t. the same rows and sum_{j in D} u_j <= phase-1 optimum (+1e-7)

Jobs without a deadline then take what capacity is left, cheapest KRW per step first. Budgets: a job
whose grant cannot pay for any usable type over the horizon gets nothing and is held with the reason
``budget`` (see _seam.budget_usable). ``objective`` is the cost rate of the allocation in KRW per hour.
"""

from __future__ import annotations

import time

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem
from accelpool.core.policies._seam import build_rows, fill_spare, finish, lp_model, usable_mask

NAME = "min-cost"


def min_cost(problem: AllocationProblem) -> Allocation:
    """Deadlines first (least shortfall), then the cheapest way to meet them; leftovers to the rest."""
    started = time.perf_counter()
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    n, tt = problem.n_jobs, problem.n_types
    tput = np.where(usable, problem.throughput, 0.0)
    best = tput.max(axis=1) if tt else np.zeros(n)
    finite = np.isfinite(problem.time_to_deadline) & np.isfinite(problem.remaining_steps)
    deadline = finite & (best > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(
            problem.time_to_deadline > 0, problem.remaining_steps / problem.time_to_deadline, np.inf
        )
    need = np.where(deadline, np.minimum(np.maximum(rate, 0.0), best), 0.0)
    x = np.zeros((n, tt))
    price_rate = problem.price_krw_per_hour.astype(np.float64)[None, :] * problem.scale[:, None]
    dl_usable = usable & deadline[:, None] & (need[:, None] > 0)
    if dl_usable.any():
        model = lp_model(problem, dl_usable, rows)
        dl = np.nonzero(dl_usable.any(axis=1))[0]
        first_u = model.add_cols(len(dl), 0.0, 1.0)
        local = np.full(n, -1)
        local[dl] = np.arange(len(dl))
        model.add_rows(
            np.concatenate([local[model.jobs], np.arange(len(dl))]),
            np.concatenate([np.arange(model.n_x), first_u + np.arange(len(dl))]),
            np.concatenate([tput[model.jobs, model.types], need[dl]]),
            need[dl],
            np.full(len(dl), np.inf),
        )
        cost = np.zeros(model.n_cols)
        cost[first_u : first_u + len(dl)] = 1.0
        res = model.solve(cost)
        if res.ok:
            shortfall = float(res.x[first_u : first_u + len(dl)].sum())
            model.add_rows(
                np.zeros(len(dl), dtype=np.int64),
                first_u + np.arange(len(dl)),
                np.ones(len(dl)),
                np.array([-np.inf]),
                np.array([shortfall + 1e-7 * (1.0 + shortfall)]),
            )
            cost = np.zeros(model.n_cols)
            cost[: model.n_x] = price_rate[model.jobs, model.types] + 1e-9
            res2 = model.solve(cost)
            x = model.x_matrix(res2.x if res2.ok else res.x, n, tt)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_step = np.where(tput > 0, price_rate / np.where(tput > 0, tput, 1.0), np.inf)
    rest = usable & ~deadline[:, None]
    x = fill_spare(problem, rest, rows, x, -per_step)
    return finish(problem, x, rows, NAME, float((price_rate * x).sum()), started)
