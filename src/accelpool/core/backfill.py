"""What a round does with devices the policy's pairs leave free (core/placement.py calls both).

``back_fill``: waiting jobs the policy did not hold, in fair order, each on the fastest type it fits
(work-conserving).

``move_up_jobs``: no device idles on a type while a job chosen this round runs slower on another type
and would fit there. Gavel fills its types one after another, the fastest first, with every job (those
its allocation gave no share of the type last), so a faster type is full before a slower one gets
anything; ours placed each job on the type of its pair and back-filled only waiting jobs, so a job given
a slow type stayed there while devices of a faster type idled. Measured on Gavel's physical-cluster trace
(8:16:24, max-min-fairness, per-round): 33 V100 and 42 P100 device-rounds idle while a job that fit
there ran on a slower type (Gavel: none); on b436b2 at 8:8:8, 6,332 V100 device-rounds
(docs/simulator.md, "Seventh session"). A job moves only to a type where it runs faster, in fair
order; a job pinned to its devices never moves, and a running job moves only where ``move_running``
(per-round re-decision: a move is a restart, which leases charge for; under leases only jobs that start
now move up). The devices a moved job leaves are back-filled again by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from accelpool.core.round_types import JobStatus
from accelpool.core.types import JobState, WaitReason


def back_fill(
    by_rank: list[int],
    speed_order: list[list[int]],
    chosen: dict[int, int],
    statuses: list[JobStatus],
    usable: np.ndarray,
    held: Mapping[str, WaitReason],
    type_free: dict[str, int],
    try_choose: Callable[[int, int], bool],
    reasons: dict[str, WaitReason],
) -> None:
    """Waiting jobs the policy did not hold, in fair order (``by_rank``), each on the fastest type it fits."""
    most = max(type_free.values(), default=0)
    for i in by_rank:
        if most <= 0:
            break
        s = statuses[i]
        if i in chosen or s.job.scale > most or s.job.id in held:
            continue
        for k in speed_order[i]:
            if usable[i, k] and try_choose(i, k):
                reasons.pop(s.job.id, None)
                most = max(type_free.values())
                break


def move_up_jobs(
    by_rank: list[int],
    speed_order: list[list[int]],
    chosen: dict[int, int],
    statuses: list[JobStatus],
    tput: np.ndarray,
    usable: np.ndarray,
    types: tuple[str, ...],
    type_free: dict[str, int],
    pinned: set[int],
    move_running: bool,
    try_choose: Callable[..., bool],
    release: Callable[[int], None],
) -> bool:
    """Move chosen jobs, in fair order, to the fastest type faster for them with room for the whole gang.
    ``release(i)`` gives back what job i took; ``try_choose(i, k, force=True)`` puts it back when the
    faster type refuses it (zone, site or grant). Returns whether a job moved."""
    running = JobState.RUNNING
    moved = False
    for i in by_rank:
        k = chosen.get(i)
        if k is None or i in pinned:
            continue
        s = statuses[i]
        if s.state is running and not move_running:
            continue
        for k2 in speed_order[i]:
            if tput[i, k2] <= tput[i, k]:
                break
            if not usable[i, k2] or type_free[types[k2]] < s.job.scale:
                continue
            release(i)
            if try_choose(i, k2):
                moved = True
                break
            try_choose(i, k, force=True)  # it gets back what it gave up
        if max(type_free.values(), default=0) <= 0:
            break
    return moved
