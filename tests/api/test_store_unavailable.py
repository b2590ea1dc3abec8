"""A review made the database refuse writes (its disk full, the file immutable) under a running service:
``POST /jobs`` answered 500. Nothing was stored and no job was lost, but a 500 does not tell a client to
send it again: the API answers 503 with Retry-After, and once the database takes writes the same request
is accepted."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import event


def test_a_database_that_refuses_writes_is_a_503_to_retry(world):
    engine = world.store.engine
    refuse = [True]

    def read_only(conn, _record):  # SQLite's own refusal ("attempt to write a readonly database")
        conn.execute(f"PRAGMA query_only = {1 if refuse[0] else 0}")

    event.listen(engine, "connect", read_only)
    engine.dispose()  # every connection from now on is a new one
    client = TestClient(world.app, raise_server_exceptions=False)
    body = {"name": "retry-me", "command": "echo hi", "resources": {"type": "h100", "count": 1}}
    r = client.post("/api/v1/jobs", json=body, headers=world.h("m1"))
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "5" and "try again" in r.json()["error"]["reason"]
    assert "readonly" not in r.text  # the database's own words stay in the service's log
    assert client.get("/api/v1/jobs", headers=world.h("m1")).json()["items"] == []  # nothing stored
    refuse[0] = False
    engine.dispose()
    r = client.post("/api/v1/jobs", json=body, headers=world.h("m1"))
    assert r.status_code == 201, r.text
    assert [j["name"] for j in client.get("/api/v1/jobs", headers=world.h("m1")).json()["items"]] == [
        "retry-me"
    ]


def test_a_schema_or_sql_mistake_stays_a_500(world):
    """SQLite raises the same error class for "no such column": not something a client's retry cures."""
    with world.store.engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE jobs RENAME COLUMN name TO name_x")
    client = TestClient(world.app, raise_server_exceptions=False)
    r = client.get("/api/v1/jobs", headers=world.h("m1"))
    assert r.status_code == 500 and "retry-after" not in r.headers, r.text
    assert "name_x" not in r.text and "no such column" not in r.text
