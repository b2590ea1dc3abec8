"""SqlStore.snapshot hands out last round's tenants, programs and throughput matrix (the very objects) while
they are unchanged, so the core's problem cache (core.rounds, keyed on their identity) reuses its arrays on
a live SQL store as on the memory store; any change gives new objects with the new values."""

from __future__ import annotations

from accelpool.core.types import Job, Node, Program, Tenant
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore


def test_unchanged_reference_data_is_the_same_object_and_a_change_is_seen(tmp_path) -> None:
    store = SqlStore(sqlite_url(tmp_path / "s.sqlite"))
    try:
        store.add_nodes([Node("h-0", "h100", 4), Node("r-0", "rngd", 4)])
        store.add_tenant(Tenant("t1"))
        store.add_program(Program("p", "p", 1_000))
        store.submit(Job("a", tenant="t1"), {"h100": 2.0})
        store.submit(Job("b", tenant="t1", submit_time=1.0), {"h100": 1.0, "rngd": 3.0})
        s1, s2 = store.snapshot(10.0, 3.0), store.snapshot(13.0, 3.0)
        assert s2.throughput is s1.throughput and s2.tenants is s1.tenants and s2.programs is s1.programs
        assert s1.throughput.row("b")["rngd"] == 3.0
        store.measure("b", "rngd", 5.0)
        s3 = store.snapshot(16.0, 3.0)
        assert s3.throughput is not s1.throughput and s3.throughput.row("b")["rngd"] == 5.0
        assert s3.tenants is s1.tenants
        store.add_tenant(Tenant("t2", weight=2.0))
        s4 = store.snapshot(19.0, 3.0)
        assert s4.tenants is not s1.tenants and [t.id for t in s4.tenants] == ["t1", "t2"]
        assert s4.throughput is s3.throughput
        store.submit(Job("c", tenant="t2", submit_time=2.0), {"rngd": 1.0})
        s5 = store.snapshot(22.0, 3.0)
        assert s5.throughput is not s4.throughput and s5.throughput.row("c")["rngd"] == 1.0
    finally:
        store.close()
