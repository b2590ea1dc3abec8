"""fifo: the heterogeneity-agnostic baseline of batch schedulers (Slurm without backfill weights).

Jobs in order of priority (high first), then submit time (early first), then position. Each job gets
all its wall time (x = 1) on the usable type with the most free devices under every rule row, if one has
room for its whole gang; otherwise it waits and later jobs may still start (backfill). Speed is ignored:
the job counts devices, as a scheduler without a throughput model does.
"""

from __future__ import annotations

import time

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem, BoolArray
from accelpool.core.policies._seam import Ledger, build_rows, finish, usable_mask

NAME = "fifo"


def fifo(problem: AllocationProblem) -> Allocation:
    """Whole jobs in priority, then submit-time order, each on the type with the most free devices."""
    started = time.perf_counter()
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    ledger = Ledger(problem, rows)
    x = np.zeros((problem.n_jobs, problem.n_types))
    order = np.lexsort((np.arange(problem.n_jobs), problem.submit_time, -problem.priority))
    placed = 0
    scale = ledger.scale_list
    types_of = _types_of(usable)
    for j in order.tolist():
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
    return finish(problem, x, rows, NAME, float(placed), started)


def _types_of(usable: BoolArray) -> list[list[int]]:
    """Usable type indices of each job, as Python lists."""
    rows, cols = np.nonzero(usable)
    out: list[list[int]] = [[] for _ in range(usable.shape[0])]
    for j, t in zip(rows.tolist(), cols.tolist(), strict=True):
        out[j].append(t)
    return out
