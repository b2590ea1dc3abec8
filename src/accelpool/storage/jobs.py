"""The jobs aggregate's writes on SQL: lock, ask the core, persist what it decided.

Every write that changes a job's state or money goes the same way:

  1. lock, always in this order: the grant rows of the jobs concerned (by id), then the job rows (by id):
     ``SELECT ... FOR UPDATE`` on PostgreSQL (SQLite's write transaction already holds the database);
  2. decide on the locked rows with ``core.lifecycle.apply_event`` / ``core.ledger.book_charge``;
  3. persist the outcome: the job row, its history lines, the charges (capped by ``core.ledger.cap``) and the
     grants' spending.

One lock order for money means a cancel, a preemption, an exit and the metering of a round never wait on
each other in a cycle (no deadlock), and each decides on the state the others left.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection

from accelpool.core import ledger
from accelpool.core.lifecycle import Command, Event, Outcome, SchedulerEvent, apply_event
from accelpool.core.rounds import JobStatus, Placement
from accelpool.core.sites import price_for
from accelpool.core.types import Charge, Site
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.codec import site_from_row
from accelpool.storage.unit import UnitOfWork

JOB_COLUMNS = (  # what a JobStatus is built from (UnitOfWork._status)
    T.jobs.c.id,
    T.jobs.c.spec,
    T.jobs.c.state,
    T.jobs.c.placement,
    T.jobs.c.steps_done,
    T.jobs.c.seconds_on,
    T.jobs.c.metered_until,
    T.jobs.c.carry_krw,
    T.jobs.c.attempt_started,
    T.jobs.c.restart_measured,
)


@dataclass
class Locked:
    """Rows locked for one write: grants' KRW left (by id), the jobs' statuses (by id), the price list."""

    grants: dict[str, tuple[int, str]]  # id -> (KRW left, program)
    jobs: dict[str, JobStatus]
    prices: dict[str, int]
    sites: dict[str, Site] = field(default_factory=dict)  # each site's own prices apply there

    def price_of(self, status: JobStatus) -> int:
        p = status.placement
        return 0 if p is None else self.price(p.accelerator, p.site)

    def price(self, accelerator: str, site: str) -> int:
        return price_for(self.prices, self.sites.get(site), accelerator)


class JobWrites(UnitOfWork):
    """The jobs aggregate's state and money writes (SqlStore's scheduler port calls them)."""

    # -- locking ----------------------------------------------------------------------------------------

    def _lock_jobs(self, c: Connection, job_ids: Iterable[str], extra_grants: Iterable[str] = ()) -> Locked:
        """Lock the grants of ``job_ids`` (and ``extra_grants``), then the jobs, each in id order."""
        ids = sorted(set(job_ids))
        grant_ids: set[str] = {g for g in extra_grants if g is not None}
        for chunk in _chunks(ids):
            q = select(T.jobs.c.grant_id).where(T.jobs.c.id.in_(chunk), T.jobs.c.grant_id.is_not(None))
            grant_ids.update(r[0] for r in c.execute(q))  # a job's grant never changes: no lock needed
        grants: dict[str, tuple[int, str]] = {}
        if grant_ids:
            q = select(T.grants.c.id, T.grants.c.amount_krw, T.grants.c.spent_krw, T.grants.c.program)
            q = q.where(T.grants.c.id.in_(sorted(grant_ids))).order_by(T.grants.c.id)
            for r in c.execute(q.with_for_update() if self._pg else q):
                grants[r.id] = (int(r.amount_krw) - int(r.spent_krw), r.program)
        jobs = self._lock_statuses(c, ids)
        prices = {r.accelerator: int(r.krw_per_device_hour) for r in c.execute(select(T.prices))}
        sites = {r.id: site_from_row(r) for r in c.execute(select(T.sites))}
        return Locked(grants, jobs, prices, sites)

    def _lock_statuses(self, c: Connection, ids: list[str]) -> dict[str, JobStatus]:
        """Lock the job rows of ``ids`` (sorted), in id order; their statuses by id."""
        jobs: dict[str, JobStatus] = {}
        for chunk in _chunks(ids):
            q = select(*JOB_COLUMNS).where(T.jobs.c.id.in_(chunk)).order_by(T.jobs.c.id)
            for r in c.execute(q.with_for_update() if self._pg else q):
                jobs[r.id] = self._status(r)
        return jobs

    # -- the lifecycle ----------------------------------------------------------------------------------

    def _place(self, c: Connection, starts: Sequence[Placement], now: float) -> dict[str, Outcome]:
        """The core's PLACE on each started job's locked row: the outcomes it applied (a job no longer
        queued, e.g. cancelled since the snapshot, is left out). Placing moves no money, so no grant is
        locked; the caller writes the outcomes in bulk (``start_rows``)."""
        locked = self._lock_statuses(c, sorted(p.job for p in starts))
        out: dict[str, Outcome] = {}
        for p in starts:
            if (before := locked.get(p.job)) is not None:
                o = apply_event(before, SchedulerEvent(p.job, Command.PLACE, now, placement=p))
                if o.applied:
                    out[p.job] = o
        return out

    def _apply_events(self, c: Connection, events: Sequence[Event]) -> list[Charge]:
        """Apply ``events`` in order on locked rows; the charges booked (written in bulk at the end)."""
        if not events:
            return []
        locked = self._lock_jobs(c, (e.job for e in events))
        batch = _Batch()
        booked: list[Charge] = []
        for e in events:
            before = locked.jobs.get(e.job)
            if before is None:
                continue
            out = apply_event(before, e, locked.price_of(before))
            locked.jobs[e.job] = out.status
            booked += self._persist(c, before, out, locked, batch)
        batch.flush(c, self)
        return booked

    def _persist(
        self, c: Connection, before: JobStatus, out: Outcome, locked: Locked, batch: _Batch | None = None
    ) -> list[Charge]:
        """Persist one outcome: into ``batch`` (the caller flushes it), or at once without one."""
        mine = batch if batch is not None else _Batch()
        after = out.status
        job_id = after.job.id
        mine.job(before, after)
        extra = mine.extra.setdefault(job_id, {})
        if out.reason is not None:
            extra["reason"] = out.reason
        if out.preemptions:
            extra["preemptions"] = extra.get("preemptions", 0) + out.preemptions
        if out.attempts:
            extra["attempts"] = extra.get("attempts", 0) + out.attempts
        if out.ended:
            extra["active"] = False
        if out.hold_krw is not None:
            extra["reserved_krw"] = out.hold_krw
        if out.started_at is not None:
            extra.setdefault("start_time", out.started_at)  # COALESCE: the first start stays
        if out.ended_at is not None:
            extra["end_time"] = out.ended_at
        if not extra:
            del mine.extra[job_id]
        mine.events += [
            {"job": job_id, "time": r.time, "state": r.state.value, "reason": r.reason, "cause": r.cause}
            for r in out.records
        ]
        booked = [self._book(ch, locked, mine) for ch in out.charges]
        if batch is None:
            mine.flush(c, self)
        return booked

    def _book(self, charge: Charge, locked: Locked, batch: _Batch) -> Charge:
        """Book ``charge`` capped at its grant's KRW left, spending it from the (locked) grant, in ``batch``."""
        held = locked.grants.get(charge.grant) if charge.grant is not None else None
        booked = ledger.cap(charge, None if held is None else held[0])
        if held is not None and charge.grant is not None:
            locked.grants[charge.grant] = (held[0] - booked.amount_krw, held[1])
            batch.spent[charge.grant] = batch.spent.get(charge.grant, 0) + booked.amount_krw
        batch.charges.append(
            {
                "job": booked.job,
                "tenant": booked.tenant,
                "grant": booked.grant,
                "program": None if held is None else held[1],
                "accelerator": booked.accelerator,
                "device_seconds": booked.device_seconds,
                "amount_krw": booked.amount_krw,
                "start": booked.start,
                "end": booked.end,
                "site": booked.site,
            }
        )
        return booked

    # -- metering -----------------------------------------------------------------------------------------

    def _book_slices(self, c: Connection, charges: Sequence[Charge]) -> list[Charge]:
        """Book proposed metering slices through ``core.ledger.book_charge`` on the locked rows."""
        locked = self._lock_jobs(c, (ch.job for ch in charges), (ch.grant for ch in charges if ch.grant))
        batch = _Batch()
        out: list[Charge] = []
        for ch in charges:
            status = locked.jobs.get(ch.job)
            if status is None:
                raise KeyError(ch.job)
            b = ledger.book_charge(status, ch, locked.price(ch.accelerator, ch.site))
            if b is None:
                continue
            locked.jobs[ch.job] = after = ledger.after_booking(status, b)
            batch.job(status, after)
            out.append(self._book(b.charge, locked, batch))
        batch.flush(c, self)
        return out


