"""SqlStore.snapshot reads only the job rows written since its last snapshot (jobs.ver, migration 0014),
and what it hands out is what a store with no history reads afresh: writes by other stores and by plain
SQL are seen, ended jobs leave, the order stays the submission order; on PostgreSQL a transaction that
commits after a later one (out of order) is not missed; under concurrent writers the kept rows never
drift from the table."""

from __future__ import annotations

import random
import threading

import pytest
from sqlalchemy import text

from accelpool.core.types import Job, JobState, Node, Tenant
from accelpool.storage.engine import sqlite_url
from accelpool.storage.pgserver import fresh_database, postgres_url
from accelpool.storage.sql import SqlStore, Submission


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "d.sqlite")
    base = postgres_url()
    if base is None:
        pytest.skip("no PostgreSQL: set ACCELPOOL_TEST_POSTGRES_URL or install the server binaries")
    return fresh_database(base)


def _fresh(url: str, now: float):
    """The jobs and throughput a store with no history reads (every active row)."""
    s = SqlStore(url)
    try:
        snap = s.snapshot(now, 360.0)
        return snap.jobs, {j: snap.throughput.row(j) for j in snap.throughput.jobs}, dict(s._waits)
    finally:
        s.close()


def _same_as_fresh(sched: SqlStore, url: str, now: float) -> None:
    snap = sched.snapshot(now, 360.0)
    jobs, tp, waits = _fresh(url, now)
    assert [s.job.id for s in snap.jobs] == [s.job.id for s in jobs]  # the same jobs in the same order
    assert snap.jobs == jobs
    assert {j: snap.throughput.row(j) for j in snap.throughput.jobs} == tp
    assert sched._waits == waits


def _rows_read(store: SqlStore) -> list[int]:
    """Record how many job rows each snapshot of ``store`` read."""
    seen: list[int] = []
    merge = store._merge_rows

    def counted(rows, full):  # type: ignore[no-untyped-def]
        seen.append(len(rows))
        return merge(rows, full)

    store._merge_rows = counted  # type: ignore[method-assign]
    return seen


def test_a_snapshot_reads_only_the_rows_written_since_the_last_and_sees_every_write(url) -> None:
    sched, api = SqlStore(url), SqlStore(url)
    try:
        sched.add_nodes([Node("h-0", "h100", 1)])
        sched.add_tenant(Tenant("t1"))
        api.submit_many([Submission(Job(f"a{i:03d}", tenant="t1"), {"h100": 1.0}) for i in range(100)])
        seen = _rows_read(sched)
        s1 = sched.snapshot(10.0, 360.0)
        assert len(s1.jobs) == 100 and seen == [100]  # the first one reads every active job
        s2 = sched.snapshot(11.0, 360.0)
        assert seen[-1] == 0 and s2.jobs == s1.jobs and s2.throughput is s1.throughput
        api.submit(Job("b", tenant="t1"), {"h100": 2.0})
        api.cancel("a005", 12.0)
        s3 = sched.snapshot(13.0, 360.0)
        assert seen[-1] <= 2 + 2  # the two rows written (PostgreSQL may read a few again: its window)
        assert "a005" not in {s.job.id for s in s3.jobs} and s3.jobs[-1].job.id == "b"
        assert s3.throughput.row("b") == {"h100": 2.0}
        # a write by plain SQL (no code of this store): the trigger marks it all the same
        with api.write() as c:
            c.execute(text("UPDATE jobs SET reason = 'by hand', steps_done = 7 WHERE id = 'a010'"))
        s4 = sched.snapshot(14.0, 360.0)
        by = {s.job.id: s for s in s4.jobs}
        assert by["a010"].steps_done == 7.0 and sched._waits["a010"] == "by hand"
        assert by["a011"] is {s.job.id: s for s in s1.jobs}["a011"]  # untouched rows: the same objects
        _same_as_fresh(sched, url, 15.0)
    finally:
        sched.close()
        api.close()


def test_without_the_triggers_every_snapshot_reads_every_job(url) -> None:
    sched = SqlStore(url)
    try:
        sched.add_nodes([Node("h-0", "h100", 1)])
        sched.submit_many([Submission(Job(f"a{i}"), {"h100": 1.0}) for i in range(5)])
        with sched.write() as c:
            if sched._pg:
                c.execute(text("DROP TRIGGER jobs_ver ON jobs"))
            else:
                c.execute(text("DROP TRIGGER jobs_ver_ai"))
                c.execute(text("DROP TRIGGER jobs_ver_au"))
        seen = _rows_read(sched)
        sched.snapshot(1.0, 360.0)
        sched.submit(Job("b"), {"h100": 1.0})
        assert [s.job.id for s in sched.snapshot(2.0, 360.0).jobs][-1] == "b"
        assert seen == [5, 6]
    finally:
        sched.close()


