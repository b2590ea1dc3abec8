"""A small pool with history for the dashboard tests: nodes (one down), two programs, three grants, jobs
in every state (one lost its node and ran twice), charges over the last days, logs, and a job named
``<script>``. ``NOW`` is fixed so times and charts are reproducible."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from accelpool.api.app import Hooks, create_app
from accelpool.core.rounds import Decision, Placement
from accelpool.core.types import Charge, Grant, Node, Program, Tenant
from accelpool.ports import EventKind, ExecutorEvent
from accelpool.storage import tables as T
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore

NOW = 1_790_000_000.0  # 2026-09-21 (a Monday), fixed
HOUR = 3600.0
XSS = "<script>alert(1)</script>"


@dataclass
class World:
    store: SqlStore
    app: Any
    client: TestClient
    tokens: dict[str, str]
    jobs: dict[str, str]
    clock: list[float]
    logs: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str, lang: str = "en") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", "Accept-Language": lang}

    def get(self, path: str, who: str | None = None, lang: str = "en", **kw: Any) -> Any:
        h = self.headers(who, lang) if who else {"Accept-Language": lang}
        return self.client.get(path, headers=h, **kw)


def build_world(tmp_path: Any) -> World:
    s = SqlStore(sqlite_url(tmp_path / "web.sqlite"))
    s.add_nodes(
        [
            Node("h-0", "h100", 8),
            Node("h-1", "h100", 8),
            Node("a-0", "a100", 4),
            Node("r-0", "rngd", 4, zone="busan"),
            Node("t-0", "atom", 4, zone="busan"),
        ]
    )
    s.set_node_down("h-1")
    s.set_prices({"h100": 4000, "a100": 3000, "rngd": 1200, "atom": 1000})
    for t in ("t1", "t2", "t3"):
        s.add_tenant(Tenant(t, t.upper()))
    s.add_program(Program("p1", "Program 1", 10_000_000))
    s.add_program(Program("p2", "Program 2", 20_000_000))
    s.add_grant(Grant("g1", "p1", "t1", 1_000_000, start=NOW - 30 * 86400))
    s.add_grant(Grant("g2", "p2", "t2", 2_000_000, start=NOW - 30 * 86400))
    s.add_grant(Grant("g3", "p2", "t3", 3_000_000, start=NOW - 30 * 86400))
    clock = [NOW - 20 * HOUR]
    logs: dict[str, str] = {}
    app = create_app(s, hooks=Hooks(now=lambda: clock[0], logs=lambda j: logs.get(j, "")))
    client = TestClient(app)
    tokens = {
        "admin": s.create_token("admin", name="root")[1],
        "m1": s.create_token("member", name="alice", tenant="t1")[1],
        "m2": s.create_token("member", name="bob", tenant="t2")[1],
        "pm2": s.create_token("program-manager", name="pm2", program="p2")[1],
    }

    def submit(who: str, name: str, kind: str = "training", **res: Any) -> str:
        body = {
            "name": name,
            "command": "python train.py",
            "kind": kind,
            "resources": res or {"type": "h100", "count": 2},
        }
        r = client.post("/api/v1/jobs", json=body, headers={"Authorization": f"Bearer {tokens[who]}"})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    jobs = {
        "lost": submit("m1", "alice-lost-node"),
        "done": submit("m2", "bob-finished", kind="inference", type="rngd", count=2),
        "running": submit("m1", "alice-running"),
        "queued": submit("m1", "alice-queued", type="h100", count=8),
        "secret": submit("m2", "bob-secret-job"),
        "xss": submit("m2", "xss", kind="inference", type="atom", count=1),
        "cancelled": submit("m1", "alice-cancelled", type="a100", count=1),
    }
    # the API refuses such a name; a row written another way (an older version, a restore) may hold one
    with s.write() as c:
        c.execute(update(T.jobs).where(T.jobs.c.id == jobs["xss"]).values(name=XSS))
    t0 = NOW - 20 * HOUR
    # the 'lost' job: runs on h-0, loses its node, runs again on h-0 and finishes
    s.record_decision(
        Decision(
            now=t0,
            allocation=None,
            start=(  # type: ignore[arg-type]
                Placement(jobs["lost"], "h100", (("h-0", (0, 1)),)),
                Placement(jobs["done"], "rngd", (("r-0", (0, 1)),)),
            ),
        )
    )
    s.record_charges(
        [
            Charge(jobs["lost"], "t1", "g1", "h100", 2 * 4 * HOUR, 32_000, t0, t0 + 4 * HOUR),
            Charge(jobs["done"], "t2", "g2", "rngd", 2 * 6 * HOUR, 14_400, t0, t0 + 6 * HOUR),
        ]
    )
    s.record_events([ExecutorEvent(jobs["lost"], EventKind.LOST, t0 + 4 * HOUR, reason="node h-0 lost")])
    s.record_events([ExecutorEvent(jobs["done"], EventKind.EXITED, t0 + 6 * HOUR, exit_code=0)])
    t1 = t0 + 5 * HOUR
    s.record_decision(
        Decision(
            now=t1,
            allocation=None,
            start=(  # type: ignore[arg-type]
                Placement(jobs["lost"], "h100", (("h-0", (0, 1)),)),
            ),
        )
    )
    s.record_charges([Charge(jobs["lost"], "t1", "g1", "h100", 2 * 3 * HOUR, 24_000, t1, t1 + 3 * HOUR)])
    s.record_events([ExecutorEvent(jobs["lost"], EventKind.EXITED, t1 + 3 * HOUR, exit_code=0)])
    t2 = NOW - 2 * HOUR
    s.record_decision(
        Decision(
            now=t2,
            allocation=None,
            start=(  # type: ignore[arg-type]
                Placement(jobs["running"], "h100", (("h-0", (0, 1)),)),
                Placement(jobs["secret"], "h100", (("h-0", (2, 3)),)),
            ),
        )
    )
    s.record_charges(
        [
            Charge(jobs["running"], "t1", "g1", "h100", 2 * HOUR * 1.5, 12_000, t2, t2 + 1.5 * HOUR),
            Charge(jobs["secret"], "t2", "g2", "h100", 2 * HOUR * 1.5, 12_000, t2, t2 + 1.5 * HOUR),
        ]
    )
    s.cancel(jobs["cancelled"], NOW - HOUR, "cancelled by alice")
    logs[jobs["running"]] = "\n".join(f"step {i} loss {1 / (i + 1):.4f}" for i in range(500))
    logs[jobs["xss"]] = XSS
    clock[0] = NOW
    return World(s, app, client, tokens, jobs, clock, logs)
