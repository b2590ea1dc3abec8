"""Engines: SQLite (WAL, busy timeout, write transactions that take the lock up front) and PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

STORE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, sqlite3.OperationalError)
"""What the store raises when the database cannot take a request now (its disk full, the file read-only,
a lock held past its wait, the server gone; SQLite's own error where a connection event raised it, e.g. the
write lock taken at BEGIN): the API answers 503, to be retried (api/errors.py), where ``transient``."""

_SQLITE_TRANSIENT = ("locked", "busy", "full", "readonly", "read-only", "disk i/o", "unable to open")


def transient(exc: BaseException) -> bool:
    """Whether a STORE_UNAVAILABLE error may pass if the request is sent again: SQLite's own error class
    also holds schema and SQL mistakes ("no such column"), told apart by its message; a server's
    (PostgreSQL) operational errors are its connection, disk or locks."""
    orig = getattr(exc, "orig", exc)
    if isinstance(orig, sqlite3.Error):
        text = str(orig).lower()
        return any(word in text for word in _SQLITE_TRANSIENT)
    return True


SQLITE_BUSY_TIMEOUT_MS = 10_000
# A write transaction waiting for another's lock asks again this often at most (seconds); see _begin_write
SQLITE_LOCK_POLL = 0.001

try:
    import orjson

    def json_serializer(obj: Any) -> str:
        return orjson.dumps(obj).decode()

    def json_deserializer(s: str | bytes) -> Any:
        return orjson.loads(s)
except ImportError:  # pragma: no cover - orjson is optional (faster JSON columns)
    import json

    def json_serializer(obj: Any) -> str:
        return json.dumps(obj)

    def json_deserializer(s: str | bytes) -> Any:
        return json.loads(s)


def sqlite_url(path: str | Path) -> str:
    return f"sqlite+pysqlite:///{Path(path)}"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engines(url: str) -> tuple[Engine, Engine]:
    """(write engine, read engine). On SQLite the write engine begins with ``BEGIN IMMEDIATE`` so writers
    queue on the busy timeout instead of failing on a lock upgrade; readers use plain deferred transactions
    and never block writers (WAL). On PostgreSQL both are the same pooled engine."""
    if not is_sqlite(url):
        eng = create_engine(
            url,
            pool_size=16,
            max_overflow=16,
            pool_pre_ping=True,
            json_serializer=json_serializer,
            json_deserializer=json_deserializer,
        )
        return eng, eng
    if url.endswith(":memory:") or url.rstrip("/") == "sqlite:" or url == "sqlite+pysqlite://":
        raise ValueError("use a file for SQLite (the service and tests share it between threads)")
    return _sqlite(url, immediate=True), _sqlite(url, immediate=False)


def _sqlite(url: str, *, immediate: bool) -> Engine:
    eng = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=8,
        max_overflow=16,
        json_serializer=json_serializer,
        json_deserializer=json_deserializer,
    )

    @event.listens_for(eng, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver must not BEGIN on its own; we do it below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a process kill
        cur.execute("PRAGMA foreign_keys=ON")
        if immediate:  # writers wait for the lock in _begin_write, not in SQLite's busy handler
            cur.execute("PRAGMA busy_timeout=0")
        cur.close()

    @event.listens_for(eng, "begin")
    def _on_begin(conn: Any) -> None:
        if immediate:
            _begin_write(conn.connection.dbapi_connection)
        else:
            conn.exec_driver_sql("BEGIN")

    return eng


def _begin_write(dbapi_conn: Any) -> None:
    """``BEGIN IMMEDIATE``, waiting up to the busy timeout for another writer's lock by asking again
    every 0.1, 0.2, 0.4 ... ``SQLITE_LOCK_POLL`` seconds.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms between tries, so a
    writer that found the lock taken (a submission batch behind a scheduler round's write, say) went on
    sleeping up to tens of milliseconds after the lock was free: measured on this machine, a waiter
    behind a transaction held 10, 30 and 60 ms began 4.2, 7.8 and 10.3 ms (median; up to 21 ms) after the
    lock was released, against 0.2-0.8 ms asking every millisecond at most (docs/reliability.md). Only the
    ``BEGIN IMMEDIATE`` waits: once it holds the lock, no statement of the transaction can be refused
    for it (WAL: readers never block a writer), so the write connections run with ``busy_timeout=0``."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = 0.0001
    while True:
        try:
            dbapi_conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, SQLITE_LOCK_POLL)
