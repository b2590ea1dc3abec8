"""fifo: the heterogeneity-agnostic, non-preemptive baseline of batch schedulers (Slurm's sched/builtin).

A running job keeps its devices and its type until it ends: the round passes each running job's type
(``AllocationProblem.keep_type``, core.rounds at every round for this policy) and fifo gives it x = 1
there first, under every rule row. Only an operator rule stops it: a rule row it no longer fits under (a
quota owner's jobs came back and reclaim what was lent, a public reserve, a cap), a grant that cannot pay
the next lease, or a lost or drained node (core.rounds handles the last two, as for every policy).

Then the jobs that wait, in order of priority (high first), then submit time (early first), then
position, each whole (x = 1) on the usable type with the most room under every rule row. Speed is
ignored in the choice of type: the job counts devices, as a scheduler without a throughput model does.
The first job that waits for devices is the head: no later job may delay its start. EASY back-fill (as
Slurm's sched/backfill, https://slurm.schedmd.com/sched_config.html, with one reservation): the head
reserves the type where its gang is free soonest, by the running jobs' estimated ends (steps left over
their speed there, ``remaining_steps`` / ``throughput``); a later job then starts, in queue order, only
where it cannot delay that start: on another type, on the reserved type if its own estimated end comes
first, or on the devices the head will leave over there. Without a finite estimate (a running job with
no total steps) there is no reservation, and later jobs may use only the types the head cannot use. The
estimates are the rounds' own figures: a job slower than its measured speed can overrun and delay the
head (Slurm kills a job at its time limit; fifo does not). Where program rule rows bind (reserve, caps,
quotas) the reservation and the test count every row the head is in, not devices alone
(``_backfill_rules``): a job of the head's tenant may not hold the head's room under its cap.
A job kept out by a rule of its own tenant or program (a quota, a cap, the public reserve), or that could
never run, does not stop the queue: it is passed over. A second pass lends quota devices their owners
left unused to the jobs passed over before the head (work-conserving quotas), in the same order and
with the same stop.

The jobs behind a blocked head that do not back-fill are held with reason "capacity" (they wait for the
devices the queue ahead of them waits for); core.rounds does not back-fill held jobs, and calls this policy at ticks too, so the
order holds between lease boundaries.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem, BoolArray, FloatArray
from accelpool.core.policies._seam import Ledger, build_rows, finish, lend_idle_quota, usable_mask
from accelpool.core.types import WaitReason

NAME = "fifo"


def fifo(problem: AllocationProblem) -> Allocation:
    """Running jobs stay where they run; waiting ones start in priority, then submit-time order, each on
    the type with the most room, until one has to wait for devices; later ones back-fill around it."""
    started = time.perf_counter()
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    ledger = Ledger(problem, rows)
    x = np.zeros((problem.n_jobs, problem.n_types))
    order = np.lexsort((np.arange(problem.n_jobs), problem.submit_time, -problem.priority)).tolist()
    placed = _keep_running(ledger, problem, usable, order, x)
    types_of = _types_of(usable)
    # the jobs given nothing that could run somewhere, in queue order (one pass in numpy, not two per job)
    free = ((x.sum(axis=1) == 0.0) & usable.any(axis=1)).tolist()
    waiting = [j for j in order if free[j]]
    added, passed, behind = _place(ledger, waiting, types_of, x)
    active = ledger
    placed += added
    if passed and (rows.pool_of >= 0).any():
        # second pass: devices reserved by quota owners who did not use them are lent (work-conserving)
        lent = Ledger(problem, lend_idle_quota(problem, rows, x))
        lent.load(x)
        active = lent
        more, _, held_back = _place(lent, passed, types_of, x)
        placed += more
        behind = held_back + behind
    if len(behind) > 1:
        placed += _backfill(active, problem, behind, types_of, x)
    alloc = finish(problem, x, rows, NAME, float(placed), started)
    if not behind:
        return alloc
    held = dict(alloc.held)
    for j in behind:
        if x[j].sum() == 0.0:
            held[problem.job_ids[j]] = WaitReason.CAPACITY
    return dataclasses.replace(alloc, held=held)


def _keep_running(
    ledger: Ledger, problem: AllocationProblem, usable: BoolArray, order: list[int], x: FloatArray
) -> int:
    """x = 1 on the type each running job holds (``keep_type``), in queue order, where its rules allow."""
    keep = problem.keep_type
    if not np.size(keep):
        return 0
    kept = 0
    scale = ledger.scale_list
    for j in order:
        t = int(keep[j])
        if t < 0 or not usable[j, t]:
            continue
        if ledger.room(j, t) + 1e-9 >= scale[j]:
            x[j, t] = 1.0
            ledger.add(j, t, scale[j])
            kept += 1
    return kept


def _place(
    ledger: Ledger, order: list[int], types_of: list[list[int]], x: FloatArray
) -> tuple[int, list[int], list[int]]:
    """Place whole jobs in ``order``, each on the usable type with the most room, until one has to wait
    for devices. Returns how many were placed, the jobs passed over (kept out by a rule, or never able
    to run), and the jobs behind the blocked head (the head included; empty when none blocked)."""
    scale = ledger.scale_list
    placed = 0
    passed: list[int] = []
    for pos, j in enumerate(order):
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
            continue
        if _waits_for_devices(ledger, j, types_of[j], need):
            return placed, passed, order[pos:]
        passed.append(j)
    return placed, passed, []


def _backfill(
    ledger: Ledger, problem: AllocationProblem, behind: list[int], types_of: list[list[int]], x: FloatArray
) -> int:
    """EASY back-fill behind the blocked head ``behind[0]``: reserve for the head the type where its gang
    is free soonest by the running jobs' estimated ends (steps left / speed there), then start a later job
    only where it cannot delay that start: on another type, or on the reserved type if its own estimated
    end comes before the reservation, or within the devices the head will not need at it. No reservation
    (no finite estimate): later jobs start only on types other than the head's. Returns how many started."""
    if any(kind != "capacity" for kind in ledger.rows.kind):
        return _backfill_rules(ledger, problem, behind, types_of, x)
    head = behind[0]
    scale = ledger.scale_list
    need = scale[head]
    steps = problem.remaining_steps
    tput = problem.throughput
    reserved, shadow, extra = -1, float("inf"), 0.0
    for t in types_of[head]:
        if _ceiling(ledger, head, t) + 1e-9 < need:
            continue  # its rules never admit the gang here: no reservation on t
        free = ledger.room(head, t, ignore_rules=True)
        running = np.nonzero(x[:, t] > 0.0)[0].tolist()
        ends = sorted((_eta(steps, tput, k, t), scale[k]) for k in running)
        for end, devices in ends:
            if free + 1e-9 >= need or end == float("inf"):
                break
            free += devices
            if free + 1e-9 >= need and end < shadow:
                reserved, shadow, extra = t, end, free - need
    spare = [extra]  # devices of the reserved type the head will not need, left to late enders

    def admits(k: int, t: int, want: float) -> bool:
        if t == reserved and not (_eta(steps, tput, k, t) <= shadow or want <= spare[0] + 1e-9):
            return False  # it would still hold the head's devices when the head is due to start
        return not (t != reserved and reserved < 0 and t in types_of[head])  # no reservation: the head's

    def took(k: int, t: int, want: float) -> None:
        if t == reserved and _eta(steps, tput, k, t) > shadow:
            spare[0] -= want

    return _fill_behind(ledger, behind, types_of, x, admits, took)


