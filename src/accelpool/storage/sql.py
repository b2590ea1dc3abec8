"""SqlStore: the SchedulerStore port (and the set-up calls MemoryStore has) on SQLAlchemy Core.

Same behaviour as ``MemoryStore``, checked by tests/contracts/test_store_contract.py on SQLite and
PostgreSQL. Every public method is one transaction. Money moves only inside a transaction that holds the
grant row (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so a grant is never
overspent, whatever runs concurrently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, insert, or_, select, text, update

from accelpool.core.lifecycle import WAITING, Command, SchedulerEvent, apply_event
from accelpool.core.rounds import Decision, JobStatus, Snapshot
from accelpool.core.sites import in_service
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import (
    Charge,
    JobState,
    Program,
    Tenant,
)
from accelpool.ports import ExecutorEvent, RunSpec
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.engine import json_deserializer, json_serializer
from accelpool.storage.identity import IdentityWrites
from accelpool.storage.jobs import JOB_COLUMNS, JobWrites, start_rows
from accelpool.storage.money import MoneyWrites
from accelpool.storage.nodes import NodeWrites
from accelpool.storage.queries import Queries
from accelpool.storage.sites import SiteWrites
from accelpool.storage.submissions import Submission as Submission  # re-exported: the API queues these
from accelpool.storage.submissions import SubmissionWrites

# PostgreSQL: bulk updates as one UPDATE ... FROM json_to_recordset(one JSON text): one round trip, and the
# rows go over as one orjson string (psycopg dumps Python lists into text[] arrays element by element in
# Python: 0.1-0.25 s of client CPU for a first round's 1,189 starts and 8,811 reasons).
_PG_STARTS = text(  # the values of ``jobs.start_rows``, one JSON object per row
    "UPDATE jobs SET placement = u.pl, metered_until = u.mark, carry_krw = u.carry, "
    "state = u.st, reason = u.why, attempts = jobs.attempts + u.n "
    "FROM json_to_recordset(CAST(:rows AS json)) "
    "AS u(jid text, pl json, why text, mark double precision, carry text, st text, n integer) WHERE jobs.id = u.jid"
)
_STATES = {s.value: s for s in JobState}  # a dict look-up: calling the enum costs ~3 us a row
_WAITING_SET = frozenset(s.value for s in WAITING)
_WAITING = sorted(_WAITING_SET)  # the states a round's wait reasons apply to (core.lifecycle.waits)
_PG_WAITS = text(  # {reason: [job ids]}: a round has a handful of distinct reasons; the waiting states as constants
    "UPDATE jobs SET reason = u.key "
    "FROM (SELECT g.key, json_array_elements_text(g.value) AS id FROM json_each(CAST(:groups AS json)) AS g) AS u "
    "WHERE jobs.id = u.id AND jobs.state IN (" + ", ".join(f"'{v}'" for v in _WAITING) + ")"
)

# Wait reasons are written after the round's transaction, on SQLite in transactions of at most this many rows,
# so a submission waiting for the write lock waits for one short chunk, never for the whole queue. (PostgreSQL
# locks rows, not the database: there they are one statement, as one commit there costs a WAL flush.)
WAIT_CHUNK = 500

log = logging.getLogger(__name__)


class SqlStore(JobWrites, SubmissionWrites, MoneyWrites, NodeWrites, SiteWrites, IdentityWrites, Queries):
    """``url``: a SQLAlchemy URL (``sqlite+pysqlite:///path`` or ``postgresql+psycopg://...``).

    ``upgrade=True`` brings the schema to the newest revision; ``False`` refuses (SchemaError) unless it
    already is there."""

    # -- cached reference data ------------------------------------------------------------------------

    # -- set-up (operators, tenants) ------------------------------------------------------------------

    # -- create / update (the API): create refuses an existing id, updates keep what is already in use ----

    def cancel(self, job_id: str, now: float, reason: str = "cancelled by user") -> bool:
        """Cancel a job that is not finished; True when it was running (its process must be stopped). A
        running job is billed up to the cancel (``core.lifecycle``), decided on its locked row."""
        with self.write() as c:
            locked = self._lock_jobs(c, [job_id])
            before = locked.jobs.get(job_id)
            if before is None:
                raise KeyError(job_id)
            out = apply_event(
                before, SchedulerEvent(job_id, Command.CANCEL, now, reason), locked.price_of(before)
            )
            charged = self._persist(c, before, out, locked)
        if charged:
            self.invalidate()
        return out.stop_process

    def measure(self, job_id: str, accelerator: str, steps_per_second: float) -> None:
        """A measured throughput replaces the estimate for that job and type."""
        with self.write() as c:
            r = c.execute(select(T.jobs.c.throughput).where(T.jobs.c.id == job_id)).first()
            if r is None:
                raise KeyError(job_id)
            tp = dict(r.throughput)
            tp[accelerator] = float(steps_per_second)
            c.execute(update(T.jobs).where(T.jobs.c.id == job_id).values(throughput=tp))

    # -- SchedulerStore port --------------------------------------------------------------------------

    def snapshot(self, now: float, round_seconds: float) -> Snapshot:
        with self.read() as c:
            node_rows = c.execute(select(T.nodes).order_by(T.nodes.c.name)).all()
            job_rows = c.execute(
                select(
                    # keep the order: read by position (``_statuses`` keys on 2 to 9, state .. restart_measured;
                    # 0 id, 1 spec, 10 throughput, 11 reason)
                    T.jobs.c.id,
                    cast(T.jobs.c.spec, Text).label("spec"),  # parsed only for jobs not yet cached
                    T.jobs.c.state,
                    # the JSON columns as stored text: an unchanged row is recognised without decoding it
                    cast(T.jobs.c.placement, Text).label("placement"),
                    T.jobs.c.steps_done,
                    cast(T.jobs.c.seconds_on, Text).label("seconds_on"),
                    T.jobs.c.metered_until,
                    T.jobs.c.carry_krw,
                    T.jobs.c.attempt_started,
                    T.jobs.c.restart_measured,
                    cast(T.jobs.c.throughput, Text).label("throughput"),  # parsed when it changed
                    T.jobs.c.reason,
                )
                .where(T.jobs.c.active.is_(True))
                .order_by(T.jobs.c.seq)
            ).all()
            tenants = tuple(
                codec.tenant_from_row(r) for r in c.execute(select(T.tenants).order_by(T.tenants.c.id))
            )
            programs = tuple(
                codec.program_from_row(r) for r in c.execute(select(T.programs).order_by(T.programs.c.id))
            )
            grants = tuple(
                codec.grant_from_row(r) for r in c.execute(select(T.grants).order_by(T.grants.c.id))
            )
            prices = {r.accelerator: int(r.krw_per_device_hour) for r in c.execute(select(T.prices))}
            sites = tuple(codec.site_from_row(r) for r in c.execute(select(T.sites).order_by(T.sites.c.id)))
        self._fresh_statistics(len(job_rows))
        # the same objects as last round while nothing changed, so the core's problem cache can reuse its
        # arrays (core.rounds: it keys on the identity of the throughput, tenants and programs)
        tenants, programs, throughput = self._same_as_last(job_rows, node_rows, tenants, programs)
        down = {r.name: r.down_cause for r in node_rows if r.down}
        nodes, nodes_down, down_causes = in_service((self._node(r) for r in node_rows), down, sites)
        statuses = self._statuses(job_rows)
        waiting = _WAITING_SET
        self._waits = {r[0]: r[11] for r in job_rows if r[2] in waiting}  # id: reason, as stored now
        return Snapshot(
            now=now,
            nodes=nodes,
            jobs=statuses,
            throughput=throughput,
            accelerators=self.accelerators,
            tenants=tenants,
            programs=programs,
            grants=grants,
            prices_krw_per_hour=prices,
            round_seconds=round_seconds,
            sites=sites,
            nodes_down=nodes_down,
            down_causes=down_causes,
        )

    def _fresh_statistics(self, active: int) -> None:
        """PostgreSQL: ANALYZE the jobs table when the active jobs are over 1,000 and more than twice what
        the last ANALYZE of this store saw. Right after a burst of submissions the planner had no
        statistics for the new rows (autovacuum analyzes a minute or more later) and its plans made the
        next rounds' locking reads of 500 ids take 1-2 s each: bench_round's PostgreSQL steps took 11 and
        22 s wall without statistics, under 2 s with them (docs/control-plane.md)."""
        if not self._pg or active <= max(1000, 2 * self._analyzed_rows):
            return
        with self.write() as c:
            # the columns the rounds' and the API's row look-ups filter on (autovacuum analyzes the rest later);
            # the whole table took about twice as long
            c.exec_driver_sql(
                "ANALYZE jobs (id, seq, state, active, grant_id, tenant, priority, submit_time)"
            )
        self._analyzed_rows = active

    def _statuses(self, job_rows: Any) -> tuple[JobStatus, ...]:
        """Each row's JobStatus: last snapshot's very object when the row's stored values are the same as
        then (decoding 10,000 rows each round was the largest part of a snapshot), else decoded. The key is
        every stored column a JobStatus is built from, so a write by any process (the API's cancel, another
        scheduler's record) shows as a changed key: nothing here depends on this process's own writes."""
        last = self._last_status
        keep: dict[str, tuple[tuple[Any, ...], JobStatus]] = {}
        out = []
        job, states, parse, placement_from, carry_from = (
            self._job,
            _STATES,
            json_deserializer,
            codec.placement_from_dict,
            codec.carry_from_str,
        )
        for r in job_rows:  # by position: a Row's attribute look-up cost ~3 us a row for these eleven
            job_id = r[0]
            key = r[2:10]  # state .. restart_measured, as selected in ``snapshot`` (a plain tuple)
            hit = last.get(job_id)
            if hit is not None and hit[0] == key:
                status = hit[1]
            else:
                state, placement, steps_done, seconds_on, metered_until, carry, attempt, restart = key
                placement = parse(placement) if placement else None
                seconds_on = parse(seconds_on) if seconds_on else None
                status = JobStatus(
                    job=job(job_id, r[1]),
                    state=states.get(state) or JobState(state),
                    placement=placement_from(job_id, placement),
                    steps_done=float(steps_done),
                    seconds_on=seconds_on if isinstance(seconds_on, dict) else {},  # just parsed: ours
                    metered_until=metered_until,
                    carry=carry_from(carry),
                    attempt_started=attempt,
                    restart_measured=restart,
                )
            keep[job_id] = (key, status)
            out.append(status)
        self._last_status = keep
        return tuple(out)

    def _same_as_last(
        self, job_rows: Any, node_rows: Any, tenants: tuple[Tenant, ...], programs: tuple[Program, ...]
    ) -> tuple[tuple[Tenant, ...], tuple[Program, ...], ThroughputMatrix]:
        """The tenants, programs and throughput matrix of this snapshot: last round's very objects when
        they are equal (throughput: the same jobs, node types and stored JSON text), else new ones."""
        last = self._last_ref
        types = tuple(sorted({r.accelerator for r in node_rows}))
        key = (types, tuple((r[0], r[10]) for r in job_rows))  # (id, throughput) by position
        if last is not None and last[2] == key:
            throughput = last[3]
        else:
            rows = {r[0]: json_deserializer(r[10]) if r[10] else {} for r in job_rows}
            throughput = ThroughputMatrix.from_rows(rows, types)
        if last is not None and last[0] == tenants:
            tenants = last[0]
        if last is not None and last[1] == programs:
            programs = last[1]
        self._last_ref = (tenants, programs, key, throughput)
        return tenants, programs, throughput

    def skipped_starts(self) -> frozenset[str]:
        """The starts the last ``record_decision`` left out: jobs no longer queued (cancelled since)."""
        return self._skipped

    def record_decision(self, decision: Decision) -> list[Charge]:
        """Preemptions and starts in one transaction; then the wait reasons that changed, in short
        transactions of ``WAIT_CHUNK`` rows. Queue positions are not stored per job (a job ahead starting
        moves every position behind it): the round's queue is one queue_view row (``_record_queue``)."""
        now = decision.now
        self._skipped = frozenset()
        with self.write() as c:
            booked = self._apply_events(
                c, [SchedulerEvent(j, Command.PREEMPT, now, reason) for j, reason in decision.preempt]
            )
            if decision.start:  # one batched UPDATE and one batched INSERT for every start
                # the core's PLACE on the locked rows: a job cancelled through the API since the snapshot
                # is no longer queued and stays cancelled (the scheduler stops its work when it polls)
                placed = self._place(c, decision.start, now)
                self._skipped = frozenset(p.job for p in decision.start) - placed.keys()
                starts, events = start_rows(placed)
                if starts and self._pg:  # one statement, one round trip, whatever the number of starts
                    c.execute(_PG_STARTS, {"rows": json_serializer(starts)})
                elif starts:
                    c.execute(
                        update(T.jobs)
                        .where(T.jobs.c.id == bindparam("jid"))
                        .values(
                            placement=bindparam("pl"),
                            metered_until=bindparam("mark"),  # None: billed from the executor's STARTED
                            carry_krw=bindparam("carry"),
                            state=bindparam("st"),
                            reason=bindparam("why"),
                            attempts=T.jobs.c.attempts + bindparam("n"),
                        ),
                        starts,
                    )
                if events:
                    c.execute(insert(T.job_events), events)
                for s in starts:
                    self._waits.pop(s["jid"], None)
        try:  # the decision is committed: what follows is for readers, and must not keep it from being acted on
            self._record_waits(decision)
            self._record_queue(decision)
        except Exception:  # a lock held past its wait: the next round writes them (a review: the round
            # stopped here and never acted: preempted jobs ran on, re-placed ones failed "already running")
            log.exception("writing the round's wait reasons or queue failed; the next round writes them")
        if booked:
            self.invalidate()  # grants' spent_krw changed
        return booked

    def _record_waits(self, decision: Decision) -> None:
        """The wait reasons that changed, only while still waiting, in short transactions."""
        waits = self._waits
        changed: list[tuple[str, str]] = []
        details = decision.details
        for job_id, why in decision.waiting.items():
            reason = details.get(job_id) or str.__str__(why)  # in words (core.reasons), or the code
            if waits.get(job_id) != reason:
                changed.append((job_id, reason))
        step = (len(changed) or 1) if self._pg else WAIT_CHUNK  # PostgreSQL: row locks only, one statement
        for k in range(0, len(changed), step):
            chunk = changed[k : k + step]
            with self.write() as c:
                if self._pg:
                    groups: dict[str, list[str]] = {}
                    for j, r in chunk:
                        groups.setdefault(r, []).append(j)
                    c.execute(_PG_WAITS, {"groups": json_serializer(groups)})
                else:
                    c.execute(
                        update(T.jobs)
                        .where(T.jobs.c.id == bindparam("jid"), or_(*(T.jobs.c.state == v for v in _WAITING)))
                        .values(reason=bindparam("r")),
                        [{"jid": j, "r": r} for j, r in chunk],
                    )
            for j, r in chunk:
                waits[j] = r

    def _record_queue(self, decision: Decision) -> None:
        """The round's queue (``Decision.queue``: fair order, positions, start ranges) as the one
        queue_view row, when it changed. A decision made by hand with positions but no queue (tests)
        leaves the row alone; reads then derive positions from the queue order."""
        view = decision.queue
        if not len(view) and decision.positions:
            return
        rows = view.rows()
        if rows == self._queue_written:
            return
        data = json_serializer(
            {
                "of": len(rows),
                "jobs": {
                    j: [p, tp, tn, None if lo is None else round(lo, 1), None if hi is None else round(hi, 1)]
                    for j, p, tp, tn, lo, hi in rows
                },
            }
        )
        with self.write() as c:
            done = c.execute(
                update(T.queue_view)
                .where(T.queue_view.c.id == 1)
                .values(at=decision.now, version=T.queue_view.c.version + 1, data=data)
            )
            if not done.rowcount:
                c.execute(insert(T.queue_view).values(id=1, at=decision.now, version=1, data=data))
        self._queue_written = rows

    def record_events(self, events: Sequence[ExecutorEvent]) -> list[Charge]:
        if not events:
            return []
        with self.write() as c:
            booked = self._apply_events(c, events)
        if booked:
            self.invalidate()  # grants' spent_krw changed
        return booked

    def record_charges(self, charges: Sequence[Charge]) -> list[Charge]:
        if not charges:
            return []
        with self.write() as c:
            booked = self._book_slices(c, charges)
        self.invalidate()  # grants' spent_krw changed
        return booked

    def running(self) -> list[JobStatus]:
        with self.read() as c:
            rows = c.execute(
                select(*JOB_COLUMNS)
                .where(T.jobs.c.active.is_(True), T.jobs.c.state == JobState.RUNNING.value)
                .order_by(T.jobs.c.seq)
            ).all()
        return [self._status(r) for r in rows]

    # -- the scheduler process's cheap polls (split control plane: API and scheduler share the database) --

    def job_states(self, job_ids: Iterable[str]) -> dict[str, str]:
        """{job id: state} for the ids given that exist (e.g. the executor's active jobs: a job the API
        cancelled reads ``cancelled`` here while its process still runs)."""
        ids = sorted(set(job_ids))
        if not ids:
            return {}
        out: dict[str, str] = {}
        with self.read() as c:
            for k in range(0, len(ids), 500):
                q = select(T.jobs.c.id, T.jobs.c.state).where(T.jobs.c.id.in_(ids[k : k + 500]))
                out.update({r.id: r.state for r in c.execute(q)})
        return out

    def last_job_seq(self) -> int:
        """The newest job's sequence number (0 when none): it grows with every submission, so the
        scheduler notices new work with one index look-up."""
        with self.read() as c:
            return int(c.execute(select(func.max(T.jobs.c.seq))).scalar() or 0)

    def run_spec(self, job_id: str) -> RunSpec:
        with self.read() as c:
            r = c.execute(select(T.jobs.c.run).where(T.jobs.c.id == job_id)).first()
        if r is None:
            raise KeyError(job_id)
        return codec.run_from_dict(r.run)

    def run_specs(self, job_ids: Sequence[str]) -> Mapping[str, RunSpec]:
        """One query per 500 ids instead of one per start (1,189 in bench/bench_round.py's first step; that
        step's CPU time did not change measurably with it: 1.06-1.08 s before, 1.00-1.06 s after, load 15-20)."""
        ids = list(dict.fromkeys(job_ids))
        out: dict[str, RunSpec] = {}
        with self.read() as c:
            for k in range(0, len(ids), 500):
                q = select(T.jobs.c.id, T.jobs.c.run).where(T.jobs.c.id.in_(ids[k : k + 500]))
                out.update({r.id: codec.run_from_dict(r.run) for r in c.execute(q)})
        return out

    def attempts(self, job_ids: Sequence[str]) -> Mapping[str, int]:
        """How many times each job was placed (its attempt number once placed): the reconciler's Launch.attempt,
        right also after a scheduler restart (its own count starts again at 0)."""
        ids = list(dict.fromkeys(job_ids))
        out: dict[str, int] = {}
        with self.read() as c:
            for k in range(0, len(ids), 500):
                q = select(T.jobs.c.id, T.jobs.c.attempts).where(T.jobs.c.id.in_(ids[k : k + 500]))
                out.update({r.id: int(r.attempts or 0) for r in c.execute(q)})
        return out

    def prices(self) -> Mapping[str, int]:
        with self.read() as c:
            return {r.accelerator: int(r.krw_per_device_hour) for r in c.execute(select(T.prices))}

    def grant_balances(self) -> Mapping[str, int]:
        with self.read() as c:
            return {
                r.id: int(r.amount_krw) - int(r.spent_krw)
                for r in c.execute(select(T.grants.c.id, T.grants.c.amount_krw, T.grants.c.spent_krw))
            }

    # -- internals ------------------------------------------------------------------------------------
