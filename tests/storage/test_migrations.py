"""Migrations: the schema Alembic builds is the one tables.py describes; positions are derived on read."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from accelpool.core.rounds import Decision
from accelpool.core.types import Job, WaitReason
from accelpool.storage import tables as T
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore


def test_migrated_schema_matches_the_tables(tmp_path):
    store = SqlStore(sqlite_url(tmp_path / "m.sqlite"))
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"include_name": T.include_name}), T.metadata
            )
        assert diff == []
    finally:
        store.close()


def test_positions_follow_priority_then_submit_time_then_id(tmp_path):
    store = SqlStore(sqlite_url(tmp_path / "p.sqlite"))
    try:
        jobs = [
            Job("b", submit_time=1.0),
            Job("a", submit_time=1.0),
            Job("c", submit_time=0.5),
            Job("u", priority=5, submit_time=9.0),
            Job("d", submit_time=2.0),
        ]
        for j in jobs:
            store.submit(j, {"h100": 1.0})
        assert store.get_job("a").position is None  # not yet considered by a round
        store.record_decision(
            Decision(now=1.0, allocation=None, waiting={j.id: WaitReason.CAPACITY for j in jobs})
        )  # type: ignore[arg-type]
        expect = {"u": 1, "c": 2, "a": 3, "b": 4, "d": 5}  # five: the window-function path
        assert {j.id: store.get_job(j.id).position for j in jobs} == expect
        views, _ = store.list_jobs(limit=10)
        assert {v.id: v.position for v in views} == expect
        store.cancel("u", now=2.0)
        assert store.get_job("u").position is None and store.get_job("c").position == 1
    finally:
        store.close()


def test_search_index_migration_fills_accepts_from_the_spec(sql_url):
    """0012 copies each job's accepted types out of its JSON spec into jobs.accepts ("|a100|h100|", "||"
    for any type), which the dashboard's type filter reads from ix_jobs_search; SQLite and PostgreSQL."""
    from alembic import command
    from sqlalchemy import select

    from accelpool.storage import migrate

    store = SqlStore(sql_url)
    try:
        store.submit(Job("two", allowed=frozenset({"h100", "a100"})), {"h100": 1.0})
        store.submit(Job("any"), {"h100": 1.0})
        cfg = migrate._config()
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0011_site_down_by_hand")
        migrate.upgrade(store.engine)
        with store.read() as c:
            got = dict(c.execute(select(T.jobs.c.id, T.jobs.c.accepts)).all())
        assert got == {"two": "|a100|h100|", "any": "||"}
    finally:
        store.close()


def test_job_id_text_index_migration_is_a_no_op_on_sqlite(tmp_path):
    """0016 moves PostgreSQL's trigram index on jobs.id to an expression (tests/storage/test_pg_plans.py);
    on SQLite, down to 0015 and up again leave the schema as it was and the search by id answering."""
    from alembic import command

    from accelpool.storage import migrate
    from accelpool.storage.dashboard import JobFilter, search_jobs

    store = SqlStore(sqlite_url(tmp_path / "t.sqlite"))
    try:
        store.submit(Job("job-0042"), {"h100": 1.0}, name="train")

        def schema() -> list[tuple[object, ...]]:
            with store.read() as c:
                rows = c.exec_driver_sql("SELECT type, name, sql FROM sqlite_master ORDER BY name")
                return [tuple(r) for r in rows]

        at_head = schema()
        cfg = migrate._config()
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0015_jobs_fillfactor_50")
        # down to 0015 also drops 0017's index; 0016 itself changes nothing on SQLite
        assert schema() == [r for r in at_head if r[1] != "ix_jobs_tenant_active"]
        migrate.upgrade(store.engine)
        assert schema() == at_head
        assert [v.id for v in search_jobs(store, None, JobFilter(q="b-004"), per_page=5).rows] == ["job-0042"]
    finally:
        store.close()
