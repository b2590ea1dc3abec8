"""What a round does with devices the policy's pairs leave free (core/placement.py calls both).

``back_fill``: waiting jobs the policy did not hold, in fair order, each on the fastest type it fits
(work-conserving).

``move_up_jobs`` (``fill_idle`` calls both): no device idles on a type while a job chosen this round runs slower on another type
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


Books = tuple[
    dict[int, int],  # chosen: job -> type index
    dict[str, int],  # type_free
    dict[tuple[str, str], int],  # site_free
    dict[int, str],  # chosen_site
    dict[int, dict[tuple[str, str | None], int]],  # taken: what each chosen job took per (type, zone)
    dict[tuple[str, str | None], int],  # zone_free
    dict[int, tuple[str, int]],  # spent: the KRW set aside on each chosen job's grant
    dict[str, int],  # grants: KRW left
]


def fill_idle(
    ranks: tuple[list[int], list[list[int]]],
    statuses: list[JobStatus],
    usable: np.ndarray,
    held: Mapping[str, WaitReason],
    try_choose: Callable[..., bool],
    reasons: dict[str, WaitReason],
    books: Books,
    types: tuple[str, ...],
    up: tuple[np.ndarray, set[int], bool] | None,
) -> None:
    """Back-fill, then (``up``: throughputs, pinned jobs, whether running jobs may move) move up and
    back-fill what the moved jobs left. ``ranks``: the jobs in fair order and each job's types fastest
    first; ``books``: the bookkeeping ``try_choose`` (core/placement.py) keeps, given back here when a job
    moves."""
    by_rank, speed_order = ranks
    chosen, type_free = books[0], books[1]
    back_fill(by_rank, speed_order, chosen, statuses, usable, held, type_free, try_choose, reasons)
    if up is not None and max(type_free.values(), default=0) > 0:
        tput, pinned, move_running = up
        if move_up_jobs(
            by_rank, speed_order, statuses, tput, usable, types, pinned, move_running, try_choose, books
        ):
            back_fill(by_rank, speed_order, chosen, statuses, usable, held, type_free, try_choose, reasons)


def _release(i: int, statuses: list[JobStatus], types: tuple[str, ...], books: Books) -> None:
    """Give back what try_choose took for job i: its devices, zone room and grant money."""
    chosen, type_free, site_free, chosen_site, taken, zone_free, spent, grants = books
    t, scale = types[chosen.pop(i)], statuses[i].job.scale
    type_free[t] += scale
    site_free[t, chosen_site[i]] += scale
    for key, n in taken.pop(i).items():
        zone_free[key] += n
    if i in spent:
        g, paid = spent.pop(i)
        grants[g] += paid


def move_up_jobs(
    by_rank: list[int],
    speed_order: list[list[int]],
    statuses: list[JobStatus],
    tput: np.ndarray,
    usable: np.ndarray,
    types: tuple[str, ...],
    pinned: set[int],
    move_running: bool,
    try_choose: Callable[..., bool],
    books: Books,
) -> bool:
    """Move chosen jobs, in fair order, to the fastest type faster for them with room for the whole gang;
    ``try_choose(i, k, force=True)`` puts a job back when the faster type refuses it (zone, site or
    grant). Returns whether a job moved."""
    chosen, type_free = books[0], books[1]
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
            _release(i, statuses, types, books)
            if try_choose(i, k2):
                moved = True
                break
            try_choose(i, k, force=True)  # it gets back what it gave up
        if max(type_free.values(), default=0) <= 0:
            break
    return moved
