"""One contract suite for the SchedulerStore port: MemoryStore, SqlStore on SQLite, SqlStore on PostgreSQL.

Each test drives the store through the port (and the set-up calls both stores share) with the real
Reconciler, a FakeExecutor and a VirtualClock, and asserts on what the store then says.
"""

from __future__ import annotations

import threading
from fractions import Fraction

import pytest
from tests.helpers import SQL_BACKENDS, greedy_fastest

from accelpool.core.errors import AlreadyExists
from accelpool.core.round_config import RoundConfig
from accelpool.core.rounds import Decision, Placement
from accelpool.core.types import (
    Charge,
    Grant,
    Job,
    JobState,
    Node,
    Program,
    ProgramRules,
    Site,
    Tenant,
    WaitReason,
)
from accelpool.executors.fake import FakeExecutor
from accelpool.ports import EventKind, ExecutorEvent, RunSpec, StopCause
from accelpool.runtime.clock import VirtualClock
from accelpool.runtime.reconciler import Reconciler
from accelpool.storage.memory import MemoryStore
from accelpool.storage.sql import SqlStore


@pytest.fixture(params=["memory", *SQL_BACKENDS])
def store(request, database_url):
    if request.param == "memory":
        yield MemoryStore()
        return
    s = SqlStore(database_url(request.param))
    yield s
    s.close()


def view(store, job_id):
    """(state, reason, position, [(time, state, reason)], steps_done) whatever the store."""
    if isinstance(store, MemoryStore):
        r = store.jobs[job_id]
        return r.status.state, r.reason, r.position, list(r.events), r.status.steps_done
    v = store.get_job(job_id)
    return (
        v.state,
        v.reason,
        v.position,
        [(e.time, e.state, e.reason) for e in store.job_events(job_id)],
        v.steps_done,
    )


def grant_spent(store, gid):
    if isinstance(store, MemoryStore):
        return store.grants[gid].spent_krw
    return {g.id: g for g in store.list_grants()}[gid].spent_krw


def pool(store):
    store.add_nodes([Node("h-0", "h100", 4), Node("h-1", "h100", 4), Node("r-0", "rngd", 8)])


def rec_for(store, clock, round_seconds=100.0):
    config = RoundConfig(lease_seconds=round_seconds)  # every round a lease boundary
    return Reconciler(
        store, FakeExecutor(clock), clock, greedy_fastest, round_seconds=round_seconds, config=config
    )


def test_submitted_job_is_queued_with_event(store):
    store.submit(Job("a", scale=2, total_steps=10.0, submit_time=5.0), {"h100": 1.0}, RunSpec(command="echo"))
    state, reason, _, events, _ = view(store, "a")
    assert state == JobState.QUEUED and events == [(5.0, "queued", "submitted")]
    assert store.run_spec("a").command == "echo"
    assert store.running() == []


def test_run_specs_reads_several_jobs_and_leaves_out_unknown_ones(store):
    store.submit(Job("a", submit_time=1.0), {"h100": 1.0}, RunSpec(command="echo a"))
    store.submit(Job("b", submit_time=2.0), {"h100": 1.0}, RunSpec(command="echo b", env={"X": "1"}))
    specs = store.run_specs(["b", "a", "missing", "a"])
    assert set(specs) == {"a", "b"}
    assert specs["a"] == store.run_spec("a") and specs["b"] == store.run_spec("b")
    assert specs["b"].env == {"X": "1"}


def test_snapshot_excludes_down_nodes_and_terminal_jobs(store):
    pool(store)
    store.set_node_down("h-1")
    store.submit(Job("a"), {"h100": 1.0})
    store.submit(Job("b"), {"h100": 1.0})
    store.cancel("b", 1.0)
    snap = store.snapshot(10.0, 60.0)
    assert [n.name for n in snap.nodes] == ["h-0", "r-0"]
    assert [s.job.id for s in snap.jobs] == ["a"]
    assert snap.throughput.types == ("h100", "rngd") and snap.round_seconds == 60.0
    assert view(store, "b")[0] == JobState.CANCELLED


