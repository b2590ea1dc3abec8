"""SQLite write transactions wait for another writer's lock by asking again at most every millisecond
(``engine._begin_write``), not in SQLite's busy handler: they begin soon after the lock is freed, and
still give up with SQLite's own error after the busy timeout."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from accelpool.storage import engine
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore


def _hold_lock(path: str, seconds: float, taken: threading.Event, freed: list[float]) -> None:
    con = sqlite3.connect(path, isolation_level=None, timeout=10)
    con.execute("BEGIN IMMEDIATE")
    taken.set()
    time.sleep(seconds)
    con.execute("COMMIT")
    freed.append(time.perf_counter())
    con.close()


def test_a_write_begins_once_the_other_writers_lock_is_freed(tmp_path):
    path = str(tmp_path / "w.sqlite")
    store = SqlStore(sqlite_url(path))
    try:
        taken, freed = threading.Event(), []
        t = threading.Thread(target=_hold_lock, args=(path, 0.3, taken, freed))
        t.start()
        assert taken.wait(10)
        t0 = time.perf_counter()
        with store.write() as c:  # waits for the other connection's transaction
            began = time.perf_counter()
            c.exec_driver_sql("CREATE TABLE IF NOT EXISTS probe (x INTEGER)")
            c.exec_driver_sql("INSERT INTO probe VALUES (1)")
        t.join()
        assert began - t0 >= 0.25 and began >= freed[0]
        with store.read() as c:
            assert c.exec_driver_sql("SELECT count(*) FROM probe").scalar() == 1
        # the write connections leave waiting to _begin_write (SQLite's busy handler would sleep on)
        with store.write() as c:
            assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 0
        with store.read() as c:
            assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == engine.SQLITE_BUSY_TIMEOUT_MS
    finally:
        store.close()


def test_a_write_gives_up_after_the_busy_timeout(tmp_path, monkeypatch):
    path = str(tmp_path / "w.sqlite")
    store = SqlStore(sqlite_url(path))
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 200)
    try:
        taken, freed = threading.Event(), []
        t = threading.Thread(target=_hold_lock, args=(path, 1.5, taken, freed))
        t.start()
        assert taken.wait(10)
        t0 = time.perf_counter()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            with store.write():
                pass
        assert 0.2 <= time.perf_counter() - t0 < 1.4
        t.join()
        with store.write() as c:  # and the store goes on once the lock is free
            c.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
    finally:
        store.close()
