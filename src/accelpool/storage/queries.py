"""Read and admin repositories for the API (mixed into SqlStore): jobs with keyset pagination, events,
usage reports, tokens, tenants, programs, grants, nodes. Rows are turned into views before they leave."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from accelpool.core import reasons
from accelpool.core.reasons import QueueSpot
from accelpool.core.types import Grant, JobState, Program, Tenant
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.engine import json_deserializer
from accelpool.storage.submissions import held_sums
from accelpool.storage.views import JobEvent, JobView, NodeView, TokenView, UsageRow

PERIODS = ("hour", "day", "week", "month", "year")


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _period(t: float, period: str) -> str:
    d = datetime.fromtimestamp(t, UTC)
    if period == "hour":
        return d.strftime("%Y-%m-%dT%H:00")
    if period == "day":
        return d.strftime("%Y-%m-%d")
    if period == "week":
        iso = d.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if period == "month":
        return d.strftime("%Y-%m")
    return d.strftime("%Y")


class Queries:
    """Needs ``read()``/``write()`` context managers yielding connections (SqlStore provides them)."""

    def read(self) -> AbstractContextManager[Connection]:  # pragma: no cover - provided by SqlStore
        raise NotImplementedError

    def write(self) -> AbstractContextManager[Connection]:  # pragma: no cover
        raise NotImplementedError

    def invalidate(self) -> None: ...  # pragma: no cover - forget cached reference data

    _pg = False  # PostgreSQL (SqlStore sets it): ids compare in the "C" collation, as Python sorts them

    # -- queue positions (derived, never stored) ------------------------------------------------------

    def _id_col(self) -> Any:
        return T.jobs.c.id.collate("C") if self._pg else T.jobs.c.id

    def queue_position(self, c: Connection, priority: int, submit_time: float, job_id: str) -> int:
        """1 + the number of queued jobs ahead in the scheduler's order (priority high first, then submit
        time, then id): the position the round ranks it at. Index range scans on ``ix_jobs_queue``."""
        j = T.jobs.c
        ahead = or_(
            j.priority > priority,
            and_(j.priority == priority, j.submit_time < submit_time),
            and_(j.priority == priority, j.submit_time == submit_time, self._id_col() < job_id),
        )
        q = select(func.count()).select_from(T.jobs)
        q = q.where(j.state == JobState.QUEUED.value, j.reason.notlike(reasons.BLOCKED + "%"), ahead)
        return 1 + int(c.execute(q).scalar_one())

    _queue_read: tuple[int, dict[str, Any]] | None = None

    def _queue_view(self, c: Connection) -> dict[str, Any] | None:
        """The latest round's queue (the queue_view row: fair order, positions in the pool and the tenant,
        start ranges), parsed once per version; None before the first round wrote one."""
        version = c.execute(select(T.queue_view.c.version).where(T.queue_view.c.id == 1)).scalar()
        if version is None:
            return None
        got = self._queue_read
        if got is None or got[0] != version:
            row = c.execute(
                select(T.queue_view.c.version, T.queue_view.c.data).where(T.queue_view.c.id == 1)
            ).first()
            if row is None:
                return None
            got = self._queue_read = (int(row.version), json_deserializer(row.data))
        return got[1]

    def queue_spots(self, c: Connection, rows: Sequence[Any]) -> dict[str, QueueSpot]:
        """The place in the fair order (pool and tenant) and the estimated start range of each queued job
        among ``rows`` that the latest round ranked (blocked and new jobs have none)."""
        queued = [r for r in rows if _ranked(r)]
        if not queued:
            return {}
        view = self._queue_view(c)
        if view is None:
            return {}
        jobs, of = view.get("jobs", {}), int(view.get("of", 0))
        out = {}
        for r in queued:
            e = jobs.get(r.id)
            if e is not None:
                out[r.id] = QueueSpot(int(e[0]), of, int(e[1]), int(e[2]), e[3], e[4])
        return out

    def queue_positions(self, c: Connection, rows: Sequence[Any]) -> dict[str, int]:
        """Positions of the queued jobs among ``rows`` that a round has considered: from the latest round's
        fair order (``queue_spots``); for jobs it does not list (a decision made without a queue view),
        from the queue order (priority, submit time, id; one query)."""
        queued = [r for r in rows if _ranked(r)]
        if not queued:
            return {}
        spots = self.queue_spots(c, queued)
        if len(spots) == len(queued):
            return {j: s.position for j, s in spots.items()}
        queued = [r for r in queued if r.id not in spots]
        found = {j: s.position for j, s in spots.items()}
        return found | self._derived_positions(c, queued)

    def _derived_positions(self, c: Connection, queued: Sequence[Any]) -> dict[str, int]:
        if not queued:
            return {}
        if len(queued) <= 4:
            return {r.id: self.queue_position(c, int(r.priority), float(r.submit_time), r.id) for r in queued}
        j = T.jobs.c
        ranked = (
            select(
                j.id,
                func.row_number()
                .over(order_by=(j.priority.desc(), j.submit_time, self._id_col()))
                .label("pos"),
            )
            .where(j.state == JobState.QUEUED.value, j.reason.notlike(reasons.BLOCKED + "%"))
            .subquery()
        )
        ids = [r.id for r in queued]
        q = select(ranked.c.id, ranked.c.pos).where(ranked.c.id.in_(ids))
        return {r.id: int(r.pos) for r in c.execute(q)}

    # -- jobs -----------------------------------------------------------------------------------------

    def get_job(self, job_id: str, tenants: Iterable[str] | None = None) -> JobView | None:
        """The job, or None if it does not exist or its tenant is not in ``tenants`` (when given)."""
        with self.read() as c:
            q = select(T.jobs).where(T.jobs.c.id == job_id)
            if tenants is not None:
                q = q.where(T.jobs.c.tenant.in_(list(tenants)))
            r = c.execute(q).first()
            if r is None:
                return None
            charged = c.execute(
                select(func.coalesce(func.sum(T.charges.c.amount_krw), 0)).where(T.charges.c.job == job_id)
            ).scalar_one()
            pos = spot = None
            if _ranked(r):
                spot = self.queue_spots(c, [r]).get(r.id)
                pos = spot.position if spot is not None else self._derived_positions(c, [r]).get(r.id)
        return _job_view(r, int(charged), pos, spot)

    def job_events(self, job_id: str) -> list[JobEvent]:
        with self.read() as c:
            rows = c.execute(
                select(T.job_events.c.time, T.job_events.c.state, T.job_events.c.reason, T.job_events.c.cause)
                .where(T.job_events.c.job == job_id)
                .order_by(T.job_events.c.seq)
            ).all()
        return [JobEvent(float(r.time), r.state, r.reason, r.cause) for r in rows]

    def list_jobs(
        self,
        *,
        tenants: Iterable[str] | None = None,
        states: Iterable[str] | None = None,
        before: int | None = None,
        limit: int = 50,
        grants: Iterable[str] | None = None,
    ) -> tuple[list[JobView], int | None]:
        """Newest first, keyset-paginated on ``seq``: pass the returned cursor as ``before`` for the next
        page (None when there is no next page). Cost per page is independent of how many jobs exist.
        ``grants``: only jobs charged to these grants (a program manager's view)."""
        q = select(T.jobs).order_by(T.jobs.c.seq.desc()).limit(limit + 1)
        if tenants is not None:
            q = q.where(T.jobs.c.tenant.in_(list(tenants)))
        if grants is not None:
            q = q.where(T.jobs.c.grant_id.in_(list(grants)))
        if states:
            q = q.where(T.jobs.c.state.in_(list(states)))
        if before is not None:
            q = q.where(T.jobs.c.seq < before)
        with self.read() as c:
            rows = c.execute(q).all()
            spots = self.queue_spots(c, rows[:limit])
            positions = self.queue_positions(c, rows[:limit])
        views = [_job_view(r, None, positions.get(r.id), spots.get(r.id)) for r in rows[:limit]]
        return views, (views[-1].seq if len(rows) > limit else None)

    def grants_used(self, tenant: str, grants: Iterable[str]) -> frozenset[str]:
        """Which of ``grants`` the tenant's jobs (in any state) were charged to: one indexed probe per grant
        (``ix_jobs_grant_seq`` leads with grant and tenant), whatever the number of jobs."""
        used = set()
        with self.read() as c:
            for g in sorted(set(grants)):
                q = select(T.jobs.c.id).where(T.jobs.c.grant_id == g, T.jobs.c.tenant == tenant).limit(1)
                if c.execute(q).first() is not None:
                    used.add(g)
        return frozenset(used)

    def job_by_key(self, tenant: str, key: str) -> JobView | None:
        """The tenant's job made under ``Idempotency-Key`` ``key``, if any."""
        with self.read() as c:
            found = c.execute(
                select(T.jobs.c.id).where(T.jobs.c.tenant == tenant, T.jobs.c.idempotency_key == key)
            ).first()
        return None if found is None else self.get_job(str(found.id))

    def active_tenant_jobs(self, tenant: str, grant: str | None = None) -> int:
        with self.read() as c:
            q = (
                select(func.count())
                .select_from(T.jobs)
                .where(T.jobs.c.active.is_(True), T.jobs.c.tenant == tenant)
            )
            return int(c.execute(q).scalar_one())

    # -- usage (sacct / sreport) ----------------------------------------------------------------------

    def usage(
        self,
        *,
        group_by: Iterable[str] = ("tenant", "program", "accelerator", "site"),
        period: str | None = None,
        since: float | None = None,
        until: float | None = None,
        tenants: Iterable[str] | None = None,
        programs: Iterable[str] | None = None,
    ) -> list[UsageRow]:
        """Device-hours and KRW from charges, grouped; a charge counts in the period its interval ends."""
        keys = set(group_by)
        q = select(
            T.charges.c.job,
            T.charges.c.tenant,
            T.charges.c.program,
            T.charges.c.accelerator,
            T.charges.c.device_seconds,
            T.charges.c.amount_krw,
            T.charges.c.end,
            T.charges.c.site,
        )
        if since is not None:
            q = q.where(T.charges.c.end > since)
        if until is not None:
            q = q.where(T.charges.c.end <= until)
        if tenants is not None:
            q = q.where(T.charges.c.tenant.in_(list(tenants)))
        if programs is not None:
            q = q.where(T.charges.c.program.in_(list(programs)))
        groups: dict[tuple[Any, ...], list[Any]] = {}
        with self.read() as c:
            for r in c.execute(q):
                key = (
                    r.tenant if "tenant" in keys else None,
                    r.program if "program" in keys else None,
                    r.accelerator if "accelerator" in keys else None,
                    _period(float(r.end), period) if period else None,
                    r.site if "site" in keys else None,
                )
                g = groups.setdefault(key, [set(), 0.0, 0])
                g[0].add(r.job)
                g[1] += float(r.device_seconds)
                g[2] += int(r.amount_krw)
        return [
            UsageRow(k[0], k[1], k[2], k[3], len(v[0]), round(v[1] / 3600.0, 6), v[2], k[4])
            for k, v in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0]))
        ]

    # -- tenants, programs, grants, nodes -------------------------------------------------------------

    def list_tenants(self) -> list[Tenant]:
        with self.read() as c:
            return [codec.tenant_from_row(r) for r in c.execute(select(T.tenants).order_by(T.tenants.c.id))]

    def list_programs(self) -> list[Program]:
        with self.read() as c:
            return [
                codec.program_from_row(r) for r in c.execute(select(T.programs).order_by(T.programs.c.id))
            ]

    def list_grants(
        self, *, tenants: Iterable[str] | None = None, programs: Iterable[str] | None = None
    ) -> list[Grant]:
        q = select(T.grants).order_by(T.grants.c.id)
        if tenants is not None:
            q = q.where(T.grants.c.tenant.in_(list(tenants)))
        if programs is not None:
            q = q.where(T.grants.c.program.in_(list(programs)))
        with self.read() as c:
            return [codec.grant_from_row(r) for r in c.execute(q)]

    def held_by_grant(self, grants: Iterable[str]) -> dict[str, int]:
        """KRW each grant holds for its active jobs (their ``reserved_krw``: a lease, or a whole run)."""
        ids = list(grants)
        if not ids:
            return {}
        with self.read() as c:
            return held_sums(c, ids)

    def granted_total(self, program: str) -> int:
        with self.read() as c:
            return int(
                c.execute(
                    select(func.coalesce(func.sum(T.grants.c.amount_krw), 0)).where(
                        T.grants.c.program == program
                    )
                ).scalar_one()
            )

    def list_nodes(self) -> list[NodeView]:
        with self.read() as c:
            return [
                NodeView(
                    r.name, r.accelerator, int(r.devices), r.zone, bool(r.down), list(r.labels or []), r.site
                )
                for r in c.execute(select(T.nodes).order_by(T.nodes.c.name))
            ]

    def busy_devices(self) -> dict[str, int]:
        """Devices in use per node, from running jobs' placements."""
        used: dict[str, int] = {}
        with self.read() as c:
            for (p,) in c.execute(
                select(T.jobs.c.placement).where(
                    T.jobs.c.active.is_(True), T.jobs.c.state == JobState.RUNNING.value
                )
            ):
                for node, devs in (p or {}).get("devices", []):
                    used[node] = used.get(node, 0) + len(devs)
        return used

    def active_jobs(self) -> int:
        """How many jobs are not finished."""
        with self.read() as c:
            return int(c.execute(select(func.count()).where(T.jobs.c.active.is_(True))).scalar() or 0)

    def charged_by_tenant(self) -> dict[str, int]:
        """KRW charged so far, by tenant."""
        with self.read() as c:
            q = select(T.charges.c.tenant, func.sum(T.charges.c.amount_krw)).group_by(T.charges.c.tenant)
            return {r[0]: int(r[1] or 0) for r in c.execute(q)}

    def counts(self) -> dict[str, int]:
        """Jobs per state (for /metrics)."""
        with self.read() as c:
            return {
                r[0]: int(r[1])
                for r in c.execute(select(T.jobs.c.state, func.count()).group_by(T.jobs.c.state))
            }

    # -- tokens ---------------------------------------------------------------------------------------

    def create_token(
        self,
        role: str,
        *,
        name: str = "",
        tenant: str | None = None,
        program: str | None = None,
        expires: float | None = None,
    ) -> tuple[TokenView, str]:
        """A new token; returns its view and the secret (shown once, stored only as a SHA-256 hash).
        ``expires``: epoch seconds after which it is refused (None: never)."""
        tid = "tok-" + secrets.token_hex(4)
        secret = f"ap_{tid[4:]}_{secrets.token_urlsafe(24)}"
        now = time.time()
        with self.write() as c:
            c.execute(
                insert(T.tokens).values(
                    id=tid,
                    hash=hash_token(secret),
                    name=name,
                    role=role,
                    tenant=tenant,
                    program=program,
                    created=now,
                    revoked=False,
                    expires=expires,
                )
            )
        return TokenView(tid, name, role, tenant, program, now, False, expires), secret

    def rotate_token(
        self, token_id: str, grace_seconds: float = 0.0, *, renew: bool = False
    ) -> tuple[TokenView, str] | None:
        """A new secret for the same principal (role, tenant, program, name). The new token expires when the
        old one would have (``renew``, an admin's rotation: the old token's whole lifetime from now; no
        expiry stays none), so nobody makes their own credential outlive its expiry by rotating it. The old
        token is refused ``grace_seconds`` from now (0: at once), never later than its own expiry.
        None if no such live token."""
        now = time.time()
        with self.read() as c:
            r = c.execute(select(T.tokens).where(T.tokens.c.id == token_id)).first()
        if r is None or r.revoked or (r.expires is not None and r.expires <= now):
            return None
        expires = None if r.expires is None else float(r.expires)
        if renew and expires is not None:
            expires = now + max(1.0, expires - float(r.created))
        out = self.create_token(r.role, name=r.name, tenant=r.tenant, program=r.program, expires=expires)
        with self.write() as c:
            if grace_seconds <= 0:
                c.execute(update(T.tokens).where(T.tokens.c.id == token_id).values(revoked=True))
            else:
                until = (
                    now + grace_seconds if r.expires is None else min(float(r.expires), now + grace_seconds)
                )
                c.execute(update(T.tokens).where(T.tokens.c.id == token_id).values(expires=until))
        self.invalidate()  # ends cached look-ups of the old token (api.auth.TokenCache)
        return out

    def token_by_secret(self, secret: str, now: float | None = None) -> TokenView | None:
        """The live token with this secret: not revoked, not expired at ``now`` (default: the wall clock)."""
        with self.read() as c:
            r = c.execute(select(T.tokens).where(T.tokens.c.hash == hash_token(secret))).first()
        at = time.time() if now is None else now
        if r is None or r.revoked or (r.expires is not None and r.expires <= at):
            return None
        return _token_view(r)

    def list_tokens(self, *, tenant: str | None = None) -> list[TokenView]:
        q = select(T.tokens).order_by(T.tokens.c.created)
        if tenant is not None:
            q = q.where(T.tokens.c.tenant == tenant)
        with self.read() as c:
            return [_token_view(r) for r in c.execute(q)]

    def revoke_token(self, token_id: str) -> bool:
        with self.write() as c:
            done = bool(
                c.execute(update(T.tokens).where(T.tokens.c.id == token_id).values(revoked=True)).rowcount
            )
        self.invalidate()  # also ends cached look-ups of the token (api.auth.TokenCache)
        return done

    def has_admin_token(self) -> bool:
        with self.read() as c:
            return (
                c.execute(
                    select(T.tokens.c.id).where(T.tokens.c.role == "admin", T.tokens.c.revoked.is_(False))
                ).first()
                is not None
            )


def _ranked(r: Any) -> bool:
    """A queued job the scheduler has considered (a new submission has no position until its first round,
    as when positions were stored); a job that cannot run as things stand ("blocked", core.reasons) has none."""
    return reasons.ranked(r.state, r.reason)


def _token_view(r: Any) -> TokenView:
    expires = None if r.expires is None else float(r.expires)
    return TokenView(r.id, r.name, r.role, r.tenant, r.program, float(r.created), bool(r.revoked), expires)


def _job_view(
    r: Any, charged: int | None = None, position: int | None = None, spot: QueueSpot | None = None
) -> JobView:
    return JobView(
        id=r.id,
        seq=int(r.seq),
        tenant=r.tenant,
        name=r.name,
        state=JobState(r.state),
        reason=r.reason,
        position=position,
        placement=r.placement,
        steps_done=float(r.steps_done),
        submit_time=float(r.submit_time),
        start_time=r.start_time,
        end_time=r.end_time,
        preemptions=int(r.preemptions),
        attempts=int(r.attempts),
        spec=dict(r.spec),
        run=dict(r.run),
        reserved_krw=int(r.reserved_krw),
        queue=spot,
        charged_krw=charged,
    )