def test_round_trip_of_domain_values(store):
    pool(store)
    store.add_tenant(Tenant("t1", "T One", weight=2.0, quota={"h100": 4}, public=True))
    rules = ProgramRules(
        public_share={"*": 0.3},
        public_services_domestic_only=True,
        tenant_caps={"h100": 2},
        max_contract_seconds=86400.0,
    )
    store.add_program(Program("p", "Prog", budget_krw=10**12, start=1.0, end=2.0, rules=rules))
    store.add_grant(Grant("g", "p", "t1", amount_krw=5_000_000_000))
    store.set_prices({"h100": 4000, "rngd": 1200})
    job = Job(
        "j",
        tenant="t1",
        scale=2,
        allowed=frozenset({"h100", "rngd"}),
        domestic_only=True,
        min_memory_gb=40.0,
        zone="z",
        priority=3,
        grant="g",
        public=True,
        total_steps=5.0,
        submit_time=2.0,
    )
    store.submit(job, {"h100": 2.0})
    snap = store.snapshot(3.0, 10.0)
    assert snap.jobs[0].job == job
    assert snap.tenants == (Tenant("t1", "T One", weight=2.0, quota={"h100": 4}, public=True),)
    assert snap.programs[0].rules == rules and snap.programs[0].budget_krw == 10**12
    assert snap.grants == (Grant("g", "p", "t1", amount_krw=5_000_000_000),)
    assert dict(snap.prices_krw_per_hour) == {"h100": 4000, "rngd": 1200} == dict(store.prices())
    assert dict(store.grant_balances()) == {"g": 5_000_000_000}


def test_job_runs_and_succeeds_at_exact_time(store):
    pool(store)
    clock = VirtualClock()
    store.submit(Job("a", scale=2, total_steps=1000.0), {"h100": 4.0, "rngd": 1.0})
    rec_for(store, clock).run(rounds=4)
    state, reason, _, events, steps = view(store, "a")
    assert state == JobState.SUCCEEDED and reason == "exited 0" and steps == 1000.0
    assert [s for _, s, _ in events] == ["queued", "running", "succeeded"]
    assert events[-1][0] == 250.0


def test_waiting_jobs_have_reason_and_position(store):
    pool(store)
    clock = VirtualClock()
    for i, name in enumerate("abc"):
        store.submit(Job(name, scale=8, total_steps=1e6, submit_time=float(i)), {"h100": 1.0})
    report = rec_for(store, clock).step()
    assert [p.job for p in report.decision.start] == ["a"]
    assert view(store, "b")[1:3] == ("capacity: needs 8 x h100; every one is in use", 1)
    assert view(store, "c")[1:3] == ("capacity: needs 8 x h100; every one is in use", 2)
    assert [s.job.id for s in store.running()] == ["a"]
    assert store.running()[0].placement.count == 8


def test_grant_charged_never_overspent_and_held_for_budget(store):
    pool(store)
    clock = VirtualClock()
    store.set_prices({"h100": 1000})
    store.add_program(Program("p", "program", budget_krw=10_000))
    store.add_grant(Grant("g", "p", "t1", amount_krw=2500))
    store.submit(Job("a", tenant="t1", grant="g", total_steps=1e9), {"h100": 1.0})
    rec_for(store, clock, 3600.0).run(rounds=5)
    assert grant_spent(store, "g") == 2000
    assert view(store, "a")[1] == (
        "blocked (budget): needs 1 x h100; grant g has 500 KRW left and a lease (60 min) costs 1000 KRW"
    )
    assert view(store, "a")[2] is None  # blocked: no queue position


def test_charges_are_capped_at_the_grant(store):
    pool(store)
    store.add_program(Program("p", "program", budget_krw=10_000))
    store.add_grant(Grant("g", "p", "t1", amount_krw=100))
    store.submit(Job("a", tenant="t1", grant="g"), {"h100": 1.0})
    store.record_charges([Charge("a", "t1", "g", "h100", 3600.0, 80, 0.0, 10.0)])
    store.record_charges([Charge("a", "t1", "g", "h100", 3600.0, 80, 10.0, 20.0)])
    assert grant_spent(store, "g") == 100 and store.grant_balances()["g"] == 0


def test_preemption_requeues_with_events(store):
    pool(store)
    clock = VirtualClock()
    store.submit(Job("a", total_steps=1e6), {"h100": 1.0})
    rec = rec_for(store, clock)
    rec.step()
    placement = store.running()[0].placement
    store.record_decision(Decision(now=7.0, allocation=None, preempt=(("a", "priority"),)))  # type: ignore[arg-type]
    state, reason, _, events, _ = view(store, "a")
    assert state == JobState.QUEUED and "preemption" in reason
    assert [s for _, s, _ in events][-2:] == ["preempted", "queued"]
    assert store.running() == [] and placement is not None


