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
    idle = (x.sum(axis=1) == 0.0) & usable.any(axis=1)
    waiting = order[idle[order]].tolist()
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
    smallest = min(map(scale.__getitem__, order), default=0.0)
    most = ledger.most_free()
    for j in order:
        need = scale[j]
        if most + 1e-9 < need:
            if most + 1e-9 < smallest:
                break  # no type has room for even the smallest job left: nothing more can start
            continue  # no type's capacity can take this gang (rules only lower the room)
        best, best_room = -1, -1.0
        for t in types_of[j]:
            room = ledger.room(j, t)
            if room + 1e-9 >= need and room > best_room:
                best, best_room = t, room
        if best >= 0:
            x[j, best] = 1.0
            ledger.add(j, best, need)
            placed += 1
            most = ledger.most_free()
    return placed


def _types_of(usable: BoolArray) -> list[list[int]]:
    """Usable type indices of each job, as Python lists (one list per distinct usable row)."""
    if usable.shape[0] == 0:
        return []
    if usable.shape[1] > 62:
        return [np.nonzero(row)[0].tolist() for row in usable]
    codes = usable.astype(np.int64) @ (np.int64(1) << np.arange(usable.shape[1], dtype=np.int64))
    lists = {c: [t for t in range(usable.shape[1]) if c >> t & 1] for c in set(codes.tolist())}
    return [lists[c] for c in codes.tolist()]
