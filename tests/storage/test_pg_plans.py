"""PostgreSQL: the scheduler's look-ups of jobs by id use the unique B-tree on jobs.id, and the dashboard's
search by an id fragment uses the trigram index. Migration 0013 built that trigram GIN index on the column
``jobs.id`` itself; pg_trgm's operator class answers ``=`` too, and the planner took it (a bitmap scan
rechecking many rows per id) for ``id IN (...)`` while the table had no statistics, and for a join of
jobs.id with a JSON record set even with statistics: 1,189 starts in one UPDATE took 18.7 s. Since 0016
the index is on the expression ``(id || '')``, which only the search writes. The first test also runs the
locking read under 0015's schema, to show it catches the old index (the bulk UPDATEs' plans here chose the
B-tree under either schema: their 18.7 s plan came with a round's real sizes, not reproduced here)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, insert

from accelpool.core.types import Job, Node, Tenant
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.dashboard import JobFilter, search_jobs
from accelpool.storage.sql import _PG_STARTS, _PG_WAITS, SqlStore

pytestmark = pytest.mark.postgres

OLD, NEW = "ix_jobs_id_trgm", "ix_jobs_id_text_trgm"  # 0013's index on the column, 0016's on (id || '')
IDS = ", ".join(f"'j{k:06d}'" for k in range(0, 10_000, 20))
LOCKING_READ = f"SELECT id FROM jobs WHERE id IN ({IDS}) ORDER BY id FOR UPDATE"


def _store(database_url) -> SqlStore:
    store = SqlStore(database_url("postgres"))  # dropped when the test ends (tests/conftest.py)
    store.add_nodes([Node("h-0", "h100", 8)])
    store.add_tenant(Tenant("t1"))
    rows = []
    for k in range(10_000):  # at 2,000 rows the planner chose the B-tree anyway
        job = Job(f"j{k:06d}", tenant="t1", submit_time=float(k))
        rows.append(
            {
                "id": job.id,
                "tenant": "t1",
                "name": f"run {k % 97}",
                "spec": codec.job_to_dict(job),
                "run": {},
                "throughput": {"h100": 1.0},
                "state": "queued",
                "active": True,
                "seconds_on": {},
                "reason": "submitted",
                "submit_time": job.submit_time,
            }
        )
    with store.write() as c:  # one burst, as submissions land: no ANALYZE yet
        c.execute(insert(T.jobs), rows)
    return store


def _plan(c, sql: str, params: Any = None) -> str:
    return "\n".join(r[0] for r in c.exec_driver_sql("EXPLAIN " + sql, params or {}))


def _id_indexes(c) -> set[str]:
    """The trigram indexes on jobs.id there are (CI's server has pg_trgm: test_job_text_index.py too)."""
    sql = "SELECT indexname FROM pg_indexes WHERE indexname IN (%(a)s, %(b)s)"
    rows = c.exec_driver_sql(sql, {"a": OLD, "b": NEW})
    return {r[0] for r in rows}


def _to(store: SqlStore, revision: str) -> None:
    from alembic import command

    from accelpool.storage import migrate

    cfg = migrate._config()
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if revision == "head":
            command.upgrade(cfg, "head")
        else:
            command.downgrade(cfg, revision)


def _bulk_plans(store: SqlStore) -> str:
    """The plans of the round's bulk UPDATEs (starts, wait reasons), as the round sends them."""
    plans = []
    for stmt, params in ((_PG_STARTS, {"rows": "[]"}), (_PG_WAITS, {"groups": "{}"})):
        with store.write() as c:
            plans.append(_plan(c, str(stmt.compile(dialect=c.dialect)), params))
    return "\n".join(plans)


def test_locking_reads_by_id_use_the_btree_before_any_statistics(database_url) -> None:
    store = _store(database_url)
    try:
        with store.write() as c:
            assert _id_indexes(c) == {NEW}
            plan = _plan(c, LOCKING_READ)
        assert "jobs_id_key" in plan and "trgm" not in plan, plan
        _to(store, "0015_jobs_fillfactor_50")  # 0013's index on the column: the planner takes it
        with store.write() as c:
            assert _id_indexes(c) == {OLD}
            assert OLD in _plan(c, LOCKING_READ)
    finally:
        store.close()


def test_bulk_start_and_reason_updates_use_the_btree_with_statistics(database_url) -> None:
    store = _store(database_url)
    try:
        store._fresh_statistics(10_000)  # the ANALYZE a snapshot runs after a burst
        plans = _bulk_plans(store)
        assert "jobs_id_key" in plans and "trgm" not in plans, plans
    finally:
        store.close()


@contextmanager
def _statements(store: SqlStore) -> Iterator[list[tuple[str, Any]]]:
    """The statements (and parameters) the store sends while the block runs."""
    sent: list[tuple[str, Any]] = []

    def keep(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001, ARG001
        sent.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", keep)
    try:
        yield sent
    finally:
        event.remove(store.engine, "before_cursor_execute", keep)


def test_the_dashboard_search_by_an_id_fragment_uses_the_trigram_index(database_url) -> None:
    """The statements the search sends for a fragment of an id (after the ANALYZE autovacuum would run):
    the one reading the page and the one counting its matches both read 0016's index."""
    store = _store(database_url)
    try:
        with store.write() as c:
            c.exec_driver_sql("ANALYZE jobs")
        with _statements(store) as sent:
            page = search_jobs(store, None, JobFilter(q="j00424"), per_page=5)
        assert [v.id for v in page.rows] == [f"j00424{k}" for k in range(9, 4, -1)] and page.total == 10
        searches = [(s, p) for s, p in sent if " LIKE " in s]
        assert len(searches) == 2  # the page, the capped count
        with store.read() as c:
            for statement, params in searches:
                plan = _plan(c, statement, params)
                assert NEW in plan and "ix_jobs_name_trgm" in plan, plan
    finally:
        store.close()


def test_migration_0016_moves_the_index_and_goes_back(database_url) -> None:
    """PostgreSQL: down to 0015 restores 0013's index on the column, up again replaces it; the search
    answers the same at both. SQLite: 0016 changes nothing (its FTS5 table is searched by MATCH)."""
    store = _store(database_url)
    try:
        before = {v.id for v in search_jobs(store, None, JobFilter(q="j0099"), per_page=100).rows}
        assert before == {f"j0099{k:02d}" for k in range(100)}
        _to(store, "0015_jobs_fillfactor_50")
        with store.read() as c:
            assert _id_indexes(c) == {OLD}
        assert {v.id for v in search_jobs(store, None, JobFilter(q="j0099"), per_page=100).rows} == before
        _to(store, "head")
        with store.read() as c:
            assert _id_indexes(c) == {NEW}
        assert {v.id for v in search_jobs(store, None, JobFilter(q="j0099"), per_page=100).rows} == before
    finally:
        store.close()
