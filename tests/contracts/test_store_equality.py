"""The stores are equal: one scripted sequence of decisions, executor events, metering slices and cancels,
including a cancel racing a round's metering, a preemption and its stale exit, an exit and a lost node, gives
identical job states, histories and charges on MemoryStore, SQLite and PostgreSQL."""

from __future__ import annotations

from accelpool.core import ledger
from accelpool.core.rounds import Decision, Placement
from accelpool.core.types import Grant, Job, Node, Program, Tenant
from accelpool.ports import EventKind, ExecutorEvent, StopCause
from accelpool.storage.memory import MemoryStore

PRICE = {"h100": 1000, "rngd": 700}  # KRW per device-hour: slices are fractions of a KRW, carried


def _place(job: str, acc: str, node: str, devices: tuple[int, ...]) -> Placement:
    return Placement(job, acc, ((node, devices),))


def script(store) -> dict:
    store.add_nodes([Node("h", "h100", 8), Node("r", "rngd", 8)])
    store.set_prices(PRICE)
    store.add_tenant(Tenant("t"))
    store.add_program(Program("p", "p", 10**9))
    store.add_grant(Grant("g", "p", "t", 230))  # small: the cap bites in the second round
    for j in "abcd":
        store.submit(Job(j, tenant="t", grant="g", scale=2), {"h100": 1.0, "rngd": 1.0})
    ev = ExecutorEvent
    store.record_decision(
        Decision(
            now=0.0,
            allocation=None,
            start=tuple(  # type: ignore[arg-type]
                _place(
                    j, "h100" if j < "c" else "rngd", "h" if j < "c" else "r", (0, 1) if j in "ac" else (2, 3)
                )
                for j in "abcd"
            ),
        )
    )
    store.record_events([ev(j, EventKind.STARTED, 7.5) for j in "abcd"])
    out: list = []

    def meter(t: float) -> None:
        slices = [ledger.meter(s, t, PRICE[s.placement.accelerator], final=False) for s in store.running()]
        out.append(store.record_charges([c for c in slices if c is not None]))

    meter(100.0)
    stale = [ledger.meter(s, 200.0, PRICE[s.placement.accelerator], final=False) for s in store.running()]
    store.cancel("a", 150.0, "cancelled by test")  # races the round that computed ``stale``
    out.append(store.record_charges([c for c in stale if c is not None]))
    out.append(store.record_decision(Decision(now=200.0, allocation=None, preempt=(("b", "priority"),))))  # type: ignore[arg-type]
    out.append(
        store.record_events(
            [
                ev(
                    "b",
                    EventKind.EXITED,
                    201.0,
                    exit_code=-15,
                    reason="stopped: priority",
                    cause=StopCause.REQUESTED,
                ),
                ev("c", EventKind.PROGRESS, 230.0, steps=40.0),
                ev("c", EventKind.EXITED, 250.0, exit_code=0),
                ev("d", EventKind.LOST, 260.0, reason="node-lost", cause=StopCause.NODE_LOST),
            ]
        )
    )
    out.append(store.cancel("d", 270.0))
    charges = [
        sorted((c.job, c.amount_krw, round(c.device_seconds, 6), c.start, c.end) for c in r)
        if isinstance(r, list)
        else r
        for r in out
    ]
    jobs = {}
    for j in "abcd":
        if isinstance(store, MemoryStore):
            rec = store.jobs[j]
            jobs[j] = (
                str(rec.status.state),
                rec.reason,
                [(t, str(s), r) for t, s, r in rec.events],
                rec.status.steps_done,
                rec.preemptions,
            )
        else:
            v = store.get_job(j)
            jobs[j] = (
                str(v.state),
                v.reason,
                [(e.time, e.state, e.reason) for e in store.job_events(j)],
                v.steps_done,
                v.preemptions,
            )
    return {"charges": charges, "jobs": jobs, "left": dict(store.grant_balances())}


def test_memory_and_sql_stores_end_identical(sql_store):
    expect = script(MemoryStore())
    assert script(sql_store) == expect
    assert expect["left"]["g"] >= 0
    assert any(expect["charges"])
