"""Read-side queries only the dashboard (``accelpool.web``) needs: searching job history, a job's charges
and attempts, the pool's use over time, waiting demand, spending per day. Additive to the other read
models: plain SELECTs through the store's ``read()`` connection, answering views or plain values;
nothing here writes.
"""

from __future__ import annotations

import json
import operator
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import and_, column, func, literal_column, or_, select, table
from sqlalchemy import text as sql_text

from accelpool.storage import tables as T
from accelpool.storage.sql import SqlStore
from accelpool.storage.views import JobView, row_view

# each sort: (column, descending) pairs, the last one the unique key ``seq`` (keyset pages)
SORTS: dict[str, tuple[tuple[Any, bool], ...]] = {
    "new": ((T.jobs.c.seq, True),),
    "old": ((T.jobs.c.seq, False),),
    "name": ((T.jobs.c.name, False), (T.jobs.c.seq, True)),
    "tenant": ((T.jobs.c.tenant, False), (T.jobs.c.seq, True)),
    "state": ((T.jobs.c.state, False), (T.jobs.c.seq, True)),
}
HOUR = 3600.0
_TEXT = table("jobs_text", column("rowid"))  # SQLite's FTS5 trigram index of jobs.name, jobs.id (0013, 0014)
COUNT_CAP = 10_000  # a filtered search counts its matches up to this many
DAY = 86400.0
TRIGRAM = 3  # the shortest text the trigram indexes serve (characters)
# The text the search matches a job's id against: ``(id || '')``, the very expression PostgreSQL's trigram
# index ``ix_jobs_id_text_trgm`` is built on (migration 0016), so the index serves this LIKE, and only it:
# a look-up of ``jobs.id`` by ``=`` or ``IN`` cannot match the expression and keeps to the unique B-tree.
# The empty string is a literal, not a parameter, or the planner could not match the index's expression.
# Same meaning as ``id`` on both databases (SQLite's search reads its FTS5 table, then this LIKE).
JOB_ID_TEXT = T.jobs.c.id.concat(literal_column("''"))


@dataclass(frozen=True)
class JobFilter:
    q: str = ""
    state: str = ""
    tenant: str = ""
    program: str = ""
    type: str = ""
    since: float | None = None
    until: float | None = None
    sort: str = "new"


@dataclass(frozen=True)
class JobPage:
    """One page of a job search: the rows, how many match (at most COUNT_CAP for a filtered search:
    ``capped``), and the keys of the rows on either side for the next and previous pages (None: none)."""

    rows: list[JobView]
    total: int
    capped: bool
    next_after: int | None
    prev_before: int | None


def _conditions(
    store: SqlStore, tenants: Iterable[str] | None, f: JobFilter, grants: Iterable[str] | None
) -> list[Any]:
    j = T.jobs.c
    conds: list[Any] = []
    if tenants is not None:
        conds.append(j.tenant.in_(list(tenants)))
    if grants is not None:  # a program manager: the jobs charged to its program's grants
        conds.append(j.grant_id.in_(list(grants)))
    if f.tenant:
        conds.append(j.tenant == f.tenant)
    if f.state:
        conds.append(j.state == f.state)
    if f.q:
        like = "%" + _escape(f.q) + "%"
        conds.append(or_(j.name.like(like, escape="\\"), JOB_ID_TEXT.like(like, escape="\\")))
    if f.program:
        with store.read() as c:
            ids = [r.id for r in c.execute(select(T.grants.c.id).where(T.grants.c.program == f.program))]
        conds.append(j.grant_id.in_(ids))
    if f.type:  # the accepted types between bars ("|a100|h100|": codec.accepts_text), in ix_jobs_search
        conds.append(j.accepts.like(f"%|{_escape(f.type)}|%", escape="\\"))
    if f.since is not None:
        conds.append(j.submit_time >= f.since)
    if f.until is not None:
        conds.append(j.submit_time < f.until)
    return conds


