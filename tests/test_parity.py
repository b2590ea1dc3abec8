"""Parity: one small trace through the reconciler on MemoryStore (the simulator's store) and on SqlStore
(the live service's store), both with FakeExecutor and a virtual clock: identical decisions, round by round."""

from __future__ import annotations

from accelpool.core.types import Grant, Job, Node, Program, Tenant
from accelpool.executors.fake import FakeExecutor
from accelpool.runtime.clock import VirtualClock
from accelpool.runtime.reconciler import Reconciler
from accelpool.service.server import get_policy
from accelpool.storage.engine import sqlite_url
from accelpool.storage.memory import MemoryStore
from accelpool.storage.sql import SqlStore

TRACE = [  # (submit time s, job, throughput by type)
    (0.0, Job("a", tenant="t1", scale=4, total_steps=4000.0, grant="g1"), {"h100": 4.0, "rngd": 1.5}),
    (0.0, Job("b", tenant="t2", scale=8, total_steps=3000.0, grant="g2"), {"h100": 3.0, "rngd": 2.0}),
    (50.0, Job("c", tenant="t1", scale=2, total_steps=500.0, grant="g1", submit_time=50.0), {"rngd": 1.0}),
    (120.0, Job("d", tenant="t2", scale=6, total_steps=9000.0, grant="g2", submit_time=120.0), {"h100": 5.0}),
    (300.0, Job("e", tenant="t1", scale=1, total_steps=100.0, grant="g1", submit_time=300.0),
     {"h100": 1.0, "rngd": 1.0}),
]


def replay(store) -> list[tuple]:
    store.add_nodes([Node("h-0", "h100", 8), Node("h-1", "h100", 4), Node("r-0", "rngd", 8)])
    store.set_prices({"h100": 4000, "rngd": 1500})
    store.add_tenant(Tenant("t1"))
    store.add_tenant(Tenant("t2"))
    store.add_program(Program("p", "p", 10**9))
    store.add_grant(Grant("g1", "p", "t1", 200_000))
    store.add_grant(Grant("g2", "p", "t2", 60_000))
    clock = VirtualClock()
    rec = Reconciler(store, FakeExecutor(clock), clock, get_policy("max-min-fairness"), round_seconds=60.0)
    out, pending = [], list(TRACE)
    for _ in range(40):
        while pending and pending[0][0] <= clock.now():
            _, job, tput = pending.pop(0)
            store.submit(job, tput)
        r = rec.step()
        d = r.decision
        out.append((d.now, sorted((p.job, p.accelerator, p.devices) for p in d.start),
                    sorted((p.job, p.devices) for p in d.keep), sorted(d.preempt),
                    sorted((j, str(getattr(w, "value", w))) for j, w in d.waiting.items()), sorted(d.positions.items()),
                    sorted((c.job, c.amount_krw, round(c.device_seconds, 6)) for c in r.charges)))
        clock.sleep_until(clock.now() + 60.0)
    return out


def test_memory_and_sql_reconcilers_decide_identically(tmp_path):
    sim = replay(MemoryStore())
    sql = SqlStore(sqlite_url(tmp_path / "parity.sqlite"))
    live = replay(sql)
    assert sim == live
    assert any(round_[1] for round_ in sim)  # something started
    assert dict(sql.grant_balances()) == {"g1": sim_balance(), "g2": sim_balance("g2")}
    sql.close()


def sim_balance(g="g1"):
    m = MemoryStore()
    replay(m)
    return m.grants[g].remaining_krw
