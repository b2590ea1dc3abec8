"""fair-share: heterogeneity-agnostic fair sharing of devices (what Slurm's fair-share and Kueue do).

Notation:

    C           devices of every type together that some job may use                     (devices)
    W_g, w_j    tenant weight (the sum of its jobs' fair weights: program -> tenant shares, see
                core.problem), job fair weight;  s_j devices job j asks for
    d_g         tenant g's fair share of C: weighted water-filling of C over tenants, capped at the
                devices its runnable jobs ask for (sum of s_j)
    d_j         job j's fair share of d_g: weighted water-filling within the tenant, capped at s_j
                (with per-job fairness, ``fairness="job"``: one water-filling of C over jobs by w_j)
    tau_j       = d_j / s_j, the fraction of wall time job j should run

Then jobs are placed, fewest-devices-share first, over their usable types in proportion to the free
devices of each (speed ignored: the average device), within every rule row; whatever capacity stays
idle goes to jobs with time to spare.
"""

from __future__ import annotations

import time

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem, FloatArray
from accelpool.core.policies._seam import Ledger, build_rows, fill_spare, finish, usable_mask
from accelpool.core.policies.fifo import _types_of
from accelpool.core.problem import water_fill_shares

NAME = "fair-share"


def fair_share(problem: AllocationProblem) -> Allocation:
    """Equal device shares per tenant weight, then per job weight; placed without regard to speed."""
    started = time.perf_counter()
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    n, tt = problem.n_jobs, problem.n_types
    runnable = usable.any(axis=1)
    demand = np.where(runnable, problem.scale, 0.0)
    total = float(problem.capacity[usable.any(axis=0)].sum()) if n else 0.0
    weight = problem.fair_weight
    if problem.fairness == "job":
        target = water_fill_shares(total, demand, weight)
    else:
        g = len(problem.tenant_ids)
        tenant_demand = np.bincount(problem.tenant_index, weights=demand, minlength=g)
        summed = np.bincount(problem.tenant_index, weights=weight, minlength=g)
        tenant_weight: FloatArray = np.where(summed > 0, summed, 1.0).astype(np.float64)
        tenant_share = water_fill_shares(total, tenant_demand.astype(np.float64), tenant_weight)
        target = np.zeros(n)
        for k in range(g):
            mine = np.nonzero(problem.tenant_index == k)[0]
            target[mine] = water_fill_shares(tenant_share[k], demand[mine], weight[mine])
    tau = np.where(demand > 0, target / np.maximum(problem.scale, 1.0), 0.0)
    x = np.zeros((n, tt))
    ledger = Ledger(problem, rows)
    scale = ledger.scale_list
    types_of = _types_of(usable)
    tau_list = tau.tolist()
    for j in np.lexsort((np.arange(n), -problem.priority, target)).tolist():
        want = tau_list[j]
        if want <= 1e-12:
            continue
        rooms = sorted((-ledger.room(j, t), t) for t in types_of[j])
        if len(rooms) > 1:
            # speed-blind: spread over the usable types in proportion to their room (the average device,
            # as an agnostic LP's interior solution does), then top up greedily where rules cut a share
            whole = -sum(r for r, _ in rooms)
            if whole > 1e-12:
                for neg_room, t in rooms:
                    take = min(want * (-neg_room) / whole, ledger.room(j, t) / scale[j])
                    if take > 1e-12:
                        x[j, t] += take
                        ledger.add(j, t, take * scale[j])
                want = tau_list[j] - float(x[j].sum())
        for neg_room, t in rooms:
            if want <= 1e-12:
                break
            room = -neg_room if len(rooms) == 1 else ledger.room(j, t)
            take = min(want, room / scale[j])
            if take > 1e-12:
                x[j, t] += take
                ledger.add(j, t, take * scale[j])
                want -= take
    order = np.repeat((-x.sum(axis=1))[:, None], tt, axis=1)
    x = fill_spare(problem, usable, rows, x, order)
    used = float((x * problem.scale[:, None]).sum())
    return finish(problem, x, rows, NAME, used, started)
