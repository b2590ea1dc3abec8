"""Money under concurrency on PostgreSQL: one lock order (grant rows, then job rows) for every write that moves
money, and decisions taken on the locked rows.

- 128 cancels at once while the reconciler's metering books slices for the same jobs: no deadlock, every job
  billed exactly its running time once (repeated, bounded in time);
- a cancel racing a preemption decides on the row the preemption left: it never bills time the job spent
  queued.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from accelpool.core import ledger
from accelpool.core.lifecycle import Command, SchedulerEvent
from accelpool.core.rounds import Decision, Placement
from accelpool.core.types import Grant, Job, JobState, Node, Program, Tenant
from accelpool.ports import EventKind, ExecutorEvent
from accelpool.storage.sql import SqlStore

pytestmark = pytest.mark.postgres

N = 128
PRICE = 3600  # 1 KRW per device-second: every amount below is a whole number of KRW


@pytest.fixture
def store(database_url):
    s = SqlStore(database_url("postgres"))
    yield s
    s.close()


def _running(store: SqlStore, n: int, grants: int = 4) -> None:
    store.add_nodes([Node(f"n{k}", "h100", 8) for k in range(n // 8 + 1)])
    store.set_prices({"h100": PRICE})
    store.add_tenant(Tenant("t"))
    store.add_program(Program("p", "p", 10**12))
    for g in range(grants):
        store.add_grant(Grant(f"g{g}", "p", "t", 10**9))
    jobs = [Job(f"j{i:03d}", tenant="t", grant=f"g{i % grants}") for i in range(n)]
    for j in jobs:
        store.submit(j, {"h100": 1.0})
    start = tuple(Placement(j.id, "h100", ((f"n{i // 8}", (i % 8,)),)) for i, j in enumerate(jobs))
    store.record_decision(Decision(now=0.0, allocation=None, start=start))  # type: ignore[arg-type]
    store.record_events([ExecutorEvent(j.id, EventKind.STARTED, 0.0) for j in jobs])


def _charged(store: SqlStore) -> dict[str, int]:
    ids = [v.id for v in store.list_jobs(limit=1000)[0]]
    return {i: int(store.get_job(i).charged_krw or 0) for i in ids}


@pytest.mark.parametrize("attempt", range(3))
def test_128_cancels_while_the_reconciler_meters_never_deadlock(store, attempt):
    _running(store, N)
    cancel_at = 1000.0
    stop = threading.Event()
    errors: list[BaseException] = []

    def meter() -> None:  # what Reconciler._meter_running + record_charges do, round after round
        t = 100.0
        while not stop.is_set() and t < cancel_at:
            try:
                prices = store.prices()
                slices = [ledger.meter(s, t, prices["h100"], final=False) for s in store.running()]
                store.record_charges([c for c in slices if c is not None])
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)
                return
            t += 100.0

    metering = threading.Thread(target=meter)
    t0 = time.monotonic()
    metering.start()
    with ThreadPoolExecutor(max_workers=N) as pool:
        results = list(pool.map(lambda i: store.cancel(f"j{i:03d}", cancel_at), range(N)))
    stop.set()
    metering.join(60)
    assert not metering.is_alive() and errors == []
    assert all(results)  # each cancel found its job running
    assert time.monotonic() - t0 < 60
    assert store.counts().get("cancelled") == N
    charged = _charged(store)
    assert charged == {f"j{i:03d}": int(cancel_at) for i in range(N)}  # its running time, once
    assert sum(g.spent_krw for g in store.list_grants()) == N * int(cancel_at)


def test_a_cancel_racing_a_preemption_bills_no_queued_time(store):
    _running(store, 1, grants=1)
    store.record_charges([ledger.meter(store.running()[0], 100.0, PRICE, final=False)])
    done: list[bool] = []
    with store.write() as c:  # the round's transaction: preempt at 100 s, not yet committed
        store._apply_events(c, [SchedulerEvent("j000", Command.PREEMPT, 100.0, "priority")])
        cancel = threading.Thread(target=lambda: done.append(store.cancel("j000", 150.0)))
        cancel.start()
        time.sleep(0.5)
        assert cancel.is_alive()  # it waits for the job's row lock
    cancel.join(30)
    assert done == [False]  # it found the job queued: no process to stop
    assert store.get_job("j000").state is JobState.CANCELLED
    assert _charged(store) == {"j000": 100}  # 0..100 s running; 100..150 s queued costs nothing