def _indexed(store: SqlStore, f: JobFilter) -> bool:
    """Whether the text search reads SQLite's trigram index ``jobs_text`` (migration 0013): texts of
    ``TRIGRAM`` or more characters (shorter ones have no trigram: the LIKE alone reads the table). The
    index keeps the rows holding the text as a phrase, a superset of what the LIKE keeps (it folds case
    over all of Unicode, LIKE over ASCII only), and the LIKE stays: the search means exactly what it
    meant. PostgreSQL needs no rewrite: its GIN trigram indexes (pg_trgm) serve the LIKE itself (on
    ``jobs.name`` and on ``JOB_ID_TEXT``)."""
    return len(f.q) >= TRIGRAM and store.engine.dialect.name == "sqlite"


def _parts(store: SqlStore, c: Any, f: JobFilter) -> list[tuple[Any, list[Any]]]:
    """Where a search reads its rows: (source, conditions added to the filter's) for each part. Without
    the text index, the jobs table. With it (``_indexed``): the jobs the index covers, joined to their
    index rows that hold the text, and the jobs above the index's mark (``jobs_text_mark``, migration
    0014: the newest, at most about ``submissions.TEXT_INDEX_EVERY``), which the LIKE alone reads, so a
    job is found from the moment its submission is answered."""
    if not _indexed(store, f):
        return [(T.jobs, [])]
    mark = int(c.exec_driver_sql("SELECT upto FROM jobs_text_mark WHERE id = 0").scalar() or 0)
    phrase = '"' + f.q.replace('"', '""') + '"'
    match = sql_text("jobs_text MATCH :text_q").bindparams(text_q=phrase)
    return [
        (T.jobs.join(_TEXT, _TEXT.c.rowid == T.jobs.c.seq), [match, _TEXT.c.rowid <= mark]),
        (T.jobs, [T.jobs.c.seq > mark]),
    ]


def _merge(parts: list[list[tuple[Any, ...]]], order: Sequence[tuple[Any, bool]], forward: bool) -> list[Any]:
    """The rows of several parts (each already in the page's order) in the page's order: the sort's
    columns, each descending when its ``desc`` equals ``forward`` (as the queries order them)."""
    rows = [r for part in parts for r in part]
    for i in reversed(range(len(order))):  # stable sorts, the last key first
        rows.sort(key=operator.itemgetter(i), reverse=order[i][1] == forward)
    return rows


