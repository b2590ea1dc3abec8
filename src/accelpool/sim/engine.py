"""The simulator: replays a Workload through the live system's Reconciler with simulated adapters.

    VirtualClock + MemoryStore + FakeExecutor  ->  Reconciler(policy)  ->  RoundReports  ->  metrics

The loop only does what the world does around a live control plane: it submits jobs when the clock
reaches their arrival, calls ``Reconciler.step()`` once a round and lets the clock move on. When nothing
is queued or running, the clock jumps to the next arrival (idle gaps cost nothing). Jobs that can never
run (no type with a throughput and enough devices) are left out up front and counted.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from accelpool.core.allocation import Policy
from accelpool.core.round_config import RoundConfig
from accelpool.core.types import Grant, Job, Node, Program, Site, Tenant
from accelpool.executors.fake import FakeExecutor
from accelpool.ports import SchedulerStore
from accelpool.runtime.clock import VirtualClock
from accelpool.runtime.reconciler import Reconciler, ReusingPolicy, RoundReport
from accelpool.sim.workload import Workload
from accelpool.storage.memory import JobRecord, MemoryStore

Progress = Callable[[float, int, int], None]
"""(simulated seconds, jobs finished, jobs in total)."""


@dataclass
class Timeline:
    """Per-round series, gathered from RoundReports (arrays once the run ends).

    ``busy[r, t]``: device-seconds used on type t over interval r (from metering), ``interval[r]`` its length
    (s) ending at ``time[r]``; ``tenant_busy[r, g]`` likewise per tenant; ``active[r]`` queued + running
    jobs at round r; ``grant_left[r, k]`` KRW left per grant; ``busy_until`` the end of the last metered
    use (NaN when nothing ran).
    """

    types: tuple[str, ...]
    tenants: tuple[str, ...]
    grants: tuple[str, ...]
    time: list[float] = field(default_factory=list)
    interval: list[float] = field(default_factory=list)
    busy: list[list[float]] = field(default_factory=list)
    tenant_busy: list[list[float]] = field(default_factory=list)
    active: list[int] = field(default_factory=list)
    grant_left: list[list[int]] = field(default_factory=list)
    preemptions: int = 0
    busy_until: float = math.nan


@dataclass
class SimResult:
    policy: str
    workload: Workload
    records: dict[str, JobRecord]
    timeline: Timeline
    rounds: int
    wall_seconds: float
    policy_seconds: float
    unschedulable: tuple[str, ...]
    unfinished: tuple[str, ...]
    capacity: dict[str, int]
    charges_krw: dict[str, int]
    grant_spent_krw: dict[str, int]
    config: RoundConfig = field(default_factory=RoundConfig)
    round_seconds: float = 360.0
    restart_overhead_seconds: float = 0.0
    site_krw: dict[str, int] = field(default_factory=dict)  # KRW charged per site
    site_device_hours: dict[str, float] = field(default_factory=dict)  # device-hours used per site


def schedulable(job: Job, row: dict[str, float] | None, capacity: dict[str, int]) -> bool:
    if not row:
        return False
    return any(
        v > 0 and capacity.get(t, 0) >= job.scale and (not job.allowed or t in job.allowed)
        for t, v in row.items()
    )


class SimStore(SchedulerStore, Protocol):
    """What the simulator needs of a store beyond the reconciler's port: MemoryStore (the simulator's own)
    or SqlStore (the live service's: tests/test_parity.py runs this very engine on both)."""

    def add_nodes(self, nodes: Iterable[Node]) -> None: ...
    def add_sites(self, sites: Iterable[Site]) -> None: ...
    def set_prices(self, prices: Mapping[str, int]) -> None: ...
    def add_tenant(self, tenant: Tenant) -> None: ...
    def add_program(self, program: Program) -> None: ...
    def add_grant(self, grant: Grant) -> None: ...
    def submit(self, job: Job, throughput: Mapping[str, float]) -> Any: ...
    def active_jobs(self) -> int: ...
    def charged_by_tenant(self) -> dict[str, int]: ...


class _Collector:
    def __init__(
        self, store: SimStore, timeline: Timeline, then: Callable[[RoundReport], None] | None
    ) -> None:
        self.store = store
        self.tl = timeline
        self.tindex = {t: k for k, t in enumerate(timeline.types)}
        self.gindex = {t: k for k, t in enumerate(timeline.tenants)}
        self.last = math.nan
        self.then = then

    def __call__(self, report: RoundReport) -> None:
        tl = self.tl
        now = report.decision.now
        busy = [0.0] * len(tl.types)
        tb = [0.0] * len(tl.tenants)
        for c in report.charges:
            busy[self.tindex[c.accelerator]] += c.device_seconds
            tb[self.gindex[c.tenant]] += c.device_seconds
            if c.device_seconds > 0 and not c.end <= tl.busy_until:
                tl.busy_until = c.end
        tl.time.append(now)
        tl.interval.append(0.0 if math.isnan(self.last) else now - self.last)
        self.last = now
        tl.busy.append(busy)
        tl.tenant_busy.append(tb)
        tl.active.append(
            len(report.decision.waiting) + len(report.decision.keep) + len(report.decision.start)
        )
        tl.preemptions += sum(1 for _ in report.decision.preempt)
        if tl.grants:
            left = self.store.grant_balances()
            tl.grant_left.append([left[g] for g in tl.grants])
        if self.then is not None:
            self.then(report)


def simulate(
    workload: Workload,
    policy: Policy,
    *,
    policy_name: str = "",
    round_seconds: float = 360.0,
    restart_overhead_seconds: float = 0.0,
    progress: Progress | None = None,
    max_rounds: int | None = None,
    reuse_allocation: bool = True,
    config: RoundConfig | None = None,
    store: SimStore | None = None,
    on_round: Callable[[RoundReport], None] | None = None,
) -> SimResult:
    """Replay ``workload`` under ``policy`` and return everything metrics need.

    ``config`` is the round's configuration (RoundConfig(): the live defaults); it is recorded in the
    result. ``store``: an empty store to run on instead of a MemoryStore (``records`` are then empty);
    ``on_round`` sees every round."""
    config = config if config is not None else RoundConfig()
    wall0 = time.perf_counter()
    capacity = workload.capacity()
    ok = [j for j in workload.jobs if schedulable(j, dict(workload.throughputs.get(j.id, {})), capacity)]
    dropped = tuple(sorted({j.id for j in workload.jobs} - {j.id for j in ok}))
    arrivals = sorted(ok, key=lambda j: (j.submit_time, j.id))

    timed = _TimedPolicy(ReusingPolicy(policy) if reuse_allocation else policy)
    clock = VirtualClock(arrivals[0].submit_time if arrivals else 0.0)
    if store is None:
        store = MemoryStore(workload.accelerators, keep_charges=False)
    store.add_nodes(workload.cluster.nodes)
    store.add_sites(workload.sites)
    store.set_prices(workload.prices_krw_per_hour)
    for t in workload.tenants:
        store.add_tenant(t)
    for p in workload.programs:
        store.add_program(p)
    for g in workload.grants:
        store.add_grant(g)
    tenants = tuple(sorted({t.id for t in workload.tenants} | {j.tenant for j in arrivals}))
    timeline = Timeline(tuple(sorted(capacity)), tenants, tuple(g.id for g in workload.grants))
    deadlines = any(j.deadline is not None for j in arrivals)
    executor = FakeExecutor(clock, restart_overhead_seconds, progress_events=deadlines)
    reconciler = Reconciler(
        store,
        executor,
        clock,
        timed,
        round_seconds=round_seconds,
        on_round=_Collector(store, timeline, on_round),
        config=config,
    )
    with _no_cycle_collection():
        rounds = _run(
            arrivals, workload, store, reconciler, executor, clock, round_seconds, progress, max_rounds
        )
    records = store.jobs if isinstance(store, MemoryStore) else {}
    unfinished = tuple(sorted(j for j, r in records.items() if not r.status.state.terminal))
    spent = store.grant_balances()
    return SimResult(
        policy=policy_name,
        workload=workload,
        records=records,
        timeline=timeline,
        rounds=rounds,
        wall_seconds=time.perf_counter() - wall0,
        policy_seconds=timed.seconds,
        unschedulable=dropped,
        unfinished=unfinished,
        capacity=capacity,
        charges_krw=store.charged_by_tenant(),
        grant_spent_krw={g.id: g.amount_krw - spent[g.id] for g in workload.grants},
        config=config,
        round_seconds=round_seconds,
        restart_overhead_seconds=restart_overhead_seconds,
        site_krw=dict(store.site_krw) if isinstance(store, MemoryStore) else {},
        site_device_hours=(
            {s: v / 3600.0 for s, v in store.site_device_seconds.items()}
            if isinstance(store, MemoryStore)
            else {}
        ),
    )


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cyclic garbage collector paused for the rounds (restored as it was after them).

    A round allocates many short-lived objects (statuses, outcomes, charges, numpy arrays), so the
    collector's generation-0 threshold is crossed several times a round and each pass walks the young
    objects looking for cycles the rounds do not make: reference counting frees them. Cycles made
    meanwhile (if any) wait for one full collection when the run ends."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
        gc.collect()


def _run(
    arrivals: list[Job],
    workload: Workload,
    store: SimStore,
    reconciler: Reconciler,
    executor: FakeExecutor,
    clock: VirtualClock,
    round_seconds: float,
    progress: Progress | None,
    max_rounds: int | None,
) -> int:
    """The rounds: submit each job at its arrival, step the reconciler once a round, move the clock on
    (to the next arrival when nothing runs). Returns the number of rounds."""
    total = len(arrivals)
    nxt = rounds = 0
    while nxt < total or store.active_jobs():
        now = clock.now()
        while nxt < total and arrivals[nxt].submit_time <= now:
            job = arrivals[nxt]
            store.submit(job, workload.throughputs[job.id])
            nxt += 1
        if not store.active_jobs():
            clock.sleep_until(arrivals[nxt].submit_time)
            continue
        report = reconciler.step()
        rounds += 1
        if progress is not None:
            progress(now, nxt - store.active_jobs(), total)
        if max_rounds is not None and rounds >= max_rounds:
            break
        if not report.decision.placements() and not executor.active():
            if nxt >= total:
                break  # nothing runs, nothing will arrive: the rest can never start (e.g. grants ran dry)
            clock.sleep_until(arrivals[nxt].submit_time)
            continue
        clock.sleep_until(now + round_seconds)
    return rounds


class _TimedPolicy:
    """Wraps a policy to measure the time spent in it (for the benchmark's per-round breakdown)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.seconds = 0.0

    def __call__(self, problem):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return self.policy(problem)
        finally:
            self.seconds += time.perf_counter() - t0


def as_array(rows: list[list[float]], width: int) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), width)
