"""Placement of one round (core/rounds.py decides; this turns the policy's shares into devices).

Whole gangs on as few nodes as possible (``_FreeDevices``, core/free_devices.py), in the order
core/ranking.py gives the (job, type) pairs, the back-fill of idle devices, the reason of every job that
waits and the queue positions (``_place``). The rules are described in core/rounds.py's docstring.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem
from accelpool.core.backfill import (
    NO_LIMIT,
    Cost,
    RuleRoom,
    add_clauses,
    fill_idle,
    held_by_rules,
    wait_words,
)
from accelpool.core.estimates import queue_view, yield_boundaries
from accelpool.core.free_devices import _FreeDevices
from accelpool.core.periods import budget_stop, closed_by_id
from accelpool.core.reasons import LazyText, Positions, explain, fair_order
from accelpool.core.round_config import RoundConfig
from accelpool.core.round_types import (
    Decision,
    JobStatus,
    Placement,
    Snapshot,
    at_rows,
    changed_since,
    round_cost_krw,
)
from accelpool.core.sites import _rule_bound, price_for
from accelpool.core.types import (
    JobState,
    Site,
    WaitReason,
)

if TYPE_CHECKING:
    from accelpool.core.rounds import DecideCache


@dataclass(frozen=True)
class _Sites:
    """The round's sites (by id), each job's allowed sites (by status index), reasons for jobs allowed
    nowhere (core/sites.py)."""

    table: Mapping[str, Site]
    allowed: list[frozenset[str]]
    notes: dict[str, str]
    prefer: Mapping[tuple[int, str], str] = field(default_factory=dict)  # (job, type) -> the policy's site


def blocked_reasons(problem: AllocationProblem, usable: np.ndarray | None = None) -> dict[str, WaitReason]:
    """Jobs that cannot run on any type as things stand: no usable type (NOT_RUNNABLE, or RULE when only
    a rule stands in the way) or a grant that cannot pay for one lease on any usable type (BUDGET).
    ``usable``: ``problem.usable()`` when the caller has it."""
    runnable = problem.usable() if usable is None else usable
    cost = problem.price_krw_per_hour[None, :] * problem.scale[:, None] * problem.horizon_seconds / 3600.0
    affordable = runnable & ((problem.budget_krw[:, None] < 0) | (cost <= problem.budget_krw[:, None] + 1e-9))
    out: dict[str, WaitReason] = {}
    for j in np.nonzero(~affordable.any(axis=1))[0].tolist():
        if runnable[j].any():
            out[problem.job_ids[j]] = WaitReason.BUDGET
        elif (problem.throughput[j] > 0).any() and not (
            problem.allowed[j] & (problem.throughput[j] > 0)
        ).any():
            out[problem.job_ids[j]] = WaitReason.RULE
        else:
            out[problem.job_ids[j]] = WaitReason.NOT_RUNNABLE
    return out


def whole_runs_unpaid(
    problem: AllocationProblem, statuses: list[JobStatus], cache: DecideCache | None = None
) -> tuple[AllocationProblem, dict[str, tuple[int, int]]]:
    """Queued jobs that are not preemptible and have a ``max_run_time`` whose grant cannot pay their whole
    run on any type they may use (at its cheapest price), even with nothing else of the grant running: as
    things stand they can never start (their whole run is set aside when they start). Returns the problem
    with their budgets at 0 (no policy gives them a share, ``blocked_reasons`` calls them blocked) and, per
    such job, (KRW its grant has left, KRW its whole run costs at the least). ``cache`` keeps the rows of
    such jobs (queued or not) while the problem's job tuple is the same object (the same jobs)."""
    queued = JobState.QUEUED
    ids = problem.job_ids
    known = cache.whole_runs if cache is not None else None
    if known is not None and known[0] is ids:
        rows_all = known[1]
    else:
        rows_all = [
            i
            for i, s in enumerate(statuses)
            if (j := s.job).max_run_seconds is not None and j.grant is not None and not j.time_sliced
        ]
        if cache is not None:
            cache.whole_runs = (ids, rows_all)
    cands = [i for i in rows_all if statuses[i].state is queued]
    if not cands:
        return problem, {}
    rows = np.array(cands, dtype=np.int64)
    budget = problem.budget_krw[rows]
    runs = np.array([statuses[i].job.max_run_seconds for i in cands], dtype=np.float64)
    price = problem.price_krw_per_hour.astype(np.float64)
    cost = problem.scale[rows, None] * price[None, :] * runs[:, None] / 3600.0
    cost = np.where(problem.usable()[rows], cost, np.inf).min(axis=1, initial=np.inf)
    # a float test with a margin first, the exact integer cost for the few it may concern
    near = np.nonzero((budget >= 0) & np.isfinite(cost) & (cost > budget - 1.0))[0].tolist()
    if not near:
        return problem, {}
    usable = problem.usable()
    prices = problem.price_krw_per_hour.tolist()
    out: dict[str, tuple[int, int]] = {}
    zero: list[int] = []
    for q in near:
        i = cands[q]
        job = statuses[i].job
        exact = min(
            round_cost_krw(job.scale, prices[k], job.max_run_seconds)  # type: ignore[arg-type]
            for k in np.nonzero(usable[i])[0].tolist()
        )
        left = int(budget[q])
        if exact > left:
            out[job.id] = (left, exact)
            zero.append(i)
    if not zero:
        return problem, {}
    return problem.without_money(zero), out


