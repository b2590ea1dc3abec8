"""fair-share: heterogeneity-agnostic fair sharing of devices (what Slurm's fair-share and Kueue do).

Notation:

    C           devices of every type together that some job may use                     (devices)
    w_j         job j's fair weight (core.problem: its tenant's water level x its own weight under the
                shares program -> tenant -> job);  s_j devices job j asks for
    d_j         job j's device target: C water-filled over jobs by w_j, capped at s_j; with the
                hierarchical weights that is min(s_j, w_j): C water-filled over programs, then tenants,
                then jobs, each capped at what its jobs ask for
    tau_j       = d_j / s_j, the fraction of wall time job j should run

Then jobs are placed, fewest-devices-share first, over their usable types in one split for all (speed
ignored): D = sum_j s_j tau_j devices spread as evenly over the types as their capacity allows (C_t
water-filled: min(C_t, level), summing to D). With every type full that is each type's capacity share (the
average device); with devices to spare no type is preferred for its size, so a few jobs are not kept on
the biggest type while the others idle (Gavel's agnostic LAS does the same: its LP, solved by an interior-
point method, splits a job's time about equally over types with room to spare; docs/simulator.md). Within
every rule row; whatever capacity stays idle goes to jobs with time to spare.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem
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
    # one water-filling of C over jobs by fair weight: with tenant fairness the weights are each tenant's
    # level x job weight (core.problem), so this gives every job min(s_j, w_j), its hierarchical target
    target = water_fill_shares(total, demand, weight)
    tau = np.where(demand > 0, target / np.maximum(problem.scale, 1.0), 0.0)
    x = np.zeros((n, tt))
    ledger = Ledger(problem, rows)
    scale = ledger.scale_list
    types_of = _types_of(usable)
    tau_list = tau.tolist()
    # speed-blind split over types: the jobs' devices together, spread as evenly over the types as their
    # capacity allows (every type full: in proportion to capacity; with devices to spare, no type is
    # preferred for its size)
    open_types = usable.any(axis=0)
    demand_devices = float((tau * problem.scale).sum())
    split = water_fill_shares(
        demand_devices, np.where(open_types, problem.capacity, 0.0), np.ones(tt)
    ).tolist()
    jobs = np.lexsort((np.arange(n), -problem.priority, target)).tolist()
    cap_row = ledger.capacity_only() if tt < 8 else None
    if cap_row is not None:  # no rule row: the same loop on the capacity rows alone, rows kept in Python
        got = _spread_capacity(jobs, tau_list, types_of, split, scale, ledger.bound, ledger.used, cap_row, tt)
        if got:
            x[list(got)] = list(got.values())
        jobs = []
    for j in jobs:
        want = tau_list[j]
        if want <= 1e-12:
            continue
        rooms = sorted((-ledger.room(j, t), t) for t in types_of[j])
        if len(rooms) > 1:
            # speed-blind: spread over the usable types in proportion to ``split``, then top up greedily
            # where rules or earlier jobs cut a share
            whole = sum(split[t] for _, t in rooms)
            if whole > 1e-12:
                for _, t in rooms:
                    take = min(want * split[t] / whole, ledger.room(j, t) / scale[j])
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


def _spread_capacity(
    jobs: list[int],
    tau: list[float],
    types_of: list[list[int]],
    split: list[float],
    scale: list[float],
    bound: list[float],
    used: list[float],
    cap_row: list[int],
    tt: int,
) -> dict[int, list[float]]:
    """``fair_share``'s loop over the jobs where every row is a type's capacity row (``Ledger.capacity_only``):
    the same operations in the same order on Python floats (``Ledger.room`` and ``add`` of one row, each job's
    row of x as a list). Returns the rows of the jobs given a share. A row's sum is taken left to right, as
    numpy sums a row of fewer than 8 (the caller's condition). Written for speed with the same float
    operations: ``min`` as a comparison (it keeps the first of equals), a room read once per type when
    the types' rows are distinct, no second loop when nothing is left to want."""
    out: dict[int, list[float]] = {}
    # each type its own capacity row (as Ledger builds them): a job's takes touch only their own rows, so
    # the room read when its types were sorted is still the room when its share on that type is taken
    distinct = len(set(cap_row)) == len(cap_row)
    if distinct and len(jobs) >= _PREFIX_MIN:
        done = _spread_prefix(jobs, tau, types_of, split, scale, bound, used, cap_row, tt, out)
        jobs = jobs[done:]
    for j in jobs:
        want = tau[j]
        if want <= 1e-12:
            continue
        sj = scale[j]
        xr = [0.0] * tt
        ts = types_of[j]
        if len(ts) > 1:
            rooms = []
            for t in ts:
                r = cap_row[t]
                left = bound[r] - used[r]
                rooms.append((-(left if left > 0.0 else 0.0), t))
            rooms.sort()
            # the builtin sum, as the general loop takes it (3.12's sum() is compensated: a loop is not)
            whole = sum([split[t] for _, t in rooms])
            if whole > 1e-12:
                for neg_room, t in rooms:
                    r = cap_row[t]
                    if distinct:
                        room = -neg_room
                    else:
                        left = bound[r] - used[r]
                        room = left if left > 0.0 else 0.0
                    share = want * split[t] / whole
                    take = room / sj
                    if not take < share:  # min(share, room / sj), as the builtin min picks it
                        take = share
                    if take > 1e-12:
                        xr[t] += take
                        used[r] += take * sj
                total = 0.0
                for v in xr:
                    total += v
                want = tau[j] - total
            if want > 1e-12:  # a cut share topped up greedily (the general loop's second loop)
                for _, t in rooms:
                    if want <= 1e-12:
                        break
                    r = cap_row[t]
                    left = bound[r] - used[r]
                    take = (left if left > 0.0 else 0.0) / sj
                    if not take < want:  # min(want, room / sj)
                        take = want
                    if take > 1e-12:
                        xr[t] += take
                        used[r] += take * sj
                        want -= take
        elif ts:  # one type: its room, at most what the job wants
            t = ts[0]
            r = cap_row[t]
            left = bound[r] - used[r]
            take = (left if left > 0.0 else 0.0) / sj
            if not take < want:
                take = want
            if take > 1e-12:
                xr[t] += take
                used[r] += take * sj
        out[j] = xr
    return out


_PREFIX_MIN = 16  # fewer jobs: the loop alone (the arrays cost more than they save)
_PREFIX_TYPES = 5
"""A job allowed on more types ends the prefix: its whole is compared over every order of its types
(len! sums; 5 types: 120, 9 types would be 362,880 a call), so the loop takes it instead."""


def _spread_prefix(
    jobs: list[int],
    tau: list[float],
    types_of: list[list[int]],
    split: list[float],
    scale: list[float],
    bound: list[float],
    used: list[float],
    cap_row: list[int],
    tt: int,
    out: dict[int, list[float]],
) -> int:
    """``_spread_capacity``'s loop over the leading jobs whose shares no room cuts, in arrays: the very
    floats the loop computes. Returns how many of ``jobs`` it did (their rows put in ``out``, ``used``
    advanced past them); the loop does the rest. The caller's condition: each type its own row.

    Where a job's shares are not cut its takes do not depend on the rooms: one type, all it wants; two or
    more, want x split / whole on each, where whole is the sum of its types' splits in the order of their
    rooms (which move with every job), so taken only where that sum is the same in every order (the
    builtin ``sum`` of each order compared: it holds on any Python). The rows' use before each job is
    then the running sum of those takes x devices in job order (``np.cumsum`` adds in order, as the
    loop's ``+=``). The first job whose room on one of its types is below its share (room / devices <
    share, the loop's test), whose shares leave more than 1e-12 unsaid (the loop's top-up) or that has no
    type ends the prefix."""
    live = [j for j in jobs if tau[j] > 1e-12]  # the loop skips the others (no row, no use)
    m = len(live)
    if m == 0:
        return len(jobs)
    whole_of: dict[tuple[int, ...], float] = {}
    wholes = []
    for j in live:
        ts = tuple(types_of[j])
        w = whole_of.get(ts)
        if w is None:
            if len(ts) > _PREFIX_TYPES:
                w = math.nan  # len(ts)! orders to compare: the loop takes such a job, and ends the prefix
            else:
                sums = {sum([split[t] for t in order]) for order in itertools.permutations(ts)}
                # one type: no whole (1.0, unused); none, or a whole the loop would not divide by: not here
                w = 1.0 if len(ts) == 1 else sums.pop() if len(sums) == 1 and len(ts) > 1 else math.nan
                if len(ts) > 1 and not w > 1e-12:
                    w = math.nan
            whole_of[ts] = w
        wholes.append(w)
    whole = np.array(wholes)
    lens = [len(types_of[j]) for j in live]
    member = np.zeros((m, tt), dtype=bool)
    member[np.repeat(np.arange(m), lens), list(itertools.chain.from_iterable(types_of[j] for j in live))] = (
        True
    )
    single = np.array(lens) == 1
    want = np.array([tau[j] for j in live])
    sj = np.array([scale[j] for j in live])
    bad = np.isnan(whole)
    total = np.zeros(m)
    takes: dict[int, np.ndarray] = {}
    before: dict[int, np.ndarray] = {}
    for t in range(tt):
        on = member[:, t]
        if not on.any():
            continue
        share = np.where(on, np.where(single, want, want * split[t] / whole), 0.0)
        take = np.where(share > 1e-12, share, 0.0)
        r = cap_row[t]
        # the row's use before each job, and after the last: used[r] + its takes x devices, in order
        run = np.cumsum(np.concatenate(([used[r]], take * sj)))
        left = bound[r] - run[:m]
        room = np.where(left > 0.0, left, 0.0)
        bad |= on & (room / sj < share)
        total = total + take  # the loop's sum of a job's row, left to right (0.0 elsewhere)
        takes[t], before[t] = take, run
    bad |= ~single & ((want - total) > 1e-12)
    stop = int(bad.argmax()) if bad.any() else m
    if stop:
        rows = np.zeros((stop, tt))
        for t, take in takes.items():
            rows[:, t] = take[:stop]
        out.update(zip(live[:stop], rows.tolist(), strict=True))
    for t, run in before.items():
        used[cap_row[t]] = float(run[stop])
    return len(jobs) if stop == m else jobs.index(live[stop])