def test_lost_job_is_requeued_with_progress_kept(store):
    pool(store)
    clock = VirtualClock()
    store.submit(Job("a", total_steps=1000.0), {"h100": 1.0})
    rec = rec_for(store, clock)
    rec.step()
    clock.advance(50)
    rec.executor.lose("a")
    rec.step()
    _, _, _, events, steps = view(store, "a")
    assert [s for _, s, _ in events] == ["queued", "running", "preempted", "queued", "running"]
    assert steps == 50.0


def test_failed_exit_and_stop_exit(store):
    pool(store)
    store.submit(Job("a"), {"h100": 1.0})
    store.submit(Job("b"), {"h100": 1.0})
    rec_for(store, VirtualClock()).step()
    store.record_events(
        [
            ExecutorEvent("a", EventKind.EXITED, 5.0, exit_code=3, reason="exit code 3"),
            ExecutorEvent(
                "b",
                EventKind.EXITED,
                5.0,
                exit_code=-15,
                reason="stopped: priority",
                cause=StopCause.REQUESTED,
            ),
            ExecutorEvent("zzz", EventKind.EXITED, 5.0, exit_code=0),
        ]
    )
    assert view(store, "a")[0:2] == (JobState.FAILED, "exit code 3")
    assert view(store, "b")[0] == JobState.RUNNING


def test_recover_requeues_jobs_the_executor_forgot(store):
    pool(store)
    clock = VirtualClock()
    store.submit(Job("a", total_steps=1e6), {"h100": 1.0})
    rec_for(store, clock).step()
    clock.advance(10)
    assert rec_for(store, clock).recover() == ["a"]
    assert view(store, "a")[0] == JobState.QUEUED


def test_measured_throughput_replaces_estimate(store):
    pool(store)
    store.submit(Job("a"), {"h100": 1.0})
    store.measure("a", "rngd", 7.5)
    m = store.snapshot(0.0, 10.0).throughput
    assert m.values[0, m.types.index("rngd")] == 7.5 and m.values[0, m.types.index("h100")] == 1.0


def test_duplicate_job_id_is_refused(store):
    store.submit(Job("a"), {"h100": 1.0})
    with pytest.raises(AlreadyExists):
        store.submit(Job("a"), {"h100": 1.0})