@dataclass
class _Batch:
    """One transaction's writes, gathered and sent in bulk: each job's row once (its first status before
    and last status after, plus reason/preemptions/start/end), history lines and charges in one INSERT
    each, and one UPDATE per grant. Decisions are taken on the locked rows in memory, so nothing in the
    transaction reads what the batch has not written yet."""

    first: dict[str, JobStatus] = field(default_factory=dict)
    last: dict[str, JobStatus] = field(default_factory=dict)
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    charges: list[dict[str, Any]] = field(default_factory=list)
    spent: dict[str, int] = field(default_factory=dict)

    def job(self, before: JobStatus, after: JobStatus) -> None:
        self.first.setdefault(after.job.id, before)
        self.last[after.job.id] = after

    def flush(self, c: Connection, uow: UnitOfWork) -> None:
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for job_id, after in self.last.items():
            values = dict(_changed(self.first[job_id], after))
            values.update(self.extra.get(job_id, {}))
            if values:
                row = {"_id": job_id, **{f"v_{k}": v for k, v in values.items()}}
                groups.setdefault(tuple(sorted(values)), []).append(row)
        for cols, rows in groups.items():
            c.execute(_update_jobs(cols), rows)
        if self.events:
            c.execute(insert(T.job_events), self.events)
            for row in self.events:
                uow._waits.pop(row["job"], None)
        if self.charges:
            c.execute(insert(T.charges), self.charges)
        for grant in sorted(self.spent):
            c.execute(
                update(T.grants)
                .where(T.grants.c.id == grant)
                .values(spent_krw=T.grants.c.spent_krw + self.spent[grant])
            )
        for part in (self.first, self.last, self.extra, self.spent):
            part.clear()
        self.events.clear()
        self.charges.clear()