@pytest.mark.postgres
def test_postgres_a_transaction_that_commits_after_a_later_one_is_not_missed(tmp_path) -> None:
    """T1 takes its job's seq and writes a running job's row, then waits; T2 submits later and commits; a
    snapshot sees T2's work; T1 commits; the next snapshot sees T1's too (a counter taken at write time
    would have been passed by then), in seq order."""
    base = postgres_url()
    if base is None:
        pytest.skip("no PostgreSQL: set ACCELPOOL_TEST_POSTGRES_URL or install the server binaries")
    url = fresh_database(base)
    sched, api = SqlStore(url), SqlStore(url)
    try:
        sched.add_nodes([Node("h-0", "h100", 1)])
        api.submit_many([Submission(Job(f"a{i}"), {"h100": 1.0}) for i in range(3)])
        sched.snapshot(1.0, 360.0)
        with api.engine.connect() as t1:
            tx = t1.begin()
            t1.execute(text("UPDATE jobs SET steps_done = 42 WHERE id = 'a1'"))
            api.submit(Job("late"), {"h100": 1.0})  # its own transaction, committed now
            s2 = sched.snapshot(2.0, 360.0)
            assert [s.job.id for s in s2.jobs] == ["a0", "a1", "a2", "late"]
            assert {s.job.id: s for s in s2.jobs}["a1"].steps_done == 0.0  # T1 not committed yet
            sched.snapshot(3.0, 360.0)  # another round while T1 is still open
            tx.commit()
        s4 = sched.snapshot(4.0, 360.0)
        assert {s.job.id: s for s in s4.jobs}["a1"].steps_done == 42.0
        # an insert whose seq is older than a job already seen: kept in seq order
        with api.engine.connect() as t1:
            tx = t1.begin()
            seq = t1.execute(text("SELECT nextval(pg_get_serial_sequence('jobs', 'seq'))")).scalar()
            api.submit(Job("newer"), {"h100": 1.0})
            sched.snapshot(5.0, 360.0)
            row = api.job_row(Submission(Job("older"), {"h100": 1.0}))
            row["seq"] = seq
            from accelpool.storage import tables as T

            t1.execute(T.jobs.insert().values(**row))
            tx.commit()
        s6 = sched.snapshot(6.0, 360.0)
        assert [s.job.id for s in s6.jobs] == ["a0", "a1", "a2", "late", "older", "newer"]
        _same_as_fresh(sched, url, 7.0)
    finally:
        sched.close()
        api.close()


def test_concurrent_writers_never_make_the_kept_rows_drift(url) -> None:
    """Four threads submit, cancel, meter (plain SQL) and measure at random while the scheduler's store
    takes snapshots; once they stop, its snapshot equals a fresh store's read."""
    sched = SqlStore(url)
    writers = [SqlStore(url) for _ in range(4)]
    try:
        sched.add_nodes([Node("h-0", "h100", 1), Node("r-0", "rngd", 1)])
        sched.add_tenant(Tenant("t1"))
        stop = threading.Event()
        errors: list[BaseException] = []

        def write(k: int) -> None:
            rng = random.Random(k)
            store = writers[k]
            n = 0
            try:
                while not stop.is_set():
                    op = rng.random()
                    if op < 0.5:
                        store.submit_many(
                            [
                                Submission(Job(f"w{k}-{n + i}", tenant="t1"), {"h100": rng.uniform(0.5, 2)})
                                for i in range(rng.randint(1, 4))
                            ]
                        )
                        n += 4
                    elif n and op < 0.7:
                        try:
                            store.cancel(f"w{k}-{rng.randrange(n)}", 1.0)
                        except KeyError:
                            pass
                    elif n and op < 0.85:
                        with store.write() as c:
                            c.execute(
                                text("UPDATE jobs SET steps_done = steps_done + 1 WHERE id = :i"),
                                {"i": f"w{k}-{rng.randrange(n)}"},
                            )
                    elif n:
                        try:
                            store.measure(f"w{k}-{rng.randrange(n)}", "rngd", rng.uniform(1, 3))
                        except KeyError:
                            pass
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        try:
            for r in range(30):
                sched.snapshot(float(r), 360.0)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors
        _same_as_fresh(sched, url, 100.0)
        snap = sched.snapshot(101.0, 360.0)
        assert len(snap.jobs) > 20 and any(s.state is JobState.QUEUED for s in snap.jobs)
    finally:
        sched.close()
        for w in writers:
            w.close()
