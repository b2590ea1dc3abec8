"""MemoryStore: the SchedulerStore port in plain dictionaries (simulator, tests).

Same behaviour as the SQL store, checked by the same contract suite (tests/contracts/test_store_contract.py):
state transitions with events and reasons, grants never below zero, metering marks, throughput rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from accelpool.core import ledger
from accelpool.core.errors import AlreadyExists
from accelpool.core.lifecycle import WAITING, Command, Event, Outcome, SchedulerEvent, apply_event, waits
from accelpool.core.reasons import QueueView, position_of
from accelpool.core.rounds import Decision, JobStatus, Snapshot
from accelpool.core.sites import in_service, price_for, probed
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import (
    AcceleratorType,
    Charge,
    Grant,
    Job,
    JobState,
    Node,
    Program,
    Site,
    Tenant,
)
from accelpool.ports import ExecutorEvent, RunSpec

_ONE_WAITING = next(iter(WAITING)) if len(WAITING) == 1 else None  # the one state ``waits`` accepts


class _WaitBoard:
    """The latest round's waiting jobs (their reason codes, queue positions and reasons in words), read
    by the records of the jobs on it (``members``): a round writes the board once instead of a reason and
    a position into every waiting job's record. A record leaves the board (keeping the values of the
    last round it waited in) when its job leaves the waiting set or the store changes its record."""

    __slots__ = ("details", "members", "positions", "waiting")

    def __init__(self) -> None:
        self.details: Mapping[str, str] = {}
        self.waiting: Mapping[str, str] = {}
        self.positions: Mapping[str, int] = {}
        self.members: set[str] = set()


@dataclass
class JobRecord:
    """A job's mutable state inside the store."""

    status: JobStatus
    throughput: dict[str, float]
    run: RunSpec
    events: list[tuple[float, str, str]] = field(default_factory=list)
    start_time: float | None = None
    end_time: float | None = None
    preemptions: int = 0
    _reason: str = ""
    _pending: tuple[Mapping[str, str], str] | None = None  # (a round's reasons in words, the code)
    _position: int | None = None
    _board: _WaitBoard | None = None  # while the job waits: the latest round's board (MemoryStore)

    @property
    def position(self) -> int | None:
        """The job's place in the latest round's queue (None: not queued, or not yet considered)."""
        board = self._board
        if board is not None:
            return board.positions.get(self.status.job.id)
        return self._position

    @position.setter
    def position(self, value: int | None) -> None:
        self._leave_board()
        self._position = value

    @property
    def reason(self) -> str:
        """The job's latest reason: a round's sentence (``Decision.details``, worked out when first read:
        a simulation that never reads it does not write a sentence per waiting job per round), else its
        code, or the reason of its latest state change."""
        board = self._board
        if board is not None:
            jid = self.status.job.id
            return board.details.get(jid) or board.waiting[jid]
        if self._pending is not None:
            details, code = self._pending
            self._reason = details.get(self.status.job.id) or code
            self._pending = None
        return self._reason

    @reason.setter
    def reason(self, text: str) -> None:
        self._leave_board()
        self._reason, self._pending = text, None

    def _leave_board(self) -> None:
        """Off the board, keeping what it says of this job now (its last waiting round's values)."""
        board = self._board
        if board is not None:
            jid = self.status.job.id
            self._pending = (board.details, board.waiting[jid])
            # its position now (a lazy Positions is searched, not built for the whole queue; a reference
            # to the round's mapping kept instead would hold every such mapping for good)
            self._position = position_of(board.positions, jid)
            self._board = None
            board.members.discard(jid)