def _fair_order(problem: AllocationProblem, holding: np.ndarray, cache: DecideCache) -> np.ndarray:
    """``core.reasons.fair_order``, kept while the arrays it reads are the very same objects (the problem
    cache shares them between rounds while the jobs are the same) and the same jobs hold devices. Read only."""
    id_rank = _id_rank(problem.job_ids, cache)
    key = (
        problem.tenant_index,
        problem.scale,
        problem.fair_weight,
        problem.submit_time,
        problem.priority,
        id_rank,
    )
    equal = (holding.tobytes(), problem.fairness)
    last = cache.fair_order
    if last is not None and _kept(last, key, equal):
        return last[2]
    order = fair_order(problem, holding, id_rank)
    order.setflags(write=False)
    cache.fair_order = (key, equal, order)
    return order


def _kept(
    last: tuple[tuple[object, ...], tuple[object, ...], object],
    same: tuple[object, ...],
    equal: tuple[object, ...],
) -> bool:
    """Whether a cached (inputs read as objects, inputs compared by value, result) entry still holds: the
    very same objects and equal values."""
    return last[1] == equal and all(a is b for a, b in zip(last[0], same, strict=True))


def _holding(statuses: list[JobStatus], problem: AllocationProblem, cache: DecideCache) -> np.ndarray:
    """Per job, whether it runs on devices now, kept while the problem's job tuple is the same object;
    only the entries of jobs whose status is another object (a JobStatus is frozen) are read again. The
    cache also keeps, per job, whether its state is RUNNING (``_runs``)."""
    running = JobState.RUNNING
    last = cache.holding
    if last is not None and last[1] is statuses:  # the same round's list (never changed): the same answer
        return last[2]
    moved = cache.problems.moved
    carry = last is not None and moved is not None and moved[0] is last[0] and moved[1] is problem.job_ids
    if last is not None and (last[0] is problem.job_ids or carry):
        seen, held, runs = last[1], last[2], last[3]
        if last[0] is problem.job_ids:
            changed = cache.changed(statuses, seen)
        else:  # the problem cache carried rows to a new job set: so are the statuses that are the same
            take = moved[2]  # type: ignore[index]
            # a new job's stand-in (the last row's status, another job's) is never its status
            changed = changed_since(statuses, at_rows(seen, take))
            held, runs = held[take], runs[take]
        if changed:  # one assignment per array
            got = [statuses[i] for i in changed]
            runs[changed] = [s.state is running for s in got]
            held[changed] = [s.state is running and s.placement is not None for s in got]
    else:
        runs = np.array([s.state is running for s in statuses], dtype=bool)
        held = np.array([s.state is running and s.placement is not None for s in statuses], dtype=bool)
    cache.holding = (problem.job_ids, statuses, held, runs)
    return held