def _escape(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _beyond(order: Sequence[tuple[Any, bool]], key: Sequence[Any], forward: bool) -> Any:
    """Rows strictly after (``forward``) or before the row whose sort key is ``key``, in ``order``."""
    alts = []
    for i, (col, desc) in enumerate(order):
        later = (col < key[i]) if desc == forward else (col > key[i])
        alts.append(and_(*[c == k for (c, _), k in zip(order[:i], key[:i], strict=False)], later))
    return or_(*alts)


def search_jobs(
    store: SqlStore,
    tenants: Iterable[str] | None,
    f: JobFilter,
    *,
    page: int = 1,
    per_page: int = 50,
    grants: Iterable[str] | None = None,
    after: int | None = None,
    before: int | None = None,
) -> JobPage:
    """A page of the jobs ``tenants`` may see (None: all) matching ``f``, in ``f.sort`` order.

    Pages are keyset pages: ``after`` (the ``seq`` of the last row of the page before) or ``before`` (of
    the first row of the page after) find the page through the sort's index without reading the rows an
    OFFSET would skip; a bare ``page`` number (a typed address) falls back to OFFSET. The count is exact
    without filters (an index count) and capped at COUNT_CAP with them, counted without ordering (the
    state, grant and tenant indexes answer most counts alone)."""
    j = T.jobs.c
    conds = _conditions(store, tenants, f, grants)
    order = SORTS.get(f.sort, SORTS["new"])
    cols = [c for c, _ in order]
    filtered = any((f.tenant, f.state, f.q, f.program, f.type, f.since is not None, f.until is not None))
    with store.read() as c:
        cursor = after if after is not None else before
        forward = before is None
        where = list(conds)
        if cursor is not None:  # the caller's own rows only: another tenant's would tell its sort key (a
            # review paged with another tenant's seq and read that job's name between its own probe jobs)
            row = c.execute(select(*cols).where(j.seq == cursor, *conds)).first()
        parts = _parts(store, c, f)
        skip = (page - 1) * per_page if cursor is None and page > 1 else 0
        found_parts = []
        for src, extra in parts:
            by_order = order
            if src is not T.jobs and f.sort in ("new", "old"):
                # newest (or oldest) first straight from the index's rowid order (rowid = seq): the first
                # page stops after its rows even when most jobs hold the text
                by_order = ((_TEXT.c.rowid, order[0][1]),)
            part_where = where + extra
            if cursor is not None and row is not None:
                part_where.append(_beyond(by_order, tuple(row), forward))
            keys = select(*cols).select_from(src)
            if part_where:
                keys = keys.where(and_(*part_where))
            by = [(col.desc() if desc == forward else col.asc()) for col, desc in by_order]
            if len(parts) == 1:
                q = keys.order_by(*by).limit(per_page + 1).offset(skip or None)
            else:  # each part's first rows up to the page's end; merged, then the page cut out below
                q = keys.order_by(*by).limit(skip + per_page + 1)
            found_parts.append([tuple(r) for r in c.execute(q)])
        if len(parts) == 1:
            found = found_parts[0]
        else:
            found = _merge(found_parts, order, forward)[skip : skip + per_page + 1]
        more = len(found) > per_page
        found = found[:per_page]
        if not forward:
            found.reverse()
        seqs = [int(r[-1]) for r in found]
        n: Any = select(func.count()).select_from(T.jobs)
        if cursor is None and page <= 1 and not more:
            n = None  # the first page holds every match: counted already (a rare name, say)
        elif conds and filtered:
            n = [
                select(func.count()).select_from(
                    select(j.seq).select_from(src).where(and_(*conds, *extra)).limit(COUNT_CAP + 1).subquery()
                )
                for src, extra in parts
            ]
        elif conds:
            n = n.where(and_(*conds))
        if n is None:
            total = len(found)
        elif isinstance(n, list):
            total = sum(int(c.execute(q).scalar_one()) for q in n)
        else:
            total = int(c.execute(n).scalar_one())
    capped = filtered and total > COUNT_CAP
    on_first = (cursor is None and page <= 1) or (not forward and not more)
    nxt = seqs[-1] if seqs and (more or not forward) else None
    prev = seqs[0] if seqs and not on_first else None
    return JobPage(_views(store, seqs), COUNT_CAP if capped else total, capped, nxt, prev)


def active_jobs(
    store: SqlStore,
    tenants: Iterable[str] | None,
    states: Sequence[str],
    limit: int,
    *,
    queue_order: bool = False,
    grants: Iterable[str] | None = None,
) -> tuple[list[JobView], bool]:
    """The first ``limit`` active jobs in ``states``, newest first (through the ``active, seq`` index) or
    in the scheduler's queue order (priority, submit time, id: the ``ix_jobs_queue`` index), and whether
    there are more."""
    j = T.jobs.c
    order = (j.priority.desc(), j.submit_time, j.id) if queue_order else (j.seq.desc(),)
    q = select(j.seq).where(j.active.is_(True), j.state.in_(list(states))).order_by(*order)
    if tenants is not None:
        q = q.where(j.tenant.in_(list(tenants)))
    if grants is not None:
        q = q.where(j.grant_id.in_(list(grants)))
    with store.read() as c:
        seqs = [int(r.seq) for r in c.execute(q.limit(limit + 1))]
    return _views(store, seqs[:limit]), len(seqs) > limit


def _views(store: SqlStore, seqs: Sequence[int]) -> list[JobView]:
    """Full views of the jobs with these ``seq`` keys, in that order, with their cost, queue position and
    (for a queued job the latest round ranked) place in the pool and the tenant and estimated start."""
    if not seqs:
        return []
    with store.read() as c:
        rows = {int(r.seq): r for r in c.execute(select(T.jobs).where(T.jobs.c.seq.in_(list(seqs))))}
        ordered = [rows[k] for k in seqs if k in rows]
        positions = store.queue_positions(c, ordered)
        spots = store.queue_spots(c, ordered)  # place in the pool and the tenant, estimated start range
        ids = [r.id for r in ordered]
        cost = {
            r.job: int(r.krw)
            for r in c.execute(
                select(T.charges.c.job, func.sum(T.charges.c.amount_krw).label("krw"))
                .where(T.charges.c.job.in_(ids))
                .group_by(T.charges.c.job)
            )
        }
    views = []
    for r in ordered:
        d = r._asdict()
        d["position"] = positions.get(r.id)
        d["queue"] = spots.get(r.id)
        views.append(row_view(d, charged=cost.get(r.id, 0)))
    return views


@dataclass(frozen=True)
class ChargeRow:
    start: float
    end: float
    accelerator: str
    device_seconds: float
    krw: int
    site: str = "default"


def job_charges(store: SqlStore, job_id: str) -> list[ChargeRow]:
    c_ = T.charges.c
    with store.read() as c:
        rows = c.execute(
            select(c_.start, c_.end, c_.accelerator, c_.device_seconds, c_.amount_krw, c_.site)
            .where(c_.job == job_id)
            .order_by(c_.start)
        ).all()
    return [
        ChargeRow(
            float(r.start), float(r.end), r.accelerator, float(r.device_seconds), int(r.amount_krw), r.site
        )
        for r in rows
    ]


@dataclass(frozen=True)
class AttemptRow:
    number: int
    start: float
    end: float | None
    accelerator: str
    device_seconds: float
    krw: int
    ended_by: str
    site: str = ""
    """The site the attempt's charges were metered at ("" before its first charge)."""

    @property
    def device_hours(self) -> float:
        return self.device_seconds / HOUR


def attempts(events: Sequence[Any], charges: Sequence[ChargeRow]) -> list[AttemptRow]:
    """Attempts are the spans from a ``running`` event to the next event that is not ``running``; each
    charge belongs to the attempt its interval starts in."""
    spans: list[list[Any]] = []
    for e in events:
        if e.state == "running":
            if spans and spans[-1][1] is None:
                continue
            spans.append([e.time, None, ""])
        elif spans and spans[-1][1] is None:
            spans[-1][1] = e.time
            spans[-1][2] = e.reason or e.state
    out = []
    for i, (start, end, why) in enumerate(spans):
        mine = [ch for ch in charges if ch.start >= start - 1e-6 and (end is None or ch.start < end)]
        acc = mine[0].accelerator if mine else ""
        out.append(
            AttemptRow(
                i + 1,
                start,
                end,
                acc,
                sum(ch.device_seconds for ch in mine),
                sum(ch.krw for ch in mine),
                why,
                mine[0].site if mine else "",
            )
        )
    return out


def busy_series(store: SqlStore, now: float, hours: int = 24) -> tuple[list[float], dict[str, list[float]]]:
    """Busy device-seconds per type per hour for the last ``hours`` (from metered charges)."""
    start = (now // HOUR - hours + 1) * HOUR
    edges = [start + k * HOUR for k in range(hours)]
    out: dict[str, list[float]] = defaultdict(lambda: [0.0] * hours)
    c_ = T.charges.c
    with store.read() as c:
        rows = c.execute(
            select(c_.accelerator, c_.start, c_.end, c_.device_seconds).where(_recent(c, start))
        ).all()
    if not rows:
        return edges, {}
    acc = [r.accelerator for r in rows]
    a = np.array([float(r.start) for r in rows])
    b = np.array([float(r.end) for r in rows])
    ds = np.array([float(r.device_seconds) for r in rows])
    with np.errstate(divide="ignore", invalid="ignore"):
        devices = np.where(b > a, ds / (b - a), 0.0)
    lo = np.asarray(edges)
    # seconds each charge overlaps each hour, times the devices it held: (charges x hours)
    overlap = np.clip(
        np.minimum(b[:, None], lo[None, :] + HOUR) - np.maximum(a[:, None], lo[None, :]), 0.0, None
    )
    used = overlap * devices[:, None]
    for t in sorted(set(acc)):
        mask = np.array([x == t for x in acc])
        out[t] = [float(v) for v in used[mask].sum(axis=0)]
    return edges, dict(out)


def waiting_demand(store: SqlStore) -> dict[str, int]:
    """Devices wanted by queued and preempted jobs, per accepted type (pool-wide, no names). Summed in SQL
    per distinct list of accepted types (a handful of groups), not job by job in Python."""
    spec = T.jobs.c.spec
    allowed = spec["allowed"].as_string()
    q = (
        select(allowed.label("allowed"), func.sum(func.coalesce(spec["scale"].as_integer(), 1)).label("n"))
        .where(T.jobs.c.state.in_(["queued", "preempted"]))
        .group_by(allowed)
    )
    out: dict[str, int] = defaultdict(int)
    with store.read() as c:
        rows = c.execute(q).all()
    for r in rows:
        try:
            types = json.loads(r.allowed) if r.allowed else []
        except ValueError:
            types = []
        for t in types or ["any"]:
            out[str(t)] += int(r.n or 0)
    return dict(out)


def spend_since(
    store: SqlStore, since: float, programs: Iterable[str] | None = None, tenants: Iterable[str] | None = None
) -> dict[str, int]:
    """KRW charged since ``since`` per program (to ``tenants`` only, when given)."""
    c_ = T.charges.c
    with store.read() as c:
        recent = _recent(c, since, tenants)
    q = select(c_.program, func.sum(c_.amount_krw).label("krw")).where(recent).group_by(c_.program)
    if programs is not None:
        q = q.where(c_.program.in_(list(programs)))
    with store.read() as c:
        return {str(r.program): int(r.krw or 0) for r in c.execute(q)}


def daily_spend(
    store: SqlStore,
    now: float,
    days: int,
    programs: Iterable[str] | None = None,
    tenants: Iterable[str] | None = None,
) -> tuple[list[float], dict[str, list[int]], dict[str, list[int]]]:
    """KRW per day (UTC days) for the last ``days``, per tenant and per accelerator type: one grouped
    query over the charges that ended in those days (read from the ``(tenant, end, ...)`` index alone)."""
    start = (now // DAY - days + 1) * DAY
    c_ = T.charges.c
    day = func.floor(c_.end / DAY)
    with store.read() as c:
        recent = _recent(c, start, tenants)
    q = (
        select(c_.tenant, c_.accelerator, day.label("d"), func.sum(c_.amount_krw).label("krw"))
        .where(recent)
        .group_by(c_.tenant, c_.accelerator, day)
    )
    if programs is not None:
        q = q.where(c_.program.in_(list(programs)))
    by_tenant: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    by_type: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    with store.read() as c:
        for r in c.execute(q):
            k = int(float(r.d) * DAY - start) // int(DAY)
            if 0 <= k < days:
                by_tenant[str(r.tenant)][k] += int(r.krw or 0)
                by_type[str(r.accelerator)][k] += int(r.krw or 0)
    edges = [start + i * DAY for i in range(days)]
    return edges, dict(sorted(by_tenant.items())), dict(sorted(by_type.items()))


def _recent(c: Any, since: float, tenants: Iterable[str] | None = None) -> Any:
    """Charges that ended after ``since``, as a condition the ``(tenant, end)`` index answers: one range
    per tenant instead of reading every charge."""
    c_ = T.charges.c
    if tenants is None:
        tenants = [r.id for r in c.execute(select(T.tenants.c.id))]
    return and_(c_.tenant.in_(list(tenants)), c_.end > since)
