"""The stores are equal under concurrency: two cancels, a preemption, executor exits and a round's metering sent
at once from five threads to SQLite or PostgreSQL leave exactly the states, histories, charges and grant balance
that MemoryStore gives for one of the 120 orders of the same five writes (each write is atomic and decides on
what the others left: serialisable), never a mix, a double charge or a grant below zero.

Each trial runs on its own jobs and grant in one database; the threads start together at a barrier. The orders
give 32 distinct serial outcomes; six trials typically end in 4 to 6 different ones of them (seen on SQLite and
PostgreSQL at the commit that added this test), so the writes really interleave."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

from sqlalchemy import select

from accelpool.core import ledger
from accelpool.core.rounds import Decision, Placement
from accelpool.core.types import Grant, Job, Node, Program, Tenant
from accelpool.ports import EventKind, ExecutorEvent
from accelpool.storage import tables as T
from accelpool.storage.memory import MemoryStore
from accelpool.storage.sql import SqlStore

PRICE = {"h100": 1000}  # KRW per device-hour: slices are fractions of a KRW, carried
JOBS = "abcd"
TRIALS = 6


def setup_pool(store) -> None:
    store.add_nodes([Node("h", "h100", 8 * TRIALS)])
    store.set_prices(PRICE)
    store.add_tenant(Tenant("t"))
    store.add_program(Program("p", "p", 10**9))


def setup_trial(store, k: int) -> None:
    """Trial ``k``: four jobs running since 7.5 on 2 devices each, one small grant (the cap bites)."""
    store.add_grant(Grant(f"g{k}", "p", "t", 300))
    for j in JOBS:
        store.submit(Job(f"{j}{k}", tenant="t", grant=f"g{k}", scale=2), {"h100": 1.0})
    start = tuple(
        Placement(f"{j}{k}", "h100", (("h", (8 * k + 2 * i, 8 * k + 2 * i + 1)),)) for i, j in enumerate(JOBS)
    )
    store.record_decision(Decision(now=0.0, allocation=None, start=start))  # type: ignore[arg-type]
    store.record_events([ExecutorEvent(f"{j}{k}", EventKind.STARTED, 7.5) for j in JOBS])


def writes(store, k: int) -> list[Callable[[], object]]:
    """The five writes of trial ``k``; the metering slices are computed before any of them (a round's)."""
    slices = [
        ledger.meter(s, 100.0, PRICE["h100"], final=False)
        for s in store.running()
        if s.job.id.endswith(str(k))
    ]
    a, b, c, d = (f"{j}{k}" for j in JOBS)
    ev = ExecutorEvent
    return [
        lambda: store.cancel(a, 120.0, "cancelled by test"),
        lambda: store.cancel(b, 121.0, "cancelled by test"),
        lambda: store.record_decision(
            Decision(now=110.0, allocation=None, preempt=((a, "priority"), (c, "priority")))  # type: ignore[arg-type]
        ),
        lambda: store.record_events(
            [
                ev(a, EventKind.EXITED, 130.0, exit_code=0),
                ev(b, EventKind.EXITED, 125.0, exit_code=3),
                ev(c, EventKind.EXITED, 115.0, exit_code=0),
                ev(d, EventKind.LOST, 105.0, reason="node-lost"),
            ]
        ),
        lambda: store.record_charges([s for s in slices if s is not None]),
    ]


def outcome(store, k: int) -> tuple:
    """States, reasons, histories and steps of the trial's jobs, its charges and its grant's KRW left."""
    jobs = []
    for j in JOBS:
        jid = f"{j}{k}"
        if isinstance(store, MemoryStore):
            rec = store.jobs[jid]
            jobs.append((str(rec.status.state), rec.reason, tuple((t, str(s), r) for t, s, r in rec.events)))
        else:
            v = store.get_job(jid)
            jobs.append(
                (
                    str(v.state),
                    v.reason,
                    tuple((e.time, str(e.state), e.reason) for e in store.job_events(jid)),
                )
            )
    if isinstance(store, MemoryStore):
        rows = [c for c in store.charges if c.grant == f"g{k}"]
    else:
        with store.read() as c:
            rows = list(c.execute(select(T.charges).where(T.charges.c.grant == f"g{k}")))
    charges = sorted(
        (c.job, int(c.amount_krw), round(float(c.device_seconds), 6), float(c.start), float(c.end))
        for c in rows
    )
    return tuple(jobs), tuple(charges), store.grant_balances()[f"g{k}"]


def serial_outcomes() -> set[tuple]:
    """What MemoryStore ends with after the five writes in each of their 120 orders."""
    out = set()
    for order in itertools.permutations(range(5)):
        m = MemoryStore()
        setup_pool(m)
        setup_trial(m, 0)
        ws = writes(m, 0)
        for i in order:
            ws[i]()
        out.add(outcome(m, 0))
    return out


def _renamed(o: tuple, k: int) -> tuple:
    """Trial ``k``'s outcome with its job ids as trial 0's (to compare with ``serial_outcomes``)."""
    jobs, charges, left = o
    return jobs, tuple((c[0][:-1] + "0", *c[1:]) for c in charges), left


def test_concurrent_cancel_preemption_exit_and_metering_end_as_some_serial_order(sql_url):
    sql = SqlStore(sql_url)
    try:
        allowed = serial_outcomes()
        assert len(allowed) > 1  # the order matters: the test can tell a wrong interleaving
        setup_pool(sql)
        for k in range(TRIALS):
            setup_trial(sql, k)
        seen = set()
        for k in range(TRIALS):
            ws = writes(sql, k)
            gate = threading.Barrier(len(ws))
            errors: list[BaseException] = []

            def run(w: Callable[[], object], gate: threading.Barrier = gate, errors: list = errors) -> None:
                gate.wait()
                try:
                    w()
                except BaseException as e:  # noqa: BLE001 - reported by the assertion below
                    errors.append(e)

            threads = [threading.Thread(target=run, args=(w,)) for w in ws]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert not errors, errors
            got = _renamed(outcome(sql, k), k)
            assert got in allowed, f"trial {k}: no serial order of the five writes ends like this: {got}"
            assert got[2] >= 0
            seen.add(got)
    finally:
        sql.close()