def _backfill_rules(
    ledger: Ledger, problem: AllocationProblem, behind: list[int], types_of: list[list[int]], x: FloatArray
) -> int:
    """``_backfill`` where program rule rows bind (public reserve, caps, quotas): the same reservation and
    the same test, on every row rather than on devices alone. The head's reservation is the first
    estimated end after which it has room for its gang under every row of a type (the running jobs that
    end by then taken out of a copy of the ledger, ``at``); a later job that would still run then starts
    only where it leaves the head that room in ``at`` (a job of the head's tenant under the head's cap
    takes room the head needs even where devices are left over). No reservation: as ``_backfill``."""
    head = behind[0]
    scale = ledger.scale_list
    need = scale[head]
    steps = problem.remaining_steps
    tput = problem.throughput
    held = np.nonzero(x.sum(axis=1) > 0.0)[0].tolist()  # whole jobs: x = 1 on one column
    ends = sorted((_eta(steps, tput, k, int(np.argmax(x[k]))), k, int(np.argmax(x[k]))) for k in held)
    reserved, shadow = -1, float("inf")
    for t in types_of[head]:
        if _ceiling(ledger, head, t) + 1e-9 < need:
            continue  # its rules never admit the gang here: no reservation on t
        then = _copy(ledger)
        for end, k, c in ends:
            if end >= shadow or end == float("inf"):
                break
            then.add(k, c, -scale[k])
            if then.room(head, t) + 1e-9 >= need:
                reserved, shadow = t, end
                break
    at = _copy(ledger)
    for end, k, c in ends if reserved >= 0 else ():
        if end <= shadow:
            at.add(k, c, -scale[k])

    def admits(k: int, t: int, want: float) -> bool:
        if reserved < 0:
            return t not in types_of[head]  # no reservation to plan against: the head's types are its
        if _eta(steps, tput, k, t) > shadow:
            at.add(k, t, want)
            fits = at.room(head, reserved) + 1e-9 >= need
            at.add(k, t, -want)
            return fits  # else it would still hold what the head needs (devices or rule room) then
        return True

    def took(k: int, t: int, want: float) -> None:
        if reserved >= 0 and _eta(steps, tput, k, t) > shadow:
            at.add(k, t, want)

    return _fill_behind(ledger, behind, types_of, x, admits, took)