def _update_jobs(cols: tuple[str, ...]) -> Any:
    """UPDATE jobs SET each of ``cols`` WHERE id = :_id, for executemany (increments and COALESCE kept)."""
    values: dict[str, Any] = {}
    for col in cols:
        p = bindparam(f"v_{col}", type_=T.jobs.c[col].type)
        if col in ("preemptions", "attempts"):
            values[col] = T.jobs.c[col] + p
        elif col == "start_time":
            values[col] = func.coalesce(T.jobs.c.start_time, p)
        else:
            values[col] = p
    return update(T.jobs).where(T.jobs.c.id == bindparam("_id")).values(**values)


def _changed(before: JobStatus, after: JobStatus) -> Iterator[tuple[str, Any]]:
    """The jobs columns whose values differ between two statuses of one job (an unchanged value is
    usually the very same object: the identity test skips comparing Fractions and dicts)."""
    if after.state is not before.state:
        yield "state", after.state.value
    if after.placement is not before.placement and after.placement != before.placement:
        yield "placement", codec.placement_to_dict(after.placement)
    if after.steps_done != before.steps_done:
        yield "steps_done", after.steps_done
    if after.seconds_on is not before.seconds_on and after.seconds_on != before.seconds_on:
        yield "seconds_on", dict(after.seconds_on)
    if after.metered_until != before.metered_until:
        yield "metered_until", after.metered_until
    if after.carry is not before.carry and after.carry != before.carry:
        yield "carry_krw", codec.carry_to_str(after.carry)
    if after.attempt_started != before.attempt_started:
        yield "attempt_started", after.attempt_started
    if after.restart_measured != before.restart_measured:
        yield "restart_measured", after.restart_measured


def _chunks(ids: list[str], size: int = 500) -> Iterator[list[str]]:
    for k in range(0, len(ids), size):
        yield ids[k : k + size]


def start_rows(placed: dict[str, Outcome]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The jobs-row values and history lines of the PLACE outcomes ``placed`` (``JobWrites._place``), for a
    bulk UPDATE and INSERT: every value is the core's."""
    rows, events = [], []
    for job_id, o in placed.items():
        st = o.status
        rows.append(
            {
                "jid": job_id,
                "pl": codec.placement_to_dict(st.placement),
                "why": o.reason or "",
                "mark": st.metered_until,
                "carry": codec.carry_to_str(st.carry),
                "st": st.state.value,
                "n": o.attempts,
            }
        )
        events += [
            {"job": job_id, "time": r.time, "state": r.state.value, "reason": r.reason, "cause": r.cause}
            for r in o.records
        ]
    return rows, events