def _runs(statuses: list[JobStatus], problem: AllocationProblem, cache: DecideCache) -> np.ndarray:
    """Per job, whether its state is RUNNING (kept with ``_holding``). Read only."""
    _holding(statuses, problem, cache)
    return cache.holding[3]  # type: ignore[index]


def _speed_order(tput: np.ndarray, cache: DecideCache) -> list[list[int]]:
    """Each job's types, fastest first (``np.argsort(-tput, stable)``), kept while the throughput array is
    the very same object (the problem cache shares it while the jobs are the same). Read only."""
    last = cache.speed_order
    if last is None or last[0] is not tput:
        last = cache.speed_order = (tput, np.argsort(-tput, axis=1, kind="stable").tolist())
    return last[1]


def _blocked(problem: AllocationProblem, usable: np.ndarray, cache: DecideCache) -> dict[str, WaitReason]:
    """``blocked_reasons``, kept while what it reads is the same: the very same arrays (shared by the
    problem cache while the jobs are the same), the same horizon and equal budgets. Read only."""
    key = (
        usable,
        problem.price_krw_per_hour,
        problem.scale,
        problem.throughput,
        problem.allowed,
        problem.job_ids,
    )
    equal = (problem.budget_krw.tobytes(), problem.horizon_seconds)
    last = cache.blocked
    if last is not None and _kept(last, key, equal):
        return last[2]
    reasons = blocked_reasons(problem, usable)
    cache.blocked = (key, equal, reasons)
    return reasons


def _held_priority(held: Mapping[str, WaitReason], cache: DecideCache) -> bool:
    """Whether the policy held some job for "priority" (the only source of that reason in a round), kept
    while the allocation's ``held`` is the very same mapping (a reused allocation)."""
    last = cache.held_priority
    if last is None or last[0] is not held:
        last = cache.held_priority = (held, any(r is WaitReason.PRIORITY for r in held.values()))
    return last[1]


def _one_priority(priority: np.ndarray, cache: DecideCache) -> bool:
    """True when every job has the same priority field (or there are none), kept while the priority array
    is the very same object."""
    last = cache.one_priority
    if last is None or last[0] is not priority:
        last = cache.one_priority = (priority, len(priority) == 0 or bool(priority.min() == priority.max()))
    return last[1]