def _fill_behind(
    ledger: Ledger,
    behind: list[int],
    types_of: list[list[int]],
    x: FloatArray,
    admits: Callable[[int, int, float], bool],
    took: Callable[[int, int, float], None],
) -> int:
    """The back-fill's scan, shared by both reservations: each job behind the head, in order, on the
    type with the most room for its gang that ``admits(job, type, devices)``; ``took`` is told of each
    start before the ledger is. Returns how many started."""
    scale = ledger.scale_list
    placed = 0
    # with devices alone counted (no rule row, no pool: a job's room on a type is that type's free
    # devices), a job wanting more than the most any type has free is passed over without its types' scan
    cap = ledger.capacity_only()
    most = ledger.most_free() if cap is not None else float("inf")
    for k in behind[1:]:
        want = scale[k]
        if most + 1e-9 < want:
            continue
        best, best_room = -1, -1.0
        for t in types_of[k]:
            room = ledger.room(k, t)
            if room + 1e-9 < want or room <= best_room or not admits(k, t, want):
                continue
            best, best_room = t, room
        if best < 0:
            continue
        took(k, best, want)
        x[k, best] = 1.0
        ledger.add(k, best, want)
        placed += 1
        if cap is not None:
            most = ledger.most_free()
    return placed


def _copy(ledger: Ledger) -> Ledger:
    """A ledger whose later adds leave ``ledger`` as it is (the rows are shared, read only)."""
    out = copy.copy(ledger)
    out.used = list(ledger.used)
    out.pool_used = list(ledger.pool_used)
    return out


def _eta(steps: FloatArray, tput: FloatArray, k: int, t: int) -> float:
    """Estimated seconds job k still runs on type t: its steps left at its speed there (inf unknown)."""
    speed = float(tput[k, t])
    left = float(steps[k]) if k < steps.size else float("inf")
    return left / speed if speed > 0.0 else float("inf")


def _waits_for_devices(ledger: Ledger, j: int, types: list[int], need: float) -> bool:
    """True when what keeps job j out is devices in use: on every type whose rules could ever admit its
    gang, the type's free devices are too few. False when a rule row keeps it out of a type that has the
    devices free now, or when no type's rules could ever admit it."""
    could = False
    for t in types:
        if _ceiling(ledger, j, t) + 1e-9 < need:
            continue  # its rules never admit the gang here
        could = True
        if ledger.room(j, t, ignore_rules=True) + 1e-9 >= need:
            return False  # the devices are free: a rule keeps it out
    return could


def _ceiling(ledger: Ledger, j: int, t: int) -> float:
    """Devices job j could hold on type t with nothing running: the least bound of its rows there."""
    best = float("inf")
    for r in ledger.rows_of(j, t):
        left = ledger.bound[r]
        q = ledger.pool_of[r]
        if q >= 0:
            left = max(left, 0.0) + ledger.pool_bound[q]
        best = min(best, left)
    return best


def _types_of(usable: BoolArray) -> list[list[int]]:
    """Usable type indices of each job, as Python lists (one list per distinct usable row)."""
    if usable.shape[0] == 0:
        return []
    if usable.shape[1] > 62:
        return [np.nonzero(row)[0].tolist() for row in usable]
    codes = usable.astype(np.int64) @ (np.int64(1) << np.arange(usable.shape[1], dtype=np.int64))
    lists = {c: [t for t in range(usable.shape[1]) if c >> t & 1] for c in set(codes.tolist())}
    return [lists[c] for c in codes.tolist()]
