"""One scheduling round: from a snapshot and a policy to a Decision (who starts, stays, is preempted, waits).

The policy says what fraction of time each job should get on each type (x[j,t]); a round must turn that
into whole devices on real nodes. Like Gavel, a job whose received share lags its target share goes
first. With ``age[j]`` = seconds since job j was submitted (at least one round):

    received[j,t] = seconds job j has run on t / age[j]
    priority[j,t] = (x[j,t] - received[j,t]) * age[j]     (seconds owed on t: the deficit; default)
    or, with PRIORITY = "ratio", x[j,t] / received[j,t]    (Gavel's ratio; infinite when nothing received)

The deficit gave ~2% lower average completion time than the ratio on Gavel's b436b2 trace under
max-min-fairness (87,808 s vs 89,599 s, 36:36:36, 360 s rounds) and ~15% fewer preemptions.

Pairs (j,t) are taken in decreasing priority; a job is placed at most once, on one type, all its devices
at once (gang) on as few nodes as possible; a job that already runs on the chosen type keeps its devices.
Capacity left over after the policy's pairs is back-filled with waiting jobs that may use it
(work-conserving). Every job that does not run gets a reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from accelpool.core.allocation import Allocation, Policy
from accelpool.core.problem import build_problem
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

    @property
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
    """KRW for ``devices`` of a type for ``seconds`` (rounded up: a grant is never under-reserved)."""
    return math.ceil(devices * price_krw_per_hour * seconds / 3600.0 - 1e-9)


class _FreeDevices:
    """Free device indices per node, per type; places gangs on as few nodes as possible (best fit)."""

    def __init__(self, nodes: tuple[Node, ...]) -> None:
        self.by_type: dict[str, dict[str, list[int]]] = {}
        self.zone = {n.name: n.zone for n in nodes}
        for n in nodes:
            self.by_type.setdefault(n.accelerator, {})[n.name] = list(range(n.devices))

    def total(self, accelerator: str) -> int:
        return sum(len(v) for v in self.by_type.get(accelerator, {}).values())

    def take_exact(self, p: Placement) -> bool:
        nodes = self.by_type.get(p.accelerator, {})
        if not all(n in nodes and set(d) <= set(nodes[n]) for n, d in p.devices):
            return False
        for n, d in p.devices:
            nodes[n] = [i for i in nodes[n] if i not in set(d)]
        return True

    def place(self, job: str, accelerator: str, count: int, zone: str | None) -> Placement | None:
        nodes = {n: f for n, f in self.by_type.get(accelerator, {}).items()
                 if f and (zone is None or self.zone[n] == zone)}
        if sum(len(f) for f in nodes.values()) < count:
            return None
        fits = [n for n, f in nodes.items() if len(f) >= count]
        if fits:
            best = min(fits, key=lambda n: (len(nodes[n]), n))
            chosen = [(best, count)]
        else:
            chosen, need = [], count
            for n in sorted(nodes, key=lambda n: (-len(nodes[n]), n)):
                take = min(need, len(nodes[n]))
                chosen.append((n, take))
                need -= take
                if need == 0:
                    break
        devices = []
        for n, k in chosen:
            free = self.by_type[accelerator][n]
            devices.append((n, tuple(free[:k])))
            self.by_type[accelerator][n] = free[k:]
        return Placement(job, accelerator, tuple(devices))


def decide(snapshot: Snapshot, policy: Policy) -> Decision:
    """Run the policy on the snapshot and turn its allocation into placements for this round."""
    statuses = [s for s in snapshot.jobs if not s.state.terminal]
    capacity: dict[str, int] = {}
    for node in snapshot.nodes:
        capacity[node.accelerator] = capacity.get(node.accelerator, 0) + node.devices
    remaining = {
        s.job.id: max(0.0, s.job.total_steps - s.steps_done) if s.job.total_steps is not None else math.inf
        for s in statuses
    }
    problem = build_problem(
        [s.job for s in statuses], capacity, snapshot.throughput,
        accelerators=snapshot.accelerators, tenants=snapshot.tenants, programs=snapshot.programs,
        grants=snapshot.grants, prices_krw_per_hour=snapshot.prices_krw_per_hour,
        remaining_steps=remaining, now=snapshot.now, horizon_seconds=snapshot.round_seconds,
    )
    alloc = policy(problem)
    usable = problem.usable()
    order = _pair_order(snapshot, statuses, alloc, usable)
    return _place(snapshot, statuses, alloc, order, usable, problem.throughput)


PRIORITY = "deficit"
"""How pairs are ranked: "deficit" (seconds owed) or "ratio" (Gavel's x / received)."""


def _pair_order(
    snapshot: Snapshot, statuses: list[JobStatus], alloc: Allocation, usable: np.ndarray
) -> list[tuple[int, int]]:
    """(job index, type index) pairs with x > 0, highest Gavel priority first."""
    now = snapshot.now
    types = alloc.types
    n = len(statuses)
    if n == 0:
        return []
    received = np.zeros((n, len(types)))
    running_on = np.full(n, -1)
    for i, s in enumerate(statuses):
        age = max(now - s.job.submit_time, snapshot.round_seconds)
        for t, secs in s.seconds_on.items():
            if t in types:
                received[i, types.index(t)] = secs / age
        if s.placement is not None and s.state == JobState.RUNNING and s.placement.accelerator in types:
            running_on[i] = types.index(s.placement.accelerator)
    x = alloc.x
    if PRIORITY == "deficit":
        ages = np.array([max(now - s.job.submit_time, snapshot.round_seconds) for s in statuses])
        prio = (x - received) * ages[:, None]
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            prio = np.where(received > 0, x / np.maximum(received, 1e-12), np.inf)
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
    tput: np.ndarray,
) -> Decision:
    types = alloc.types
    free = _FreeDevices(snapshot.nodes)
    type_free = {t: free.total(t) for t in types}
    grants = {g.id: g.remaining_krw for g in snapshot.grants}
    prices = snapshot.prices_krw_per_hour
    chosen: dict[int, int] = {}
    reasons: dict[str, WaitReason] = dict(alloc.held)

    def try_choose(i: int, k: int) -> bool:
        s = statuses[i]
        t = types[k]
        if i in chosen or type_free[t] < s.job.scale:
            return False
        if s.job.grant is not None and s.job.grant in grants:
            cost = round_cost_krw(s.job.scale, int(prices.get(t, 0)), snapshot.round_seconds)
            if cost > grants[s.job.grant]:
                reasons.setdefault(s.job.id, WaitReason.BUDGET)
                return False
            grants[s.job.grant] -= cost
        chosen[i] = k
        type_free[t] -= s.job.scale
        return True

    for i, k in order:
        try_choose(i, k)
    # Back-fill: waiting jobs the policy did not hold, best first, on the type they run fastest on.
    for i in sorted(range(len(statuses)), key=lambda i: (-statuses[i].job.priority, statuses[i].job.submit_time)):
        if i in chosen or statuses[i].job.id in alloc.held:
            continue
        for k in np.argsort(-tput[i], kind="stable").tolist():
            if usable[i, k] and try_choose(i, k):
                reasons.pop(statuses[i].job.id, None)
                break

    keep, start = [], []
    pending = []
    for i, k in chosen.items():
        s = statuses[i]
        if s.state == JobState.RUNNING and s.placement is not None and s.placement.accelerator == types[k]:
            if free.take_exact(s.placement):
                keep.append(s.placement)
                continue
        pending.append((i, k))
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
    for s in statuses:
        if s.state == JobState.RUNNING and s.job.id not in running_ids:
            why = reasons.get(s.job.id, WaitReason.PRIORITY)
            preempt.append((s.job.id, "moved" if s.job.id in started_ids else why.value))
    waiting = {}
    for s in statuses:
        if s.job.id in running_ids or s.job.id in started_ids:
            continue
        waiting[s.job.id] = reasons.get(s.job.id, WaitReason.CAPACITY)
    by_id = {s.job.id: s.job for s in statuses}
    ranked = sorted(waiting, key=lambda j: (-by_id[j].priority, by_id[j].submit_time, j))
    positions = {j: p + 1 for p, j in enumerate(ranked)}
    return Decision(
        now=snapshot.now, allocation=alloc, start=tuple(start), keep=tuple(keep), preempt=tuple(preempt),
        waiting=waiting, positions=positions,
    )

