from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from accelpool.api.app import Hooks, create_app
from accelpool.core.types import Grant, Node, Program, ProgramRules, Tenant
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore


class World:
    def __init__(self, tmp_path):
        self.store = SqlStore(sqlite_url(tmp_path / "api.sqlite"))
        s = self.store
        s.add_nodes(
            [
                Node("h-0", "h100", 8),
                Node("h-1", "h100", 8),
                Node("r-0", "rngd", 8),
                Node("w-0", "warboy", 4, zone="busan"),
            ]
        )
        s.set_prices({"h100": 4000, "rngd": 1200, "warboy": 500})
        for t in ("t1", "t2", "t3"):
            s.add_tenant(Tenant(t, t.upper()))
        s.add_program(
            Program(
                "p1",
                "Program 1",
                10_000_000,
                rules=ProgramRules(tenant_caps={"rngd": 4}, max_contract_seconds=86400),
            )
        )
        s.add_program(Program("p2", "Program 2", 10_000_000))
        s.add_grant(Grant("g1", "p1", "t1", 1_000_000))
        s.add_grant(Grant("g2", "p2", "t2", 1_000_000))
        self.stopped: list[str] = []
        self.clock = [1000.0]
        hooks = Hooks(stop_job=self.stopped.append, logs=lambda j: f"logs of {j}", now=lambda: self.clock[0])
        self.app = create_app(s, hooks=hooks)
        self.client = TestClient(self.app)
        self.tokens = {
            "admin": s.create_token("admin", name="root")[1],
            "m1": s.create_token("member", name="alice", tenant="t1")[1],
            "m2": s.create_token("member", name="bob", tenant="t2")[1],
            "pm1": s.create_token("program-manager", name="pm1", program="p1")[1],
            "pm2": s.create_token("program-manager", name="pm2", program="p2")[1],
        }

    def h(self, who):
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def call(self, who, method, path, **kw):
        return self.client.request(method, path, headers={**self.h(who), **kw.pop("headers", {})}, **kw)

    def start(self, jid, node="h-0", type_="h100"):
        """Place the queued job ``jid`` as a scheduling round would (it is then running)."""
        from accelpool.core.rounds import Decision, Placement

        self.store.record_decision(
            Decision(now=self.clock[0], allocation=None, start=(Placement(jid, type_, ((node, (0,)),)),))
        )

    def submit(self, who="m1", **spec):
        body = {"name": "job", "command": "echo hi", "resources": {"type": "h100", "count": 1}, **spec}
        return self.call(who, "POST", "/api/v1/jobs", json=body)


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.store.close()
