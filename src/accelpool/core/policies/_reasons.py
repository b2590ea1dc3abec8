"""Why each held job waits (held_reasons), and the Allocation a policy returns (finish)."""

from __future__ import annotations

import time

import numpy as np

from accelpool.core.allocation import (
    FEASIBILITY_TOLERANCE,
    Allocation,
    AllocationProblem,
    FloatArray,
)
from accelpool.core.policies._rules import Rows, budget_usable
from accelpool.core.types import WaitReason


def held_reasons(problem: AllocationProblem, x: FloatArray, rows: Rows) -> dict[str, WaitReason]:
    """Why each job that gets (almost) nothing waits, in the words a user understands."""
    held: dict[str, WaitReason] = {}
    idle = x.sum(axis=1) <= 1e-9
    if not idle.any():
        return held
    runnable = problem.usable()
    affordable = runnable & budget_usable(problem)
    used = (x * problem.scale[:, None]).sum(axis=0)
    room = (problem.capacity - used) > 1e-9
    has_room = (affordable & room[None, :]).any(axis=1)
    idle_idx = np.nonzero(idle)[0]
    fast = runnable[idle_idx].any(axis=1) & affordable[idle_idx].any(axis=1) & ~has_room[idle_idx]
    for j in idle_idx[fast].tolist():
        held[problem.job_ids[j]] = WaitReason.CAPACITY
    slow = idle_idx[~fast]
    if not len(slow):
        return held
    # rows that are full under x: used_r = sum_j member[r, j] * s_j * sum_{c in row r} x[j, c]
    dev = x * problem.scale[:, None]
    cover = rows.cover(problem.n_types).astype(np.float64)
    used_rows = (rows.member * (dev @ cover.T).T).sum(axis=1) if rows.n_rows else np.zeros(0)
    full = (rows.bound - used_rows) <= 1e-9
    kind = np.array(rows.kind, dtype=object)
    strict = full & ((kind == "quota") | (kind == "cap")) if rows.n_rows else full
    for j in slow.tolist():
        jid = problem.job_ids[j]
        if not runnable[j].any():
            fits_any = bool((problem.allowed[j] & (problem.throughput[j] > 0)).any())
            raw = bool((problem.throughput[j] > 0).any())
            held[jid] = WaitReason.RULE if raw and not fits_any else WaitReason.NOT_RUNNABLE
            if fits_any:
                held[jid] = WaitReason.CAPACITY  # allowed, but bigger than any pool of its types
            continue
        if not affordable[j].any():
            held[jid] = WaitReason.BUDGET
            continue
        held[jid] = WaitReason.PRIORITY  # filled in below, all at once
    pending = [j for j in slow.tolist() if held[problem.job_ids[j]] is WaitReason.PRIORITY]
    if pending and rows.n_rows:
        idx = np.array(pending)
        # rows each pending job counts in, on a type it can afford, that are full
        hit = rows.member[:, idx].T & ((affordable[idx].astype(np.float64) @ cover.T) > 0)
        any_full = (hit & full[None, :]).any(axis=1).tolist()
        any_strict = (hit & strict[None, :]).any(axis=1).tolist()
        for j, f, q in zip(pending, any_full, any_strict, strict=True):
            if f:
                held[problem.job_ids[j]] = WaitReason.QUOTA if q else WaitReason.RULE
    return held


def finish(
    problem: AllocationProblem, x: FloatArray, rows: Rows, policy: str, objective: float, started: float
) -> Allocation:
    """Clean tiny values, attach held reasons and timing."""
    x = np.where(x > FEASIBILITY_TOLERANCE * 1e-3, x, 0.0)
    over = x.sum(axis=1)
    x = np.where(over[:, None] > 1.0, x / np.maximum(over, 1.0)[:, None], x)
    return Allocation(
        job_ids=problem.job_ids,
        types=problem.types,
        x=x,
        policy=policy,
        objective=float(objective),
        solve_seconds=time.perf_counter() - started,
        held=held_reasons(problem, x, rows),
    )
