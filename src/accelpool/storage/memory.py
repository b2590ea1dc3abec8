"""MemoryStore: the SchedulerStore port in plain dictionaries (simulator, tests).

Same behaviour as the SQL store, checked by the same contract suite (tests/contracts/test_store_contract.py):
state transitions with events and reasons, grants never below zero, metering marks, throughput rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from accelpool.core.accounting import amount_krw, meter
from accelpool.core.errors import AlreadyExists
from accelpool.core.rounds import Decision, JobStatus, Snapshot
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import (
    AcceleratorType,
    Charge,
    Grant,
    Job,
    JobState,
    Node,
    Program,
    Tenant,
)
from accelpool.ports import EventKind, ExecutorEvent, RunSpec


@dataclass
class JobRecord:
    """A job's mutable state inside the store."""

    status: JobStatus
    throughput: dict[str, float]
    run: RunSpec
    events: list[tuple[float, str, str]] = field(default_factory=list)
    reason: str = ""
    position: int | None = None
    start_time: float | None = None
    end_time: float | None = None
    preemptions: int = 0


class MemoryStore:
    def __init__(
        self, accelerators: Mapping[str, AcceleratorType] | None = None, *, keep_charges: bool = True
    ) -> None:
        """``keep_charges=False`` keeps only totals (``charged_krw`` per tenant), not every Charge row: a long
        simulation meters every running job every round and would otherwise hold millions of rows."""
        self.keep_charges = keep_charges
        self.charged_krw: dict[str, int] = {}
        self.accelerators: dict[str, AcceleratorType] = dict(accelerators or {})
        self.nodes: dict[str, Node] = {}
        self.down: set[str] = set()
        self.tenants: dict[str, Tenant] = {}
        self.programs: dict[str, Program] = {}
        self.grants: dict[str, Grant] = {}
        self.price_list: dict[str, int] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.active: dict[str, None] = {}  # insertion-ordered ids of non-terminal jobs
        self.charges: list[Charge] = []
        self.now = 0.0
        self._matrix: tuple[int, ThroughputMatrix] | None = None
        self._version = 0  # bumped whenever the active jobs, their speeds or the node types change
        self._healthy: tuple[Node, ...] | None = None  # healthy nodes, rebuilt when nodes change

    # -- set-up (operators, tenants) ------------------------------------------------------------------

    def add_nodes(self, nodes: Iterable[Node]) -> None:
        for n in nodes:
            self.nodes[n.name] = n
        self._version += 1
        self._healthy = None

    def set_node_down(self, name: str, down: bool = True) -> None:
        (self.down.add if down else self.down.discard)(name)
        self._healthy = None

    def set_prices(self, prices: Mapping[str, int]) -> None:
        self.price_list.update({k: int(v) for k, v in prices.items()})

    def add_tenant(self, tenant: Tenant) -> None:
        self.tenants[tenant.id] = tenant

    def add_program(self, program: Program) -> None:
        self.programs[program.id] = program

    def add_grant(self, grant: Grant) -> None:
        self.grants[grant.id] = grant

    def submit(self, job: Job, throughput: Mapping[str, float], run: RunSpec | None = None) -> None:
        if job.id in self.jobs:
            raise AlreadyExists(f"job {job.id} already exists")
        self.jobs[job.id] = JobRecord(JobStatus(job, JobState.QUEUED), dict(throughput), run or RunSpec())
        self.jobs[job.id].events.append((job.submit_time, "queued", "submitted"))
        self.active[job.id] = None
        self._version += 1

    def cancel(self, job_id: str, now: float, reason: str = "cancelled by user") -> bool:
        """Cancel a job that is not finished; True when it was running (its process must be stopped).

        A running job is charged for its devices from its last metered mark up to the cancel (integer KRW,
        capped at what its grant has left), as the SQL store does."""
        rec = self.jobs[job_id]
        st = rec.status
        if _terminal(st.state):
            return False
        running = st.state is JobState.RUNNING
        if running and st.placement is not None and st.metered_until is not None and now > st.metered_until:
            ch = meter(
                job=job_id,
                tenant=st.job.tenant,
                grant=st.job.grant,
                placement=st.placement,
                start=float(st.metered_until),
                end=now,
                price_krw_per_hour=int(self.price_list.get(st.placement.accelerator, 0)),
                grant_remaining_krw=None,
            )
            if ch is not None:
                self.record_charges([ch])
        self._transition(rec, JobState.CANCELLED, now, reason)
        return running

    def measure(self, job_id: str, accelerator: str, steps_per_second: float) -> None:
        """A measured throughput replaces the estimate for that job and type."""
        self.jobs[job_id].throughput[accelerator] = float(steps_per_second)
        self._version += 1

    # -- SchedulerStore port --------------------------------------------------------------------------

    def snapshot(self, now: float, round_seconds: float) -> Snapshot:
        self.now = now
        statuses = tuple(self.jobs[j].status for j in self.active)
        return Snapshot(
            now=now,
            nodes=self._healthy_nodes(),
            jobs=statuses,
            throughput=self._throughput(),
            accelerators=self.accelerators,
            tenants=tuple(self.tenants.values()),
            programs=tuple(self.programs.values()),
            grants=tuple(self.grants.values()),
            prices_krw_per_hour=dict(self.price_list),
            round_seconds=round_seconds,
        )

    def record_decision(self, decision: Decision) -> None:
        now = decision.now
        running, queued = JobState.RUNNING, JobState.QUEUED
        for job_id, reason in decision.preempt:
            rec = self.jobs[job_id]
            if rec.status.state is running:
                rec.preemptions += 1
                # preempted, then requeued at once: both events, one status update
                rec.events.append((now, JobState.PREEMPTED, reason))
                requeued = f"requeued after preemption ({reason})"
                rec.events.append((now, queued, requeued))
                rec.status = _with(rec.status, state=queued, placement=None)
                rec.reason = requeued
        for p in decision.start:
            rec = self.jobs[p.job]
            if rec.start_time is None:
                rec.start_time = now
            why = f"placed on {p.count} x {p.accelerator}"
            rec.status = _with(rec.status, state=running, placement=p, metered_until=now)
            rec.events.append((now, running, why))
            rec.reason = why
        positions = decision.positions
        jobs = self.jobs
        details = decision.details
        for job_id, why in decision.waiting.items():
            rec = jobs[job_id]
            rec.reason = details.get(job_id) or why  # the reason in words, or its code (a str)
            rec.position = positions.get(job_id)
        for p in decision.keep:
            self.jobs[p.job].position = None

    def record_events(self, events: Sequence[ExecutorEvent]) -> None:
        for e in events:
            rec = self.jobs.get(e.job)
            if rec is None or _terminal(rec.status.state):
                continue
            if e.kind == EventKind.PROGRESS and e.steps is not None:
                rec.status = _with(rec.status, steps_done=max(rec.status.steps_done, e.steps))
            elif e.kind == EventKind.EXITED and rec.status.state == JobState.RUNNING:
                if e.exit_code == 0:
                    rec.end_time = e.time
                    self._transition(rec, JobState.SUCCEEDED, e.time, "exited 0")
                elif e.reason.startswith("stopped"):
                    continue  # a stop we asked for; the decision already requeued it
                else:
                    rec.end_time = e.time
                    self._transition(rec, JobState.FAILED, e.time, e.reason or f"exit code {e.exit_code}")
            elif e.kind == EventKind.LOST and rec.status.state == JobState.RUNNING:
                rec.preemptions += 1
                self._transition(rec, JobState.PREEMPTED, e.time, e.reason or "lost")
                self._transition(rec, JobState.QUEUED, e.time, "requeued")

    def record_charges(self, charges: Sequence[Charge]) -> None:
        for c in charges:
            rec = self.jobs[c.job]
            mark = rec.status.metered_until
            if mark is not None and c.start < mark:
                # time before the job's metered mark was already charged (e.g. at a cancel): book the rest
                if c.end <= mark:
                    continue
                part = c.device_seconds * (c.end - mark) / (c.end - c.start)
                price = int(self.price_list.get(c.accelerator, 0))
                c = replace(c, start=mark, device_seconds=part, amount_krw=amount_krw(part, price))
            seconds_on = dict(rec.status.seconds_on)
            seconds_on[c.accelerator] = seconds_on.get(c.accelerator, 0.0) + (c.end - c.start)
            rec.status = _with(rec.status, seconds_on=seconds_on, metered_until=c.end)
            if c.grant is not None and c.grant in self.grants:
                g = self.grants[c.grant]
                amount = min(c.amount_krw, g.remaining_krw)
                if amount or c.amount_krw:
                    self.grants[c.grant] = replace(g, spent_krw=g.spent_krw + amount)
                if amount != c.amount_krw:
                    c = replace(c, amount_krw=amount)
            self.charged_krw[c.tenant] = self.charged_krw.get(c.tenant, 0) + c.amount_krw
            if self.keep_charges:
                self.charges.append(c)

    def running(self) -> list[JobStatus]:
        jobs, running = self.jobs, JobState.RUNNING
        return [st for j in self.active if (st := jobs[j].status).state is running]

    def run_spec(self, job_id: str) -> RunSpec:
        return self.jobs[job_id].run

    def prices(self) -> Mapping[str, int]:
        return self.price_list

    def grant_balances(self) -> Mapping[str, int]:
        return {g.id: g.remaining_krw for g in self.grants.values()}

    # -- internals ------------------------------------------------------------------------------------

    def _healthy_nodes(self) -> tuple[Node, ...]:
        """The same tuple round after round while no node is added or goes down (lets the core reuse work)."""
        if self._healthy is None:
            self._healthy = tuple(n for name, n in sorted(self.nodes.items()) if name not in self.down)
        return self._healthy

    def _throughput(self) -> ThroughputMatrix:
        """The active jobs' speeds, rebuilt only when the active set or a measurement changed."""
        if self._matrix is None or self._matrix[0] != self._version:
            types = sorted({n.accelerator for n in self.nodes.values()})
            rows = {j: self.jobs[j].throughput for j in self.active}
            self._matrix = (self._version, ThroughputMatrix.from_rows(rows, types))
        return self._matrix[1]

    def _transition(self, rec: JobRecord, state: JobState, now: float, reason: str) -> None:
        placement = rec.status.placement if state is JobState.RUNNING else None
        rec.status = _with(rec.status, state=state, placement=placement)
        rec.events.append((now, state, reason))  # a JobState is a str (StrEnum)
        rec.reason = reason
        if _terminal(state):
            self.active.pop(rec.status.job.id, None)
            self._version += 1


_UNSET: object = object()


def _terminal(state: JobState) -> bool:
    return state is JobState.SUCCEEDED or state is JobState.FAILED or state is JobState.CANCELLED


def _with(
    s: JobStatus,
    *,
    state: JobState | object = _UNSET,
    placement: object = _UNSET,
    steps_done: float | object = _UNSET,
    seconds_on: object = _UNSET,
    metered_until: object = _UNSET,
) -> JobStatus:
    """``dataclasses.replace`` for JobStatus, about 4x faster (it sits on the simulator's hot path)."""
    return JobStatus(
        s.job,
        s.state if state is _UNSET else state,  # type: ignore[arg-type]
        s.placement if placement is _UNSET else placement,  # type: ignore[arg-type]
        s.steps_done if steps_done is _UNSET else steps_done,  # type: ignore[arg-type]
        s.seconds_on if seconds_on is _UNSET else seconds_on,  # type: ignore[arg-type]
        s.metered_until if metered_until is _UNSET else metered_until,  # type: ignore[arg-type]
    )
