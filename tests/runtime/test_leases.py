"""Live scheduling that real jobs survive: leases, the preemption contract, budgets (issue 10's targets).

Live semantics on the simulated adapters: MemoryStore + FakeExecutor + VirtualClock, a 3 s tick and the
live default lease (360 s), the default policy.
"""

from __future__ import annotations

from collections import Counter

from accelpool.core.policies import get_policy
from accelpool.core.round_config import RoundConfig
from accelpool.core.types import Grant, Job, JobKind, JobState, Node, Program, Tenant
from accelpool.executors.fake import FakeExecutor
from accelpool.runtime.clock import VirtualClock
from accelpool.runtime.reconciler import Reconciler
from accelpool.storage.memory import MemoryStore

TICK = 3.0


def live(nodes, config: RoundConfig | None = None, policy: str = "max-min-fairness"):
    clock = VirtualClock()
    store = MemoryStore()
    store.add_nodes(nodes)
    ex = FakeExecutor(clock)
    rec = Reconciler(store, ex, clock, get_policy(policy), round_seconds=TICK, config=config)
    return clock, store, ex, rec


def run_for(rec: Reconciler, clock: VirtualClock, seconds: float) -> None:
    end = clock.now() + seconds
    while clock.now() < end:
        rec.step()
        clock.sleep_until(clock.now() + TICK)


def attempts(ex: FakeExecutor) -> Counter[str]:
    return Counter(launch.job.id for launch in ex.launches)


def test_demo_pair_each_job_runs_once_and_is_charged_for_its_real_time() -> None:
    """8 x h100 `sleep 60` and 1 x h100 `sleep 20` of one tenant: once each, no preemption, exact charge."""
    clock, store, ex, rec = live([Node("h100-0", "h100", 8)])
    price = 4_000
    store.set_prices({"h100": price})
    store.add_program(Program("p", "program", budget_krw=10**9))
    store.add_grant(Grant("g", "p", "t", amount_krw=10**8))
    store.submit(Job("big", tenant="t", scale=8, total_steps=60.0, grant="g"), {"h100": 1.0})
    store.submit(
        Job("small", tenant="t", scale=1, total_steps=20.0, grant="g", submit_time=0.5), {"h100": 1.0}
    )
    run_for(rec, clock, 200.0)
    assert store.jobs["big"].status.state is JobState.SUCCEEDED
    assert store.jobs["small"].status.state is JobState.SUCCEEDED
    assert attempts(ex) == {"big": 1, "small": 1}
    assert store.jobs["big"].preemptions == store.jobs["small"].preemptions == 0
    charged = sum(c.amount_krw for c in store.charges if c.job == "big")
    exact = 8 * 60 * price / 3600
    assert abs(charged - exact) <= 0.02 * exact


def test_two_inference_services_on_one_node_are_never_swapped() -> None:
    """Two 6 x rngd inference jobs of two tenants on one 8-device node: the first keeps it, no swap."""
    clock, store, ex, rec = live([Node("rngd-0", "rngd", 8)])
    for t in ("a", "b"):
        store.add_tenant(Tenant(t))
    store.submit(Job("svc-a", tenant="a", kind=JobKind.INFERENCE, scale=6), {"rngd": 1.0})
    store.submit(Job("svc-b", tenant="b", kind=JobKind.INFERENCE, scale=6, submit_time=1.0), {"rngd": 1.0})
    run_for(rec, clock, 3 * 360.0)
    assert attempts(ex) == {"svc-a": 1}
    assert ex.stops == []
    assert store.jobs["svc-b"].status.state is JobState.QUEUED


def test_endless_non_preemptible_jobs_on_fewer_devices_are_never_preempted() -> None:
    clock, store, ex, rec = live([Node("h100-0", "h100", 4)])
    for t in ("a", "b", "c"):
        store.add_tenant(Tenant(t))
    for k in range(10):
        store.submit(Job(f"j{k}", tenant="abc"[k % 3], submit_time=float(k)), {"h100": 1.0})
    run_for(rec, clock, 4 * 360.0)
    assert ex.stops == []
    assert sum(r.preemptions for r in store.jobs.values()) == 0
    assert sorted(attempts(ex).values()) == [1, 1, 1, 1]