class MemoryStore:
    def __init__(
        self, accelerators: Mapping[str, AcceleratorType] | None = None, *, keep_charges: bool = True
    ) -> None:
        """``keep_charges=False`` keeps only totals (``charged_krw`` per tenant), not every Charge row: a long
        simulation meters every running job every round and would otherwise hold millions of rows."""
        self.keep_charges = keep_charges
        self.charged_krw: dict[str, int] = {}
        self.site_krw: dict[str, int] = {}  # KRW charged per site
        self.site_device_seconds: dict[str, float] = {}  # device-seconds metered per site
        self.accelerators: dict[str, AcceleratorType] = dict(accelerators or {})
        self.nodes: dict[str, Node] = {}
        self.down: set[str] = set()
        self.down_cause: dict[str, str | None] = {}  # "drained" or "lost" (None: not said)
        self.queue = QueueView()  # the latest round's queue (core.reasons.QueueView)
        self._skipped: frozenset[str] = frozenset()  # starts the last decision did not record
        self._board = _WaitBoard()  # the latest round's waiting jobs, read by their records
        self.tenants: dict[str, Tenant] = {}
        self.programs: dict[str, Program] = {}
        self.grants: dict[str, Grant] = {}
        self.price_list: dict[str, int] = {}
        self.site_list: dict[str, Site] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.active: dict[str, None] = {}  # insertion-ordered ids of non-terminal jobs
        # the statuses of ``active`` in its order, and each active job's index there: rebuilt when the
        # active set changes (None until then), written through by ``_set_status`` (the store's only
        # writer of a record's status) so a snapshot copies a list instead of reading every record
        self._statuses: list[JobStatus] | None = None
        self._slot: dict[str, int] = {}
        # the RUNNING jobs (status set in ``_apply`` only), each with its place in ``active`` (submit order)
        self._running: dict[str, int] = {}
        self._seq: dict[str, int] = {}
        self.charges: list[Charge] = []
        self.now = 0.0
        self._matrix: tuple[int, ThroughputMatrix] | None = None
        self._version = 0  # bumped whenever the active jobs, their speeds or the node types change
        # each active job's row of speeds over the node types of ``_row_types`` (dropped when it ends or is
        # measured), so a change of the active set stacks rows instead of reading every job's mapping
        self._rows: dict[str, tuple[float, ...]] = {}
        self._row_types: tuple[str, ...] = ()
        # nodes in service, out of service, and why (core.sites.in_service), rebuilt when nodes or sites change
        self._healthy: tuple[tuple[Node, ...], tuple[Node, ...], dict[str, str]] | None = None

    # -- set-up (operators, tenants) ------------------------------------------------------------------

    def add_nodes(self, nodes: Iterable[Node]) -> None:
        for n in nodes:
            self.nodes[n.name] = n
        self._version += 1
        self._healthy = None

    def set_node_down(self, name: str, down: bool = True, cause: str | None = None) -> None:
        (self.down.add if down else self.down.discard)(name)
        self.down_cause[name] = cause if down else None
        self._healthy = None

    def add_sites(self, sites: Iterable[Site]) -> None:
        for s in sites:
            self.site_list[s.id] = s
        self._healthy = None

    def set_site_down(self, site: str, down: bool = True) -> None:
        """A site whose controller stops answering: its nodes leave the pool until it returns. A site an
        operator took out (``down_by`` set) stays down: only the operator brings it up."""
        s = self.site_list.get(site)
        if s is not None and (after := probed(s, down)) is not None:  # core.sites.probed: held stays down
            self.site_list[site] = after
            self._healthy = None

    def sites(self) -> list[Site]:
        return list(self.site_list.values())

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
        self._statuses = None
        self._seq[job.id] = len(self._seq)
        self._version += 1

    def cancel(self, job_id: str, now: float, reason: str = "cancelled by user") -> bool:
        """Cancel a job that is not finished; True when it was running (its process must be stopped). A
        running job is billed up to the cancel (``core.lifecycle``)."""
        out, _ = self._apply(self.jobs[job_id], SchedulerEvent(job_id, Command.CANCEL, now, reason))
        return out.stop_process

    def active_jobs(self) -> int:
        """How many jobs are not finished."""
        return len(self.active)

    def charged_by_tenant(self) -> dict[str, int]:
        return dict(self.charged_krw)

    def measure(self, job_id: str, accelerator: str, steps_per_second: float) -> None:
        """A measured throughput replaces the estimate for that job and type."""
        self.jobs[job_id].throughput[accelerator] = float(steps_per_second)
        self._rows.pop(job_id, None)
        self._version += 1

    # -- SchedulerStore port --------------------------------------------------------------------------

    def snapshot(self, now: float, round_seconds: float) -> Snapshot:
        self.now = now
        listed = self._statuses
        if listed is None:
            jobs = self.jobs
            listed = self._statuses = [jobs[j].status for j in self.active]
            self._slot = dict(zip(self.active, range(len(listed)), strict=True))
        statuses = tuple(listed)
        return Snapshot(
            now=now,
            nodes=self._in_service()[0],
            jobs=statuses,
            throughput=self._throughput(),
            accelerators=self.accelerators,
            tenants=tuple(self.tenants.values()),
            programs=tuple(self.programs.values()),
            grants=tuple(self.grants.values()),
            prices_krw_per_hour=dict(self.price_list),
            round_seconds=round_seconds,
            sites=tuple(self.site_list.values()),
            nodes_down=self._in_service()[1],
            down_causes=self._in_service()[2],
        )

    def record_decision(self, decision: Decision) -> list[Charge]:
        now = decision.now
        booked: list[Charge] = []
        for job_id, reason in decision.preempt:
            booked += self._apply(self.jobs[job_id], SchedulerEvent(job_id, Command.PREEMPT, now, reason))[1]
        skipped = []
        for p in decision.start:
            out, _ = self._apply(self.jobs[p.job], SchedulerEvent(p.job, Command.PLACE, now, placement=p))
            if not out.applied:  # no longer queued (cancelled since the snapshot): never started
                skipped.append(p.job)
        self._skipped = frozenset(skipped)
        jobs = self.jobs
        board = self._board
        waiting = decision.waiting
        # the jobs that waited last round and not now leave the board with last round's values; the
        # others read this round's (the reason in words, or its code, when read; the queue position)
        members = board.members
        # usually none: a job that starts leaves the board in ``_apply`` (set.difference of a dict looks the
        # members up by their stored hashes: cheaper than a subset test of the dict's keys)
        for job_id in members.difference(waiting):
            jobs[job_id]._leave_board()
        board.details, board.waiting, board.positions = decision.details, waiting, decision.positions
        only = _ONE_WAITING
        # every member waits now: the new ones are the others (none when as many wait as are members)
        for job_id in waiting.keys() - members if len(waiting) > len(members) else ():
            rec = jobs[job_id]
            state = rec.status.state
            # not cancelled (or started) since the snapshot (``waits``, without a call per waiting job)
            if state is only if only is not None else waits(state):
                rec._board = board
                members.add(job_id)
        for p in decision.keep:
            self.jobs[p.job].position = None
        if len(decision.queue) or not decision.positions:
            self.queue = decision.queue  # the fair order with each queued job's place and start range
        return booked

    def skipped_starts(self) -> frozenset[str]:
        return self._skipped

    def record_events(self, events: Sequence[ExecutorEvent]) -> list[Charge]:
        booked: list[Charge] = []
        jobs = self.jobs
        for e in events:
            rec = jobs.get(e.job)
            if rec is not None:
                booked += self._apply(rec, e)[1]
        return booked

    def record_charges(self, charges: Sequence[Charge]) -> list[Charge]:
        out: list[Charge] = []
        for c in charges:
            rec = self.jobs[c.job]
            b = ledger.book_charge(rec.status, c, self._price(c.accelerator, c.site))
            if b is not None:
                self._set_status(rec, ledger.after_booking(rec.status, b))
                out.append(self._book(b.charge))
        return out

    def meter_running(self, now: float) -> list[Charge]:
        """Meter every running job up to ``now`` and book it, in one pass (``core.ledger.meter_and_book``):
        what ``record_charges`` of the reconciler's metering of ``running()`` books, in the same order,
        without a proposed charge and a booking per job. The reconciler calls it when a store has it."""
        jobs, order = self.jobs, self._running
        out: list[Charge] = []
        for j in sorted(order, key=order.__getitem__):
            rec = jobs[j]
            s = rec.status
            p = s.placement
            if p is None:
                continue
            got = ledger.meter_and_book(s, now, self._price(p.accelerator, p.site))
            if got is not None:
                self._set_status(rec, got[1])
                out.append(self._book(got[0]))
        return out

    def running(self) -> list[JobStatus]:
        jobs, order = self.jobs, self._running
        # in submit order (the order of ``active``), without a pass over every active job
        return [jobs[j].status for j in sorted(order, key=order.__getitem__)]

    def run_spec(self, job_id: str) -> RunSpec:
        return self.jobs[job_id].run

    def run_specs(self, job_ids: Sequence[str]) -> Mapping[str, RunSpec]:
        jobs = self.jobs
        return {j: jobs[j].run for j in job_ids if j in jobs}

    def prices(self) -> Mapping[str, int]:
        return self.price_list

    def grant_balances(self) -> Mapping[str, int]:
        return {g.id: g.remaining_krw for g in self.grants.values()}

    # -- internals ------------------------------------------------------------------------------------

    def _in_service(self) -> tuple[tuple[Node, ...], tuple[Node, ...], dict[str, str]]:
        """``core.sites.in_service`` of the nodes: the same tuples round after round while no node or site
        changes (lets the core reuse work)."""
        if self._healthy is None:
            down = {n: self.down_cause.get(n) for n in self.down}
            nodes = (n for _, n in sorted(self.nodes.items()))
            self._healthy = in_service(nodes, down, self.site_list.values())
        return self._healthy

    def _throughput(self) -> ThroughputMatrix:
        """The active jobs' speeds, rebuilt only when the active set or a measurement changed."""
        if self._matrix is None or self._matrix[0] != self._version:
            types = tuple(sorted({n.accelerator for n in self.nodes.values()}))
            if types != self._row_types:
                self._rows, self._row_types = {}, types
            jobs, rows = self.jobs, self._rows
            # ThroughputMatrix.from_rows without an estimator, a row per job kept while its speeds and the
            # types are the same (it runs each time a job arrives or leaves): the same values, none estimated
            # every active job's row kept (rows are kept for active jobs only): one look-up each, in C
            if len(rows) == len(self.active):
                got = list(map(rows.__getitem__, self.active))
            else:
                got = []
                for j in self.active:
                    row = rows.get(j)
                    if row is None:
                        r = jobs[j].throughput
                        row = rows[j] = tuple([float(r[t]) if t in r else 0.0 for t in types])
                    got.append(row)
            values = np.array(got, dtype=np.float64).reshape(len(self.active), len(types))
            matrix = ThroughputMatrix(
                tuple(self.active), tuple(types), values, np.zeros(values.shape, dtype=bool)
            )
            self._matrix = (self._version, matrix)
        return self._matrix[1]

    def _apply(self, rec: JobRecord, event: Event) -> tuple[Outcome, list[Charge]]:
        """``core.lifecycle.apply_event`` on the job, persisted; its outcome and the charges booked."""
        before = rec.status
        p = before.placement
        rec._leave_board()  # its record changes: it keeps the board's values until a round says again
        out = apply_event(before, event, 0 if p is None else self._price(p.accelerator, p.site))
        self._set_status(rec, out.status)
        jid = before.job.id
        if out.status.state is JobState.RUNNING:
            if jid not in self._running:
                self._running[jid] = self._seq[jid]
        else:
            self._running.pop(jid, None)
        if out.records:
            rec.events.extend((r.time, r.state, r.reason) for r in out.records)  # a JobState is a str
            rec.reason = out.records[-1].reason
        rec.preemptions += out.preemptions
        if out.started_at is not None and rec.start_time is None:
            rec.start_time = out.started_at
        if out.ended_at is not None:
            rec.end_time = out.ended_at
        if out.ended:
            self.active.pop(before.job.id, None)
            self._statuses = None
            self._rows.pop(before.job.id, None)
            self._version += 1
        return out, [self._book(c) for c in out.charges]

    def _set_status(self, rec: JobRecord, status: JobStatus) -> None:
        """A record's new status, also in the list of active statuses the snapshot copies."""
        rec.status = status
        listed = self._statuses
        if listed is not None:
            i = self._slot.get(status.job.id)
            if i is not None:
                listed[i] = status

    def _book(self, c: Charge) -> Charge:
        """Book ``c`` capped at what its grant has left (``core.ledger.cap``)."""
        g = self.grants.get(c.grant) if c.grant is not None else None
        c = ledger.cap(c, None if g is None else g.remaining_krw)
        if g is not None:
            self.grants[g.id] = replace(g, spent_krw=g.spent_krw + c.amount_krw)
        self.charged_krw[c.tenant] = self.charged_krw.get(c.tenant, 0) + c.amount_krw
        self.site_krw[c.site] = self.site_krw.get(c.site, 0) + c.amount_krw
        self.site_device_seconds[c.site] = self.site_device_seconds.get(c.site, 0.0) + c.device_seconds
        if self.keep_charges:
            self.charges.append(c)
        return c

    def _price(self, accelerator: str, site: str) -> int:
        """KRW per device-hour of ``accelerator`` at ``site`` (the site's own price, else the pool's)."""
        return price_for(self.price_list, self.site_list.get(site), accelerator)