def test_concurrent_charges_never_overspend(store):
    pool(store)
    store.add_program(Program("p", "program", budget_krw=10**6))
    store.add_grant(Grant("g", "p", "t", amount_krw=1000))
    for i in range(8):
        store.submit(Job(f"j{i}", tenant="t", grant="g"), {"h100": 1.0})
    lock = threading.Lock() if isinstance(store, MemoryStore) else None

    def charge(i):
        for k in range(10):
            c = [Charge(f"j{i}", "t", "g", "h100", 1.0, 17, float(k), float(k + 1))]
            if lock is None:
                store.record_charges(c)
            else:
                with lock:
                    store.record_charges(c)

    threads = [threading.Thread(target=charge, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert grant_spent(store, "g") == 1000
    assert store.grant_balances()["g"] == 0


def test_waiting_reason_enum_and_positions_cleared_when_started(store):
    pool(store)
    store.submit(Job("a"), {"h100": 1.0})
    d = Decision(now=1.0, allocation=None, waiting={"a": WaitReason.QUOTA}, positions={"a": 1})  # type: ignore[arg-type]
    store.record_decision(d)
    assert view(store, "a")[1:3] == ("quota", 1)
    d2 = Decision(now=2.0, allocation=None, start=(Placement("a", "h100", (("h-0", (0,)),)),))  # type: ignore[arg-type]
    store.record_decision(d2)
    state, reason, pos, _, _ = view(store, "a")
    assert (
        state == JobState.RUNNING and reason == "placed on 1 x h100"
    )  # (MemoryStore keeps a stale position)
    assert store.running()[0].metered_until is None  # billed only once its process has started
    store.record_events([ExecutorEvent("a", EventKind.STARTED, 2.5)])
    assert store.running()[0].metered_until == 2.5


def _job_charged(store, job_id):
    if isinstance(store, MemoryStore):
        return sum(c.amount_krw for c in store.charges if c.job == job_id)
    return store.get_job(job_id).charged_krw


def test_cancel_of_a_running_job_charges_up_to_the_cancel_once(store):
    store.add_nodes([Node("n0", "h100", 8)])
    store.add_tenant(Tenant("t1"))
    store.add_program(Program("p", "p", 10_000))
    store.add_grant(Grant("g", "p", "t1", 1_000))
    store.set_prices({"h100": 3600})  # 1 KRW per device-second
    store.submit(Job("r", tenant="t1", grant="g", scale=2, submit_time=0.0), {"h100": 1.0})
    store.submit(Job("q", tenant="t1", grant="g", scale=1, submit_time=0.0), {"h100": 1.0})
    start = (Placement("r", "h100", (("n0", (0, 1)),)),)
    store.record_decision(Decision(now=100.0, allocation=None, start=start))
    store.record_events([ExecutorEvent("r", EventKind.STARTED, 100.0)])
    assert store.cancel("r", 130.5, "cancelled by test") is True
    assert store.cancel("q", 131.0) is False  # queued: nothing to stop, nothing to charge
    assert _job_charged(store, "r") == 61 == grant_spent(store, "g")  # 2 devices x 30.5 s, half up
    # a round that metered the same interval before it saw the cancel books nothing twice
    store.record_charges([Charge("r", "t1", "g", "h100", 61.0, 61, 100.0, 130.5)])
    assert _job_charged(store, "r") == 61 == grant_spent(store, "g")


def test_cancel_charge_never_takes_a_grant_below_zero(store):
    store.add_nodes([Node("n0", "h100", 8)])
    store.add_tenant(Tenant("t1"))
    store.add_program(Program("p", "p", 10_000))
    store.add_grant(Grant("g", "p", "t1", 1_000))
    store.set_prices({"h100": 3600 * 100})
    store.submit(Job("r", tenant="t1", grant="g", scale=1, submit_time=0.0), {"h100": 1.0})
    start = (Placement("r", "h100", (("n0", (0,)),)),)
    store.record_decision(Decision(now=0.0, allocation=None, start=start))
    store.record_events([ExecutorEvent("r", EventKind.STARTED, 0.0)])
    store.cancel("r", 1000.0)
    assert grant_spent(store, "g") == 1_000


def _started_pool(store, price=3600):
    store.add_nodes([Node("n0", "h100", 8)])
    store.add_tenant(Tenant("t1"))
    store.add_program(Program("p", "p", 10**9))
    store.add_grant(Grant("g", "p", "t1", 10**6))
    store.set_prices({"h100": price})
    store.submit(Job("r", tenant="t1", grant="g", scale=1, submit_time=0.0), {"h100": 1.0})
    store.record_decision(
        Decision(now=10.0, allocation=None, start=(Placement("r", "h100", (("n0", (0,)),)),))
    )


def test_billing_starts_when_the_process_starts_not_at_the_decision(store):
    """Placed at 10 s, process up at 70 s (a slow start, a pending placement group), exits at 100 s: billed
    30 device-seconds, not 90."""
    _started_pool(store)
    assert store.running()[0].metered_until is None  # not on the meter before its process starts
    store.record_events([ExecutorEvent("r", EventKind.STARTED, 70.0)])
    store.record_events([ExecutorEvent("r", EventKind.EXITED, 100.0, exit_code=0)])
    assert _job_charged(store, "r") == 30 == grant_spent(store, "g")


def test_a_job_that_never_started_costs_nothing(store):
    _started_pool(store)
    store.record_events(
        [ExecutorEvent("r", EventKind.EXITED, 50.0, exit_code=-1, reason="no", cause=StopCause.START_FAILED)]
    )
    assert view(store, "r")[0] == JobState.FAILED
    assert _job_charged(store, "r") == 0 == grant_spent(store, "g")


def test_cancel_tail_goes_through_the_carry(store):
    """0.4 KRW metered while running (carried, not billed), then a cancel 0.2 KRW later: the run costs
    round_half_up(0.6) = 1 KRW, billed once, by the cancel (the old cancel billed its tail alone: 0)."""
    _started_pool(store, price=36)  # 0.01 KRW per device-second
    store.record_events([ExecutorEvent("r", EventKind.STARTED, 10.0)])
    running = store.running()[0]
    from accelpool.core import ledger

    store.record_charges([ledger.meter(running, 50.0, 36, final=False)])  # 0.4 KRW: 0 billed, 0.4 carried
    assert _job_charged(store, "r") == 0
    assert store.running()[0].carry == Fraction(2, 5)
    store.cancel("r", 70.0)
    assert _job_charged(store, "r") == 1 == grant_spent(store, "g")


def test_a_start_reported_after_the_cancel_bills_up_to_the_cancel(store):
    """The process started at 40 s; the user cancelled at 70 s before the scheduler polled the start; the
    start, polled at 75 s, bills 40..70 s (the run's real time), once."""
    _started_pool(store)
    assert store.cancel("r", 70.0) is True
    assert _job_charged(store, "r") == 0
    store.record_events(
        [
            ExecutorEvent("r", EventKind.STARTED, 40.0),
            ExecutorEvent("r", EventKind.EXITED, 71.0, exit_code=-15, cause=StopCause.REQUESTED),
            ExecutorEvent("r", EventKind.STARTED, 40.0),  # a repeat bills nothing more
        ]
    )
    assert _job_charged(store, "r") == 30 == grant_spent(store, "g")
    assert view(store, "r")[0] == JobState.CANCELLED


def test_a_job_cancelled_between_the_snapshot_and_the_record_is_never_started(store):
    """The API cancels a queued job while a round decides (after its snapshot): the store does not record
    its start (``skipped_starts``) and the reconciler does not start it, so it never runs and is never
    billed; the other job of the round starts as decided."""
    store.add_nodes([Node("h-0", "h100", 4)])
    store.set_prices({"h100": 3600})
    clock = VirtualClock(10.0)
    ex = FakeExecutor(clock)
    rec = Reconciler(store, ex, clock, greedy_fastest, round_seconds=3.0)
    store.submit(Job("a", total_steps=1e6), {"h100": 1.0})
    store.submit(Job("b", total_steps=1e6, submit_time=1.0), {"h100": 1.0})
    snapshot = store.snapshot

    def snapshot_then_cancel(now, round_seconds):
        snap = snapshot(now, round_seconds)
        assert store.cancel("a", now) is False  # queued when cancelled
        return snap

    store.snapshot = snapshot_then_cancel
    report = rec.step()
    store.snapshot = snapshot
    assert sorted(p.job for p in report.decision.start) == ["a", "b"]  # decided on the older snapshot
    assert [launch.job.id for launch in ex.launches] == ["b"] and ex.active() == {"b"}
    assert store.skipped_starts() == frozenset({"a"})
    clock.advance(3.0)
    rec.step()
    assert store.skipped_starts() == frozenset()
    assert [launch.job.id for launch in ex.launches] == ["b"]
    assert view(store, "a")[0] is JobState.CANCELLED or view(store, "a")[0] == "cancelled"
    assert _job_charged(store, "a") == 0 and _job_charged(store, "b") > 0


def test_a_wait_reason_never_overwrites_the_reason_of_a_job_cancelled_since_the_snapshot(store):
    """A round's wait reasons apply to jobs still waiting: a job cancelled after the round's snapshot keeps
    its cancel reason on every store (the core says which states wait: ``core.lifecycle.waits``)."""
    store.add_nodes([Node("h-0", "h100", 1)])
    store.submit(Job("a"), {"h100": 1.0})
    store.submit(Job("b", submit_time=1.0), {"h100": 1.0})
    store.snapshot(5.0, 3.0)
    store.cancel("b", 5.5, "cancelled by test")
    waiting = {"a": WaitReason.CAPACITY, "b": WaitReason.CAPACITY}
    store.record_decision(Decision(now=6.0, allocation=None, waiting=waiting))  # type: ignore[arg-type]
    assert view(store, "b")[1] == "cancelled by test"
    assert view(store, "a")[1] == "capacity"


def test_nodes_out_of_service_and_why_are_the_same_on_every_store(store):
    """A drained node, a lost one and a node at a site that is down leave the snapshot's nodes and are
    reported out of service with their causes (core.sites.in_service) on every store."""
    store.add_sites([Site("a"), Site("b")])
    store.add_nodes([Node(f"n{i}", "h100", 4, site="a" if i < 3 else "b") for i in range(5)])
    store.set_node_down("n0", True, "drained")
    store.set_node_down("n1", True, "lost")
    store.set_site_down("b", True)
    snap = store.snapshot(1.0, 3.0)
    assert [n.name for n in snap.nodes] == ["n2"]
    assert [n.name for n in snap.nodes_down] == ["n0", "n1", "n3", "n4"]
    assert dict(snap.down_causes) == {
        "n0": "drained",
        "n1": "lost",
        "n3": "at a site that is down",
        "n4": "at a site that is down",
    }
