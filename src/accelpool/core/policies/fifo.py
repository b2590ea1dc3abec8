"""fifo: the heterogeneity-agnostic baseline of batch schedulers (Slurm without backfill weights).

Jobs in order of priority (high first), then submit time (early first), then position. Each job gets
all its wall time (x = 1) on the usable type with the most free devices under every rule row, if one has
room for its whole gang; otherwise it waits and later jobs may still start (backfill). A second pass lends quota devices their
owners left unused to jobs still waiting (work-conserving quotas). Speed is ignored:
the job counts devices, as a scheduler without a throughput model does.
"""

from __future__ import annotations

import time

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem, BoolArray, FloatArray
from accelpool.core.policies._seam import Ledger, build_rows, finish, lend_idle_quota, usable_mask

NAME = "fifo"


def fifo(problem: AllocationProblem) -> Allocation:
    """Whole jobs in priority, then submit-time order, each on the type with the most free devices."""
    started = time.perf_counter()
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    ledger = Ledger(problem, rows)
    x = np.zeros((problem.n_jobs, problem.n_types))
    order = np.lexsort((np.arange(problem.n_jobs), problem.submit_time, -problem.priority))
    types_of = _types_of(usable)
    placed = _place(ledger, order.tolist(), types_of, x)
    waiting = [j for j in order.tolist() if x[j].sum() == 0.0 and types_of[j]]
    if waiting and (rows.pool_of >= 0).any():
        # second pass: devices reserved by quota owners who did not use them are lent (work-conserving)
        lent = Ledger(problem, lend_idle_quota(problem, rows, x))
        lent.load(x)
        placed += _place(lent, waiting, types_of, x)
    return finish(problem, x, rows, NAME, float(placed), started)


def _place(ledger: Ledger, order: list[int], types_of: list[list[int]], x: FloatArray) -> int:
    """Place whole jobs in ``order``, each on the usable type with the most room; returns how many."""
    scale = ledger.scale_list
    placed = 0
    for j in order:
        need = scale[j]
        best, best_room = -1, -1.0
        for t in types_of[j]:
            room = ledger.room(j, t)
            if room + 1e-9 >= need and room > best_room:
                best, best_room = t, room
        if best >= 0:
            x[j, best] = 1.0
            ledger.add(j, best, need)
            placed += 1
    return placed


def _types_of(usable: BoolArray) -> list[list[int]]:
    """Usable type indices of each job, as Python lists."""
    rows, cols = np.nonzero(usable)
    out: list[list[int]] = [[] for _ in range(usable.shape[0])]
    for j, t in zip(rows.tolist(), cols.tolist(), strict=True):
        out[j].append(t)
    return out
