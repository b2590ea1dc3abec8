"""Engines: SQLite (WAL, busy timeout, write transactions that take the lock up front) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

SQLITE_BUSY_TIMEOUT_MS = 10_000

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
        cur.close()

    @event.listens_for(eng, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return eng