def _id_rank(ids: tuple[str, ...], cache: DecideCache) -> np.ndarray:
    """Each id's rank in sorted order (a tie-breaker), kept while the same id tuple comes back."""
    if cache.id_rank is None or cache.id_rank[0] is not ids:
        rank = np.empty(len(ids), dtype=np.int64)
        rank[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
        cache.id_rank = (ids, rank)
    return cache.id_rank[1]


def _place(
    snapshot: Snapshot,
    statuses: list[JobStatus],
    alloc: Allocation,
    order: Sequence[tuple[int, int]],
    usable: np.ndarray,
    problem: AllocationProblem,
    cache: DecideCache,
    pinned: list[int],
    horizon: float,
    config: RoundConfig,
    placing: _Sites,
    unpaid: Mapping[str, tuple[int, int] | str] | None = None,
    move_up: bool = False,
    move_running: bool = False,
) -> Decision:
    tput = problem.throughput
    types = alloc.types
    free = _FreeDevices(snapshot.nodes, cache)
    type_free = {t: free.initial.get(t, 0) for t in types}  # a fresh _FreeDevices: all free
    # Devices per (type, zone) not yet promised to a job pinned to that zone or kept there. A job without a
    # zone may take devices in any zone, so it only lowers type_free; a zoned job needs room in its zone and
    # in the type (type_free = sum over zones of zone_free - what the zone-free jobs take).
    zone_free = dict(free.initial_zones)
    node_zone = free.zone
    # Devices per (type, site) not yet promised: a gang runs at one site, chosen when the job is chosen
    # (the cheapest allowed site with room; a running job stays at its site).
    site_free = dict(free.initial_sites)
    sites, allowed, notes, prefer = placing.table, placing.allowed, placing.notes, placing.prefer
    chosen_site: dict[int, str] = {}
    running_state = JobState.RUNNING
    grants = {g.id: g.remaining_krw for g in snapshot.grants}
    prices = snapshot.prices_krw_per_hour
    chosen: dict[int, int] = {}
    reasons: dict[str, WaitReason] = dict(alloc.held)
    for j_id in notes:
        reasons[j_id] = WaitReason.RULE

    # the program rule rows, kept as gangs are handed out (none when no rule binds a type)
    rules = RuleRoom(problem, alloc.x) if _rules_bind(problem, cache) else None
    ruled: dict[str, tuple[str, str, bool]] = {}  # job -> (a type, the rule row's kind, devices free there)
    pay = Cost(  # what a faster type may cost each job (its faster_type)
        statuses,
        tput,
        alloc.x,
        lambda i, k: min(
            (price_for(prices, sites.get(st), types[k]) for st in allowed[i]),
            default=price_for(prices, None, types[k]),
        ),
        lambda k, st: price_for(prices, sites.get(st), types[k]),
        bool(prices) or any(st.prices for st in sites.values()),
    )

    def try_choose(i: int, k: int, force: bool = False, dearest: float = NO_LIMIT) -> bool:
        """Give job i type k if it fits (``force``: a pinned job keeps what it holds, come what may;
        ``dearest``: the most it may pay per device-hour there, core.backfill.Cost)."""
        s = statuses[i]
        t = types[k]
        scale = s.job.scale
        if i in chosen or (type_free[t] < scale and not force):
            return False
        zone = s.job.zone
        held: dict[tuple[str, str | None], int] = {}
        p = s.placement
        if p is not None and s.state is running_state and p.accelerator == t:
            # it keeps its devices, in the zones they are in
            for n, d in p.devices:
                key = (t, node_zone.get(n))
                held[key] = held.get(key, 0) + len(d)
            if any(zone_free.get(key, 0) < k for key, k in held.items()):
                held = {}  # promised to zoned jobs ranked higher: it can only move
        if not held and zone is not None:
            held[t, zone] = scale
        if not force and any(zone_free.get(key, 0) < k for key, k in held.items()):
            return False
        if rules is not None and not force and (row := rules.refuses(i, k, scale)) is not None:
            # a rule row of its tenant or program is full on t: "rule" for the public reserve, else "quota"
            reasons.setdefault(s.job.id, WaitReason.RULE if row == "reserve" else WaitReason.QUOTA)
            ruled.setdefault(s.job.id, (t, row, True))  # type_free held its gang (tested above)
            return False
        ok = allowed[i]
        if not ok:
            return False
        if p is not None and s.state is running_state and p.accelerator == t and p.site in ok:
            site = p.site  # it stays where it runs
            if dearest < NO_LIMIT and price_for(prices, sites.get(site), t) > dearest:
                return False
        else:
            cands = [st for st in ok if site_free.get((t, st), 0) >= scale]
            if dearest < NO_LIMIT:  # a faster type only where it costs no more per step
                cands = [st for st in cands if price_for(prices, sites.get(st), t) <= dearest]
                if not cands:
                    pay.note(i, k)
            if not cands:
                return False
            site = prefer.get((i, t), "")
            if site not in cands:  # the site the policy chose for it, else the cheapest with room
                site = min(cands, key=lambda st: (price_for(prices, sites.get(st), t), -site_free[t, st], st))
        if s.job.grant is not None and s.job.grant in grants:
            # a lease's cost is set aside on the grant: kept jobs first, then starts that fit what is left;
            # at the price of the site it runs at
            price = price_for(prices, sites.get(site), t)
            cost = round_cost_krw(s.job.scale, price, horizon)
            whole = not s.job.time_sliced and s.job.max_run_seconds is not None
            if whole:
                # not preemptible, with a max_run_time: its whole run is set aside when it starts (as
                # Slurm checks a job's time limit against GrpTRESMins), and what is left of it while it
                # runs (kept jobs first), so it is never stopped for money
                now = snapshot.now
                began = snapshot.run_started.get(s.job.id, now) if s.state is running_state else now
                left_s = max(0.0, began + s.job.max_run_seconds - now)  # type: ignore[operator]
                cost = round_cost_krw(s.job.scale, price, left_s)
            # a kept job's grant must pay for the next lease at a boundary too: its money ran out (a job that
            # is not preemptible and has no max_run_time is stopped then: "grant exhausted")
            if cost > grants[s.job.grant] and (not force or (snapshot.lease_boundary and not whole)):
                reasons.setdefault(s.job.id, WaitReason.BUDGET)
                short[s.job.id] = (grants[s.job.grant], cost)
                return False
            paid = min(cost, grants[s.job.grant])
            grants[s.job.grant] -= paid
            spent[i] = (s.job.grant, paid)
        chosen[i] = k
        if rules is not None:
            rules.take(i, k, scale)
        taken[i] = held
        chosen_site[i] = site
        type_free[t] -= scale
        site_free[t, site] = site_free.get((t, site), 0) - scale
        for key, k2 in held.items():
            zone_free[key] -= k2
        return True

    short: dict[str, tuple[int, int]] = {}  # job -> (KRW its grant has left, KRW a lease costs)
    taken: dict[int, dict[tuple[str, str | None], int]] = {}  # what try_choose took per zone, to give back
    spent: dict[int, tuple[str, int]] = {}  # the KRW try_choose set aside on the job's grant
    holding = _holding(statuses, problem, cache)
    ranked_all = _fair_order(problem, holding, cache)
    tindex = {t: k for k, t in enumerate(types)}
    for i in pinned:
        k = tindex.get(statuses[i].placement.accelerator, -1)  # type: ignore[union-attr]
        if k >= 0:
            try_choose(i, k, force=True)
    # every job needs a device at least: once no type has one free, no later pair can be chosen
    if order and max(type_free.values(), default=0) >= 1:
        for i, k in order:
            if i not in chosen and type_free[types[k]] >= statuses[i].job.scale:
                if try_choose(i, k) and max(type_free.values()) < 1:
                    break
    # Back-fill waiting jobs, then move chosen jobs up to faster types that would idle (core/backfill.py).
    if max(type_free.values(), default=0) > 0:
        books = (chosen, type_free, site_free, chosen_site, taken, zone_free, spent, grants, rules)
        up = (tput, set(pinned), move_running) if move_up else None
        ranks = (ranked_all.tolist(), _speed_order(tput, cache))
        fill_idle(ranks, statuses, usable, alloc.held, try_choose, reasons, books, types, up, pay)

    keep, start = [], []
    pending = []
    running = JobState.RUNNING
    for i, k in chosen.items():
        s = statuses[i]
        if s.state is running and s.placement is not None and s.placement.accelerator == types[k]:
            if free.take_exact(s.placement):
                keep.append(s.placement)
                continue
        pending.append((i, k))
    # zoned jobs first: a zone-free job's best fit must not take the only devices a zoned job can use
    pending.sort(key=lambda ik: statuses[ik[0]].job.zone is None)
    for i, k in pending:
        s = statuses[i]
        placed = free.place(s.job.id, types[k], s.job.scale, s.job.zone, chosen_site[i])
        if placed is None:
            reasons[s.job.id] = WaitReason.GANG
        else:
            start.append(placed)

    if rules is not None and alloc.held:  # the rule row that holds each job the policy held for a rule
        held_by_rules(
            alloc.held,
            reasons,
            rules,
            statuses,
            _index_of(problem.job_ids, cache),
            (_speed_order(tput, cache), usable, types, type_free),
            ruled,
        )

    running_ids = {p.job for p in keep}
    started_ids = {p.job for p in start}
    pinned_ids = {statuses[i].job.id for i in pinned}
    preempt = []
    capacity_reason = WaitReason.CAPACITY
    # jobs that cannot run as things stand have no queue position (job i of statuses is row i of problem)
    blocked = _blocked(problem, usable, cache)
    ids = problem.job_ids
    index = _index_of(ids, cache)
    shut: dict[str, str] | None = None  # grants outside their period, when a job stops for money
    for i in _runs(statuses, problem, cache).nonzero()[0].tolist():  # the running jobs, in job order
        jid = ids[i]
        if jid in running_ids:
            continue
        if jid in started_ids:
            preempt.append((jid, "moved"))
        elif jid in pinned_ids and reasons.get(jid) is not WaitReason.BUDGET:
            preempt.append((jid, "its devices are no longer in service (node drained or down)"))
        else:
            if reasons.get(jid) is not WaitReason.BUDGET:
                preempt.append((jid, "lease"))
                continue
            shut = closed_by_id(snapshot) if shut is None else shut  # its money ran out, or its period
            preempt.append((jid, budget_stop(statuses[i].job.grant, shut)))
    # every job neither kept nor started waits (in job order), for its reason or for capacity
    waiting = dict.fromkeys(ids, capacity_reason)
    out = [index[j] for j in (*running_ids, *started_ids)]
    for j in (*running_ids, *started_ids):
        del waiting[j]
    if reasons.keys() <= waiting.keys():  # each reason is a waiting job's (as a rule): in C, order kept
        waiting.update(reasons)
    else:
        for j, why in reasons.items():
            if j in waiting:
                waiting[j] = why
    # the waiting jobs not blocked are queued
    in_queue = np.empty(len(ids), dtype=bool)
    in_queue.fill(True)  # np.ones without its Python wrapper
    in_queue[out] = False
    if blocked:
        in_queue[[index[j] for j in blocked]] = False
    if not waiting:
        blocked = {}
    one = _one_priority(problem.priority, cache)
    if not one or _held_priority(alloc.held, cache):  # else no job waits for "priority": nothing to do
        _priority_only_for_priority(problem, waiting, keep, start, index, one)
    # queue positions: the back-fill's fair order, jobs that cannot run as things stand left out
    queue_arr = ranked_all[in_queue[ranked_all]]
    queue = queue_arr.tolist()
    # the ids in one C call (itemgetter of two or more indices gives a tuple)
    queue_ids = operator.itemgetter(*queue)(ids) if len(queue) > 1 else tuple([ids[i] for i in queue])
    positions = Positions(queue_ids)  # the dict of positions is built when a reader looks one up
    idle = {k: free.total(t) for k, t in enumerate(types)}
    view = queue_view(
        snapshot, statuses, problem, usable, queue_arr, (keep, start), horizon, config, cache, idle, queue_ids
    )
    yields = yield_boundaries(snapshot, statuses, keep, config, horizon) if waiting else {}
    extra = {j: n for j, n in notes.items() if j in waiting}
    asked = waiting  # not changed after this (the decision is read only); the text reads it when asked
    words = wait_words(pay, ruled, statuses, types, idle, waiting) if pay.dear or ruled else {}
    # each waiting job's sentence, written when a reader first asks for one (core.reasons.LazyText)
    details = LazyText(
        lambda: {
            **add_clauses(
                explain(problem, statuses, asked, blocked, short, snapshot, unpaid or {}, yields), words
            ),
            **extra,
        }
    )
    return Decision(
        now=snapshot.now,
        allocation=alloc,
        start=tuple(start),
        keep=tuple(keep),
        preempt=tuple(preempt),
        waiting=waiting,
        positions=positions,
        boundary=snapshot.lease_boundary,
        details=details,
        queue=view,
    )


def _priority_only_for_priority(
    problem: AllocationProblem,
    waiting: dict[str, WaitReason],
    keep: list[Placement],
    start: list[Placement],
    index: Mapping[str, int],
    one: bool | None = None,
) -> None:
    """ "priority" only when jobs with a higher priority field hold a type the waiting job could use: a job
    the policy gives nothing for fairness waits for its share ("fair-share"); a job that waits for devices
    ("capacity") waits for "priority" when jobs of a higher priority field hold at least as many devices
    of one of its types as it needs (they alone keep it out)."""
    priority = problem.priority
    # one priority for every job (the usual case): no job holds devices above any other's, nothing to look
    # up; only a "priority" becomes "fair-share" (what the general path below does when no job is above)
    if one if one is not None else (len(priority) == 0 or priority.min() == priority.max()):
        for jid in [j for j, r in waiting.items() if r is WaitReason.PRIORITY]:
            waiting[jid] = WaitReason.SHARE
        return
    held = [j for j, r in waiting.items() if r is WaitReason.PRIORITY or r is WaitReason.CAPACITY]
    if not held:
        return
    placed = [(int(priority[index[p.job]]), p.accelerator, p.count) for p in (*keep, *start)]
    top = max((prio for prio, _, _ in placed), default=None)
    rows = np.array([] if top is None else [index[j] for j in held], dtype=np.int64)
    if top is None or top <= int(priority[rows].min()):  # no job holds devices above theirs
        for jid in held:
            if waiting[jid] is WaitReason.PRIORITY:
                waiting[jid] = WaitReason.SHARE
        return
    usable = problem.usable()
    # per type: devices held by jobs above each priority (placed priorities sorted, suffix sums)
    by_type: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for t in problem.types:
        mine = sorted((prio, n) for prio, a, n in placed if a == t)
        prios = np.array([m[0] for m in mine], dtype=np.int64)
        suffix = np.concatenate([np.cumsum([m[1] for m in mine][::-1])[::-1], [0]]) if mine else np.zeros(1)
        by_type[t] = (prios, suffix)
    for jid, i in zip(held, rows.tolist(), strict=True):
        mine_p = int(problem.priority[i])
        above = {
            t: int(suffix[np.searchsorted(prios, mine_p, side="right")])
            for k, t in enumerate(problem.types)
            if usable[i, k]
            for prios, suffix in (by_type[t],)
        }
        if waiting[jid] is WaitReason.PRIORITY:
            waiting[jid] = WaitReason.PRIORITY if any(v > 0 for v in above.values()) else WaitReason.SHARE
        elif any(v >= problem.scale[i] for v in above.values()):
            waiting[jid] = WaitReason.PRIORITY


def _rules_bind(problem: AllocationProblem, cache: DecideCache) -> bool:
    """Whether a program rule binds some type (``core.sites._rule_bound``), kept while the arrays it reads
    are the very same objects."""
    key = (problem.capacity, problem.public_reserve, problem.quota, problem.tenant_cap, problem.cap_limit)
    last = cache.rule_bound
    if last is None or not all(a is b for a, b in zip(last[0], key, strict=True)):
        last = cache.rule_bound = (key, bool(problem.n_types and _rule_bound(problem).any()))
    return last[1]


def _index_of(ids: tuple[str, ...], cache: DecideCache) -> dict[str, int]:
    """Each job id's index, kept while the same id tuple comes back."""
    if cache.index_of is None or cache.index_of[0] is not ids:
        cache.index_of = (ids, dict(zip(ids, range(len(ids)), strict=True)))
    return cache.index_of[1]
