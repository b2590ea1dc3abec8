"""PostgreSQL: the scheduler's look-ups of jobs by id use the unique B-tree on jobs.id, never the trigram
GIN index the dashboard's text search has on the same column (migration 0013). The planner took the GIN
index (a bitmap scan rechecking many rows per id) for ``id IN (...)`` while the table had no statistics,
and for a join of jobs.id with a JSON record set even with statistics: 1,189 starts in one UPDATE took
18.7 s. ``UnitOfWork._ids_by_btree`` turns bitmap scans off for the rest of the transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from accelpool.core.types import Job, Node, Tenant
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.sql import _PG_STARTS, _PG_WAITS, SqlStore

pytestmark = pytest.mark.postgres


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
                "name": job.id,
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


def _plan(c, sql: str, params: dict | None = None) -> str:
    return "\n".join(r[0] for r in c.exec_driver_sql("EXPLAIN " + sql, params or {}))


def _has_trigram_index(c) -> bool:
    return bool(c.exec_driver_sql("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_jobs_id_trgm'").first())


def test_locking_reads_by_id_use_the_btree_before_any_statistics(database_url) -> None:
    store = _store(database_url)
    ids = ", ".join(f"'j{k:06d}'" for k in range(0, 10_000, 20))
    sql = f"SELECT id FROM jobs WHERE id IN ({ids}) ORDER BY id FOR UPDATE"
    try:
        with store.write() as c:
            assert _has_trigram_index(c)  # CI's server has pg_trgm (test_job_text_index.py relies on it too)
            store._ids_by_btree(c)
            plan = _plan(c, sql)
        assert "ix_jobs_id_trgm" not in plan, plan
    finally:
        store.close()


def test_bulk_start_and_reason_updates_use_the_btree_with_statistics(database_url) -> None:
    store = _store(database_url)
    try:
        with store.write() as c:
            assert _has_trigram_index(c)
        store._fresh_statistics(10_000)  # the ANALYZE a snapshot runs after a burst
        for stmt, params in ((_PG_STARTS, {"rows": "[]"}), (_PG_WAITS, {"groups": "{}"})):
            with store.write() as c:
                store._ids_by_btree(c)
                compiled = stmt.compile(dialect=c.dialect)
                plan = _plan(c, str(compiled), params)
            assert "ix_jobs_id_trgm" not in plan, plan
    finally:
        store.close()