def test_preemptible_jobs_are_preempted_at_most_once_per_lease() -> None:
    clock, store, ex, rec = live([Node("h100-0", "h100", 4)])
    for t in ("a", "b"):
        store.add_tenant(Tenant(t))
    for k in range(8):
        store.submit(Job(f"j{k}", tenant="ab"[k % 2], preemptible=True, submit_time=float(k)), {"h100": 1.0})
    leases = 5
    run_for(rec, clock, leases * 360.0)
    per_job = Counter(job for job, _ in ex.stops)
    assert per_job, "time-slicing preemptible jobs at lease boundaries should preempt some"
    assert max(per_job.values()) <= leases
    # every stop happened at a lease boundary: at most one per job per lease window
    for job in per_job:
        times = [e[0] for e in store.jobs[job].events if e[1] == JobState.PREEMPTED]
        windows = Counter(int(t // 360.0) for t in times)
        assert max(windows.values()) == 1


def test_no_preemption_while_a_restart_costs_more_than_a_lease_gains() -> None:
    # declared: a measured cost (the fake executor reports progress at once) would win over the default
    config = RoundConfig(lease_seconds=60.0, restart_seconds=60.0)
    clock, store, ex, rec = live([Node("h100-0", "h100", 1)], config=config)
    store.submit(Job("a", preemptible=True, restart_seconds=60.0), {"h100": 1.0})
    store.submit(Job("b", preemptible=True, submit_time=1.0, restart_seconds=60.0), {"h100": 1.0})
    run_for(rec, clock, 600.0)
    assert ex.stops == []


def test_a_measured_restart_cost_outlives_metering_and_lets_the_lease_preempt() -> None:
    """The default restart cost (60 s, a whole lease) would forbid every preemption; the restart each
    job measured (STARTED to its first progress report, near 0 with the fake executor) is kept across
    metering slices and used instead, so the two jobs share the device. (Until 2026-11-30 every metering
    slice wiped the measurement and the default held.)"""
    config = RoundConfig(lease_seconds=60.0, restart_seconds=60.0)
    clock, store, ex, rec = live([Node("h100-0", "h100", 1)], config=config)
    store.submit(Job("a", preemptible=True), {"h100": 1.0})
    store.submit(Job("b", preemptible=True, submit_time=1.0), {"h100": 1.0})
    run_for(rec, clock, 600.0)
    assert {job for job, _ in ex.stops} == {"a", "b"}
    assert all(s.restart_measured is not None and s.restart_measured < 60.0 for s in store.running())


def test_a_grant_of_10000_krw_and_200_short_jobs_every_started_job_completes() -> None:
    clock, store, ex, rec = live([Node("h100-0", "h100", 8), Node("h100-1", "h100", 8)])
    store.set_prices({"h100": 50_000})  # a lease (6 min) of one device costs 5,000 KRW
    store.add_program(Program("p", "program", budget_krw=10**9))
    store.add_grant(Grant("g", "p", "t", amount_krw=10_000))
    for k in range(200):
        store.submit(
            Job(f"s{k:03d}", tenant="t", grant="g", total_steps=5.0, submit_time=k * 0.01), {"h100": 1.0}
        )
    run_for(rec, clock, 900.0)
    started = [r for r in store.jobs.values() if r.start_time is not None]
    assert started
    assert all(r.status.state is JobState.SUCCEEDED for r in started)
    assert all(r.preemptions == 0 for r in store.jobs.values())
    assert store.grants["g"].remaining_krw >= 0
    waiting = [r for r in store.jobs.values() if r.start_time is None]
    assert waiting, "the grant runs dry before every job starts"
    report = rec.step()
    for r in waiting:
        jid = r.status.job.id
        assert report.decision.waiting[jid] == "budget"
        assert jid not in report.decision.positions  # blocked: no queue position
        assert report.decision.details[jid].startswith("blocked (budget): needs 1 x h100; grant g has")
        assert report.decision.details[jid].endswith("and a lease (6 min) costs 5000 KRW")


def test_a_job_whose_every_node_is_down_is_blocked_with_the_count_and_holds_no_position() -> None:
    clock, store, ex, rec = live(
        [Node("warboy-0", "warboy", 4), Node("warboy-1", "warboy", 4), Node("h-0", "h100", 1)]
    )
    store.set_node_down("warboy-0")
    store.set_node_down("warboy-1")
    store.submit(Job("w", scale=2, allowed=frozenset({"warboy"})), {"warboy": 1.0})
    store.submit(Job("a", submit_time=1.0), {"h100": 1.0})
    store.submit(Job("b", submit_time=2.0), {"h100": 1.0})
    report = rec.step()
    assert (
        report.decision.details["w"]
        == "blocked (not-runnable): needs 2 x warboy; every warboy node is down (2 down)"
    )
    assert "w" not in report.decision.positions
    assert report.decision.positions == {"b": 1}
    assert store.jobs["w"].position is None and store.jobs["b"].position == 1


def test_down_nodes_are_counted_by_cause_drained_or_lost(tmp_path) -> None:
    """ "every warboy node is down (2 drained, 2 lost)": an operator's drain (API/CLI) against nodes the
    executor lost, on the SQL store as the service keeps them."""
    from accelpool.storage.engine import sqlite_url
    from accelpool.storage.sql import SqlStore

    store = SqlStore(sqlite_url(tmp_path / "n.sqlite"))
    try:
        store.add_nodes([Node(f"warboy-{i}", "warboy", 4) for i in range(4)] + [Node("h-0", "h100", 1)])
        store.update_node("warboy-0", down=True)  # drained by an operator
        store.update_node("warboy-1", down=True)
        store.set_node_down("warboy-2", True, cause="lost")  # the executor's node sync
        store.set_node_down("warboy-3", True, cause="lost")
        store.submit(Job("w", scale=2, allowed=frozenset({"warboy"})), {"warboy": 1.0})
        clock = VirtualClock()
        rec = Reconciler(
            store, FakeExecutor(clock), clock, get_policy("max-min-fairness"), round_seconds=TICK
        )
        report = rec.step()
        assert report.decision.details["w"] == (
            "blocked (not-runnable): needs 2 x warboy; every warboy node is down (2 drained, 2 lost)"
        )
        store.update_node("warboy-0", down=False)
        store.update_node("warboy-0", down=True)
        store.set_node_down("warboy-2", False)
        store.set_node_down("warboy-2", True)  # no cause given: "down"
        assert rec.step().decision.details["w"].endswith("(2 drained, 1 lost, 1 down)")
    finally:
        store.close()


def test_priority_is_the_reason_only_for_the_priority_field_and_is_never_displaced_by_a_lower_one() -> None:
    """Two preemptible 4-device jobs on 4 devices: without priorities they take turns at lease boundaries
    and the one waiting never reads "priority"; with a higher priority field the first runs to its end,
    the other waits with the reason "priority" (before, a priority-0 job displaced a priority-5 one at
    the boundary and waited as "capacity" while it held the devices)."""
    config = RoundConfig(lease_seconds=360.0, min_run_seconds=0.0, restart_seconds=0.0)
    seen: set[str] = set()
    clock, store, ex, rec = live([Node("h100-0", "h100", 4)], config)
    for t in ("a", "b"):
        store.add_tenant(Tenant(t))
    store.submit(Job("a1", tenant="a", scale=4, preemptible=True, total_steps=1500.0), {"h100": 1.0})
    store.submit(
        Job("b1", tenant="b", scale=4, preemptible=True, total_steps=1500.0, submit_time=1.0), {"h100": 1.0}
    )
    for _ in range(400):
        seen |= {d.split(":")[0] for d in rec.step().decision.details.values()}
        clock.sleep_until(clock.now() + TICK)
    assert ex.stops  # they took turns
    assert "priority" not in seen

    clock, store, ex, rec = live([Node("h100-0", "h100", 4)], config)
    store.submit(
        Job("hi", tenant="a", scale=4, priority=5, preemptible=True, total_steps=600.0), {"h100": 1.0}
    )
    store.submit(
        Job("lo", tenant="b", scale=4, preemptible=True, total_steps=300.0, submit_time=1.0), {"h100": 1.0}
    )
    reasons: set[str] = set()
    for _ in range(400):
        reasons |= {d for j, d in rec.step().decision.details.items() if j == "lo"}
        clock.sleep_until(clock.now() + TICK)
    assert attempts(ex) == {"hi": 1, "lo": 1} and ex.stops == []
    assert reasons == {"priority: needs 4 x h100; jobs with a higher priority hold the devices"}
    assert (
        store.jobs["hi"].status.state is JobState.SUCCEEDED
        and store.jobs["lo"].status.state is JobState.SUCCEEDED
    )


def test_a_waiting_job_says_at_which_lease_boundary_preemptible_jobs_may_yield() -> None:
    """ "waits for the lease at 14:06": with a preemptible job holding the devices, a waiting job's reason
    names the first boundary at which that job is past its minimum run (two leases by default: 00:12 on
    the virtual clock that starts at 0); a job that is not preemptible gives no such clause."""
    clock, store, ex, rec = live([Node("h100-0", "h100", 4)])
    store.submit(Job("a", tenant="a", scale=4, preemptible=True, total_steps=1e6), {"h100": 1.0})
    store.submit(Job("b", tenant="b", scale=4, preemptible=True, submit_time=1.0), {"h100": 1.0})
    rec.step()
    assert rec.step().decision.details["b"] == (
        "capacity: needs 4 x h100; every one is in use; preemptible jobs on h100 may yield at the lease "
        "boundary at 00:12 UTC"
    )
    clock, store, ex, rec = live([Node("h100-0", "h100", 4)])
    store.submit(Job("a", tenant="a", scale=4, total_steps=1e6), {"h100": 1.0})
    store.submit(Job("b", tenant="b", scale=4, preemptible=True, submit_time=1.0), {"h100": 1.0})
    rec.step()
    assert rec.step().decision.details["b"] == "capacity: needs 4 x h100; every one is in use"
