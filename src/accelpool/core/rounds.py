"""One scheduling round: from a snapshot and a policy to a Decision (who starts, stays, is preempted, waits).

The policy says what fraction of time each job should get on each type (x[j,t]); a round must turn that
into whole devices on real nodes. Like Gavel, a job whose received share lags its target share goes
first. With ``age[j]`` = seconds since job j was submitted (at least one round):

    received[j,t] = seconds job j has run on t / age[j]
    priority[j,t] = sum_t' x[j,t'] / sum_t' received[j,t']   (ranking "job", the default: the job's
                    whole time share over the share of its age it has run on any type; infinite when it
                    has run nowhere; the same on every type t with x[j,t] > 0)
    or, with ranking "ratio", x[j,t] / received[j,t]     (Gavel's per-type ratio)
    or, with ranking "deficit", (x[j,t] - received[j,t]) * age[j]   (seconds owed on t)

The ranking and the keep bonus come from the ``RoundConfig`` passed to ``decide`` (no module switches).

The job ratio is the default. Gavel's per-type ratio ignores time a job got on a type the allocation did
not give it (back-fill), so a back-filled job keeps claiming its allocated type as if it had not run;
counting all of a job's time fixes that. On Gavel's three Philly traces the job ratio gives the
heterogeneity-aware policy 1-5% lower average completion time than the per-type ratio (6214e9: 409,503
vs 428,900 s) and the agnostic fair-share -0.3% to +3.5% (evidence in docs/simulator.md). The deficit
favours long-starved old jobs and made fair-share ~25% worse on b436b2. Among a job's types, the one
with the larger share x[j,t] is tried first.

Pairs (j,t) are taken in decreasing priority; a job is placed at most once, on one type, all its devices
at once (gang) on as few nodes as possible; a job that already runs on the chosen type keeps its devices.
Capacity left over after the policy's pairs is back-filled with waiting jobs that may use it
(work-conserving). Every job that does not run gets a reason.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem, Policy
from accelpool.core.problem import build_problem
from accelpool.core.round_config import RoundConfig
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import (
    AcceleratorType,
    Grant,
    Job,
    JobState,
    Node,
    Program,
    Tenant,
    WaitReason,
)


@dataclass(frozen=True)
class Placement:
    """Where a job runs: one accelerator type, specific devices on one or more nodes."""

    job: str
    accelerator: str
    devices: tuple[tuple[str, tuple[int, ...]], ...]

    @functools.cached_property
    def count(self) -> int:
        return sum(len(d) for _, d in self.devices)

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.devices)


@dataclass(frozen=True)
class JobStatus:
    """A job as the scheduler sees it in a snapshot."""

    job: Job
    state: JobState
    placement: Placement | None = None
    steps_done: float = 0.0
    seconds_on: Mapping[str, float] = field(default_factory=dict)
    metered_until: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """Immutable facts for one round. ``nodes`` are the healthy nodes only."""

    now: float
    nodes: tuple[Node, ...]
    jobs: tuple[JobStatus, ...]
    throughput: ThroughputMatrix
    accelerators: Mapping[str, AcceleratorType] = field(default_factory=dict)
    tenants: tuple[Tenant, ...] = ()
    programs: tuple[Program, ...] = ()
    grants: tuple[Grant, ...] = ()
    prices_krw_per_hour: Mapping[str, int] = field(default_factory=dict)
    round_seconds: float = 360.0


@dataclass(frozen=True)
class Decision:
    """What a round decided. ``preempt`` pairs a running job with the reason it must stop."""

    now: float
    allocation: Allocation
    start: tuple[Placement, ...] = ()
    keep: tuple[Placement, ...] = ()
    preempt: tuple[tuple[str, str], ...] = ()
    waiting: Mapping[str, WaitReason] = field(default_factory=dict)
    positions: Mapping[str, int] = field(default_factory=dict)

    def placements(self) -> tuple[Placement, ...]:
        return self.keep + self.start


def round_cost_krw(devices: int, price_krw_per_hour: int, seconds: float) -> int:
    """KRW for ``devices`` of a type for ``seconds`` (rounded up: a grant is never under-reserved).

    Exact: integer arithmetic, with the seconds taken as their shortest decimal form (0.1 s is 1/10 s)."""
    if float(seconds).is_integer():
        return -(-int(devices) * int(price_krw_per_hour) * int(seconds) // 3600)
    return math.ceil(int(devices) * int(price_krw_per_hour) * Fraction(repr(float(seconds))) / 3600)


_FreeTemplate = tuple[
    tuple[Node, ...],
    dict[str, dict[str, list[int]]],
    dict[str, str | None],
    dict[str, int],
    dict[tuple[str, str | None], int],
]


class _FreeDevices:
    """Free device indices per node, per type; places gangs on as few nodes as possible (best fit)."""

    def __init__(self, nodes: tuple[Node, ...], cache: DecideCache) -> None:
        # Free lists are replaced, never changed in place, so a per-type shallow copy of a template made
        # once per node tuple (kept in the caller's cache) is enough.
        cached = cache.free_template
        if cached is None or cached[0] is not nodes:
            by_type: dict[str, dict[str, list[int]]] = {}
            for n in nodes:
                by_type.setdefault(n.accelerator, {})[n.name] = list(range(n.devices))
            totals = {t: sum(len(v) for v in d.values()) for t, d in by_type.items()}
            zones: dict[tuple[str, str | None], int] = {}
            for n in nodes:
                zones[n.accelerator, n.zone] = zones.get((n.accelerator, n.zone), 0) + n.devices
            cached = cache.free_template = (nodes, by_type, {n.name: n.zone for n in nodes}, totals, zones)
        self.by_type = {t: dict(d) for t, d in cached[1].items()}
        self.zone = cached[2]
        self.initial = cached[3]
        self.initial_zones = cached[4]

    def total(self, accelerator: str) -> int:
        return sum(len(v) for v in self.by_type.get(accelerator, {}).values())

    def take_exact(self, p: Placement) -> bool:
        nodes = self.by_type.get(p.accelerator)
        if nodes is None:
            return False
        for n, d in p.devices:
            f = nodes.get(n)
            if f is None or (d[0] not in f if len(d) == 1 else not set(d).issubset(f)):
                return False
        for n, d in p.devices:
            nodes[n] = [i for i in nodes[n] if i not in d]
        return True

    def place(self, job: str, accelerator: str, count: int, zone: str | None) -> Placement | None:
        on_type = self.by_type.get(accelerator, {})
        nodes = [(n, f) for n, f in on_type.items() if f and (zone is None or self.zone[n] == zone)]
        best: tuple[int, str] | None = None
        total = 0
        for n, f in nodes:
            size = len(f)
            total += size
            if size >= count and (best is None or (size, n) < best):
                best = (size, n)
        if total < count:
            return None
        if best is not None:
            chosen = [(best[1], count)]
        else:
            chosen, need = [], count
            for n, f in sorted(nodes, key=lambda nf: (-len(nf[1]), nf[0])):
                take = min(need, len(f))
                chosen.append((n, take))
                need -= take
                if need == 0:
                    break
        devices = []
        for n, k in chosen:
            free = on_type[n]
            devices.append((n, tuple(free[:k])))
            on_type[n] = free[k:]
        return Placement(job, accelerator, tuple(devices))


_TERMINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class DecideCache:
    """Work ``decide`` may reuse from one round to the next, owned by the caller (the Reconciler keeps one).

    The core keeps no state of its own: without a cache every call builds everything afresh. Entries are
    keyed by the identity of the snapshot's inputs and hold references to them, so an identity compared
    is never reused by another object. The results are the same with or without a cache.
    """

    def __init__(self) -> None:
        self.problems = _ProblemCache()
        self.id_rank: tuple[tuple[str, ...], np.ndarray] | None = None
        self.free_template: _FreeTemplate | None = None


def decide(
    snapshot: Snapshot,
    policy: Policy,
    cache: DecideCache | None = None,
    config: RoundConfig | None = None,
) -> Decision:
    """Run the policy on the snapshot and turn its allocation into placements for this round.

    ``cache`` carries reusable work between calls (see DecideCache); pass the same one every round.
    ``config`` holds every setting of the round (RoundConfig(): the live defaults)."""
    if cache is None:
        cache = DecideCache()
    if config is None:
        config = RoundConfig()
    done = _TERMINAL
    statuses = [
        s
        for s in snapshot.jobs
        if s.state is not done[0] and s.state is not done[1] and s.state is not done[2]
    ]
    problem = cache.problems.get(snapshot, statuses, config)
    alloc = policy(problem)
    usable = problem.usable()
    order = _pair_order(snapshot, statuses, alloc, usable, config)
    return _place(snapshot, statuses, alloc, order, usable, problem, cache)


class _ProblemCache:
    """The last round's problem, reused while its inputs are the very same objects.

    A store that hands out the same job, throughput, tenant and program objects round after round (the
    memory store does) gets the arrays built once; only what drifts every round (steps left, grant
    balances, time to deadlines) is refreshed. Inputs that are new objects simply rebuild. The entry keeps
    references to its inputs, so the identities it compares stay valid.
    """

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._refs: tuple[object, ...] = ()
        self._problem: AllocationProblem | None = None
        self._nodes: tuple[Node, ...] | None = None
        self._capacity: dict[str, int] = {}

    def get(self, snapshot: Snapshot, statuses: list[JobStatus], config: RoundConfig) -> AllocationProblem:
        jobs = [s.job for s in statuses]
        if snapshot.nodes is self._nodes:
            capacity = self._capacity
        else:
            capacity = {}
            for node in snapshot.nodes:
                capacity[node.accelerator] = capacity.get(node.accelerator, 0) + node.devices
            self._nodes, self._capacity = snapshot.nodes, capacity
        inf = math.inf
        remaining = [
            (t - s.steps_done if t > s.steps_done else 0.0) if (t := s.job.total_steps) is not None else inf
            for s in statuses
        ]
        key = (
            id(snapshot.throughput),
            tuple(map(id, jobs)),
            tuple(sorted(capacity.items())),
            id(snapshot.accelerators),
            tuple(map(id, snapshot.tenants)),
            tuple(map(id, snapshot.programs)),
            tuple((g.id, g.tenant, g.program) for g in snapshot.grants),
            tuple(sorted(snapshot.prices_krw_per_hour.items())),
            snapshot.round_seconds,
            config.per_device_levels,
        )
        last = self._problem
        if last is None or key != self._key:
            problem = build_problem(
                jobs,
                capacity,
                snapshot.throughput,
                accelerators=snapshot.accelerators,
                tenants=snapshot.tenants,
                programs=snapshot.programs,
                grants=snapshot.grants,
                prices_krw_per_hour=snapshot.prices_krw_per_hour,
                remaining_steps={j.id: r for j, r in zip(jobs, remaining, strict=True)},
                now=snapshot.now,
                horizon_seconds=snapshot.round_seconds,
                per_device_levels=config.per_device_levels,
            )
            self._key, self._problem = key, problem
            self._refs = (
                snapshot.throughput,
                jobs,
                snapshot.accelerators,
                snapshot.tenants,
                snapshot.programs,
            )
            return problem
        balance = {g.id: g.remaining_krw for g in snapshot.grants}
        # a new frozen problem sharing the unchanged arrays (the cached one is never changed)
        return dataclasses.replace(
            last,
            remaining_steps=np.array(remaining, dtype=np.float64),
            budget_krw=np.array([balance[j.grant] if j.grant in balance else -1 for j in jobs], dtype=np.int64),
            time_to_deadline=np.array(
                [j.deadline - snapshot.now if j.deadline is not None else np.inf for j in jobs],
                dtype=np.float64,
            ),
        )


def _id_rank(ids: tuple[str, ...], cache: DecideCache) -> np.ndarray:
    """Each id's rank in sorted order (a tie-breaker), kept while the same id tuple comes back."""
    if cache.id_rank is None or cache.id_rank[0] is not ids:
        rank = np.empty(len(ids), dtype=np.int64)
        rank[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
        cache.id_rank = (ids, rank)
    return cache.id_rank[1]


def _pair_order(
    snapshot: Snapshot,
    statuses: list[JobStatus],
    alloc: Allocation,
    usable: np.ndarray,
    config: RoundConfig,
) -> list[tuple[int, int]]:
    """(job index, type index) pairs with x > 0, highest Gavel priority first."""
    now = snapshot.now
    types = alloc.types
    n = len(statuses)
    if n == 0:
        return []
    floor = snapshot.round_seconds
    ages = np.maximum(now - np.array([s.job.submit_time for s in statuses]), floor)
    spent = [s.seconds_on for s in statuses]
    received = np.zeros((n, len(types)))
    for k, t in enumerate(types):
        received[:, k] = [d.get(t, 0.0) if d else 0.0 for d in spent]
    received /= ages[:, None]
    tindex = {t: k for k, t in enumerate(types)}
    running = JobState.RUNNING
    running_on = np.array(
        [
            tindex.get(s.placement.accelerator, -1) if s.placement is not None and s.state is running else -1
            for s in statuses
        ]
    )
    x = alloc.x
    if config.ranking == "job":
        total = received.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_job = np.where(total > 0, x.sum(axis=1) / np.maximum(total, 1e-12), np.inf)
        prio = np.repeat(per_job[:, None], len(types), axis=1)
    elif config.ranking == "deficit":
        prio = (x - received) * ages[:, None]
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            prio = np.where(received > 0, x / np.maximum(received, 1e-12), np.inf)
    if config.keep_bonus > 0:
        on_type = running_on[:, None] == np.arange(len(types))[None, :]
        prio = np.where(on_type & (prio > 0), prio * (1.0 + config.keep_bonus), prio)
    prio = np.where((x > 1e-9) & usable, prio, -np.inf)
    rows, cols = np.nonzero(np.isfinite(prio) | (prio == np.inf))
    in_place = running_on[rows] == cols
    keys = np.lexsort((cols, rows, -x[rows, cols], ~in_place, -np.minimum(prio[rows, cols], 1e300)))
    return list(zip(rows[keys].tolist(), cols[keys].tolist(), strict=True))


def _place(
    snapshot: Snapshot,
    statuses: list[JobStatus],
    alloc: Allocation,
    order: list[tuple[int, int]],
    usable: np.ndarray,
    problem: AllocationProblem,
    cache: DecideCache,
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
    running_state = JobState.RUNNING
    grants = {g.id: g.remaining_krw for g in snapshot.grants}
    prices = snapshot.prices_krw_per_hour
    chosen: dict[int, int] = {}
    reasons: dict[str, WaitReason] = dict(alloc.held)

    def try_choose(i: int, k: int) -> bool:
        s = statuses[i]
        t = types[k]
        scale = s.job.scale
        if i in chosen or type_free[t] < scale:
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
        if any(zone_free.get(key, 0) < k for key, k in held.items()):
            return False
        if s.job.grant is not None and s.job.grant in grants:
            cost = round_cost_krw(s.job.scale, int(prices.get(t, 0)), snapshot.round_seconds)
            if cost > grants[s.job.grant]:
                reasons.setdefault(s.job.id, WaitReason.BUDGET)
                return False
            grants[s.job.grant] -= cost
        chosen[i] = k
        type_free[t] -= scale
        for key, k2 in held.items():
            zone_free[key] -= k2
        return True

    for i, k in order:
        if i not in chosen and type_free[types[k]] >= statuses[i].job.scale:
            try_choose(i, k)
    # Back-fill: waiting jobs the policy did not hold, best first, on the type they run fastest on.
    most = max(type_free.values(), default=0)
    if most > 0:
        by_rank = np.lexsort((problem.submit_time, -problem.priority)).tolist()
        speed_order = np.argsort(-tput, axis=1, kind="stable").tolist()
        held = alloc.held
        for i in by_rank:
            s = statuses[i]
            if i in chosen or s.job.scale > most or s.job.id in held:
                continue
            for k in speed_order[i]:
                if usable[i, k] and try_choose(i, k):
                    reasons.pop(s.job.id, None)
                    most = max(type_free.values())
                    break
            if most <= 0:
                break

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
        placed = free.place(s.job.id, types[k], s.job.scale, s.job.zone)
        if placed is None:
            reasons[s.job.id] = WaitReason.GANG
        else:
            start.append(placed)

    running_ids = {p.job for p in keep}
    started_ids = {p.job for p in start}
    preempt = []
    waiting = {}
    capacity_reason, priority_reason = WaitReason.CAPACITY, WaitReason.PRIORITY
    for s in statuses:
        jid = s.job.id
        if jid in running_ids:
            continue
        if s.state is running:
            why = reasons.get(jid, priority_reason)
            preempt.append((jid, "moved" if jid in started_ids else str.__str__(why)))
        if jid not in started_ids:
            waiting[jid] = reasons.get(jid, capacity_reason)
    # queue positions: priority (high first), submit time, job id
    idx = np.array([i for i, s in enumerate(statuses) if s.job.id in waiting], dtype=np.int64)
    ids = problem.job_ids
    ranked = idx[np.lexsort((_id_rank(ids, cache)[idx], problem.submit_time[idx], -problem.priority[idx]))]
    positions = {ids[i]: p + 1 for p, i in enumerate(ranked.tolist())}
    return Decision(
        now=snapshot.now,
        allocation=alloc,
        start=tuple(start),
        keep=tuple(keep),
        preempt=tuple(preempt),
        waiting=waiting,
        positions=positions,
    )
