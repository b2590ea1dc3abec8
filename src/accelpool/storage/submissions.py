"""Queueing jobs: one transaction per batch (group commit), idempotency keys and grant holds checked
under the grants' row locks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from accelpool.core import ledger
from accelpool.core.errors import AlreadyExists, Conflict, active_refusal
from accelpool.core.types import Job, JobState
from accelpool.ports import RunSpec
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.unit import UnitOfWork

# SQLite's job text index (FTS5 ``jobs_text``, migrations 0013 and 0014) is written for this many new jobs
# at once, by the submission transaction that brings their number to it: FTS5 writes a segment per
# transaction, so indexing each batch of a steady stream cost about 0.045 ms of CPU per submission on the
# writer's lock; the jobs above ``jobs_text_mark`` are found by LIKE meanwhile (``storage/dashboard.py``).
TEXT_INDEX_EVERY = 1024


def held_sums(c: Connection, grants: Sequence[str]) -> dict[str, int]:
    """KRW each of ``grants`` holds for its active jobs (the sum of their ``reserved_krw``: a lease, or a
    whole run); a grant holding nothing is absent. Admission (under the grants' row locks) and the API's
    grant views read it here."""
    if not grants:
        return {}
    rows = c.execute(
        select(T.jobs.c.grant_id, func.sum(T.jobs.c.reserved_krw))
        .where(T.jobs.c.grant_id.in_(grants), T.jobs.c.active.is_(True), T.jobs.c.reserved_krw > 0)
        .group_by(T.jobs.c.grant_id)
    ).all()
    return {str(g): int(n) for g, n in rows}


@dataclass(frozen=True)
class Submission:
    """One job to queue (the arguments of ``SqlStore.submit``)."""

    job: Job
    throughput: Mapping[str, float]
    run: RunSpec | None = None
    name: str = ""
    idempotency_key: str | None = None
    reserve_krw: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class SubmissionWrites(UnitOfWork):
    text_index_every = TEXT_INDEX_EVERY  # jobs not yet in SQLite's text index before a submission adds them
    max_active_jobs: int | None = None
    """The most active jobs a tenant may have (``core.errors.active_refusal``; the API sets the operator's
    ``--max-active-jobs``); None: no cap. Counted under the tenants' row locks with the submission."""

    def submit(
        self,
        job: Job,
        throughput: Mapping[str, float],
        run: RunSpec | None = None,
        *,
        name: str = "",
        idempotency_key: str | None = None,
        reserve_krw: int = 0,
    ) -> tuple[str, bool]:
        """Queue ``job``. Returns (job id, created). With an idempotency key already used by the tenant,
        returns the earlier job and False. ``reserve_krw`` is held on the job's grant while it is active;
        InsufficientFunds when the grant cannot cover it (checked under the grant's row lock), MissingReference
        when the grant does not exist, AlreadyExists when the id does."""
        out = self.submit_many([Submission(job, throughput, run, name, idempotency_key, int(reserve_krw))])[0]
        if isinstance(out, Exception):
            raise out
        return out

    def submit_many(self, items: Sequence[Submission]) -> list[tuple[str, bool] | Conflict]:
        """Queue several jobs in ONE write transaction (group commit: one fsync for the lot). Each item gets
        what ``submit`` would have returned, or the Conflict it would have raised; a refused item does not
        affect the others. Holds are checked under the grants' row locks, items in order, so jobs in one
        batch cannot together over-commit a grant either."""
        if not items:
            return []
        try:
            with self.write() as c:
                out = self._submit_many(c, items)
        except IntegrityError:
            # a race on an idempotency key or a duplicate id: settle the items one at a time
            if len(items) == 1:
                return [self._submit_conflict(items[0])]
            return [r for it in items for r in self.submit_many([it])]
        for it, r in zip(items, out, strict=True):
            if r == (it.job.id, True):
                self._jobs[it.job.id] = it.job
        return out

    def batcher(self) -> Any:
        """The store's group-commit writer (``storage.batcher.SubmitBatcher``), started on first use."""
        with self._lock:
            if self._batcher is None:
                from accelpool.storage.batcher import SubmitBatcher

                self._batcher = SubmitBatcher(self)
            return self._batcher

    def _submit_conflict(self, it: Submission) -> tuple[str, bool] | Conflict:
        if it.idempotency_key is not None:
            with self.read() as c:
                found = c.execute(
                    select(T.jobs.c.id).where(
                        T.jobs.c.tenant == it.job.tenant, T.jobs.c.idempotency_key == it.idempotency_key
                    )
                ).first()
            if found is not None:
                return str(found[0]), False
        return AlreadyExists(f"job {it.job.id} already exists")

    def _submit_many(self, c: Connection, items: Sequence[Submission]) -> list[tuple[str, bool] | Conflict]:
        out: list[tuple[str, bool] | Conflict | None] = [None] * len(items)
        seen: dict[tuple[str, str], str] = {}
        keys = sorted({it.idempotency_key for it in items if it.idempotency_key is not None})
        if keys:
            for r in c.execute(
                select(T.jobs.c.id, T.jobs.c.tenant, T.jobs.c.idempotency_key).where(
                    T.jobs.c.idempotency_key.in_(keys)
                )
            ):
                seen[(r.tenant, r.idempotency_key)] = str(r.id)
        left: dict[str, int] = {}
        held = sorted(
            {it.job.grant for it in items if it.job.grant and ledger.holds(it.job.grant, it.reserve_krw)}
        )
        if held:
            grants = {
                r.id: r
                for r in c.execute(
                    select(T.grants).where(T.grants.c.id.in_(held)).order_by(T.grants.c.id).with_for_update()
                )
            }
            holds = held_sums(c, held)
            for g in held:
                if g in grants:
                    r = grants[g]
                    left[g] = ledger.unheld(int(r.amount_krw), int(r.spent_krw), holds.get(g, 0))
        active = self._active_counts(c, sorted({it.job.tenant for it in items}))
        rows, events = [], []
        for i, it in enumerate(items):
            job = it.job
            if it.idempotency_key is not None:
                k = (job.tenant, it.idempotency_key)
                if k in seen:
                    out[i] = (seen[k], False)
                    continue
            if active is not None:
                over = active_refusal(job.tenant, active.get(job.tenant, 0), self.max_active_jobs)
                if over is not None:
                    out[i] = over
                    continue
            if job.grant is not None and ledger.holds(job.grant, it.reserve_krw):
                refused = ledger.hold_refusal(job.grant, left.get(job.grant), it.reserve_krw)
                if refused is not None:
                    out[i] = refused
                    continue
                left[job.grant] -= it.reserve_krw
            if it.idempotency_key is not None:
                seen[(job.tenant, it.idempotency_key)] = job.id
            if active is not None:
                active[job.tenant] = active.get(job.tenant, 0) + 1
            rows.append(self.job_row(it))
            events.append({"job": job.id, "time": job.submit_time, "state": "queued", "reason": "submitted"})
            out[i] = (job.id, True)
        if rows:
            c.execute(insert(T.jobs), rows)
            c.execute(insert(T.job_events), events)
            self._index_text(c, self.text_index_every)
        return [r for r in out if r is not None]

    def _active_counts(self, c: Connection, tenants: list[str]) -> dict[str, int] | None:
        """Each of ``tenants``' active jobs, read under their tenant rows' locks (PostgreSQL: two API
        processes' batches of one tenant count one after the other; SQLite's writer is alone); None when
        there is no cap."""
        if self.max_active_jobs is None or not tenants:
            return None
        if self._pg:
            # in one order (by id), as the grants above: two batches of the same tenants never wait on
            # each other's second row
            c.execute(
                select(T.tenants.c.id)
                .where(T.tenants.c.id.in_(tenants))
                .order_by(T.tenants.c.id)
                .with_for_update()
            ).all()
        rows = c.execute(
            select(T.jobs.c.tenant, func.count())
            .where(T.jobs.c.tenant.in_(tenants), T.jobs.c.active.is_(True))
            .group_by(T.jobs.c.tenant)
        ).all()
        return {str(t): int(n) for t, n in rows}

    def index_text(self) -> int:
        """SQLite: add every job not yet in the text index to it now (one transaction); how many were
        added (0 on PostgreSQL, whose trigram indexes the server maintains). The group-commit writer
        calls it after a quiet second, so the index does not stay behind when submissions stop."""
        if self._pg:
            return 0
        with self.write() as c:
            return self._index_text(c, 1)

    def _index_text(self, c: Connection, least: int) -> int:
        """SQLite, inside a write transaction: index the jobs above ``jobs_text_mark`` (in one statement:
        one FTS5 segment) and move the mark to the highest seq, when there are ``least`` or more of them;
        how many seqs the mark moved (0 when it did not)."""
        if self._pg:
            return 0
        mark = c.exec_driver_sql("SELECT upto FROM jobs_text_mark WHERE id = 0").scalar()
        top = c.exec_driver_sql("SELECT MAX(seq) FROM jobs").scalar()
        if mark is None or top is None or int(top) - int(mark) < max(least, 1):
            return 0
        c.exec_driver_sql(
            "INSERT INTO jobs_text(rowid, name, id) SELECT seq, name, id FROM jobs WHERE seq > ? AND seq <= ?",
            (int(mark), int(top)),
        )
        c.exec_driver_sql("UPDATE jobs_text_mark SET upto = ? WHERE id = 0", (int(top),))
        return int(top) - int(mark)

    @staticmethod
    def job_row(it: Submission) -> dict[str, Any]:
        """The jobs row a submission inserts (also what the API answers from, without reading it back)."""
        job = it.job
        return {
            "id": job.id,
            "tenant": job.tenant,
            "name": it.name or job.id,
            "spec": codec.job_to_dict(job),
            "run": codec.run_to_dict(it.run or RunSpec()),
            "throughput": {k: float(v) for k, v in it.throughput.items()},
            "state": JobState.QUEUED.value,
            "active": True,
            "placement": None,
            "steps_done": 0.0,
            "seconds_on": {},
            "metered_until": None,
            "reason": "submitted",
            "submit_time": job.submit_time,
            "preemptions": 0,
            "attempts": 0,
            "reserved_krw": int(it.reserve_krw),
            "idempotency_key": it.idempotency_key,
            "priority": int(job.priority),
            "grant_id": job.grant,
            "accepts": codec.accepts_text(job.allowed),
        }
