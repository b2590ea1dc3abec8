"""Simulator on the shared reconciler: hand-checked outcomes and invariants checked every round."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from tests.helpers import equal_time, greedy_fastest

from accelpool.core.round_config import RoundConfig
from accelpool.core.types import Cluster, Job, Node
from accelpool.runtime.reconciler import RoundReport
from accelpool.sim import engine
from accelpool.sim.engine import simulate
from accelpool.sim.gavel import read_gavel_trace
from accelpool.sim.metrics import compute
from accelpool.sim.synthetic import generate
from accelpool.sim.workload import Workload

FIXTURES = Path(__file__).parent.parent / "fixtures" / "traces"


def small(jobs, rows, nodes=(Node("a-0", "fast", 2), Node("b-0", "slow", 2)), **kw) -> Workload:
    return Workload("t", tuple(jobs), rows, Cluster(tuple(nodes)), **kw)


def test_hand_checked_two_jobs_fifo_on_one_device():
    # one device; a (100 steps at 1 step/s) arrives at 0, b (50 steps) at 10.
    # round 100 s: a runs 0..100 and exits at 100; b waits, starts at the round at 100, ends at 150.
    w = small(
        [Job("a", total_steps=100.0), Job("b", total_steps=50.0, submit_time=10.0)],
        {"a": {"fast": 1.0}, "b": {"fast": 1.0}},
        nodes=(Node("a-0", "fast", 1),),
    )
    r = simulate(w, greedy_fastest, round_seconds=100.0)
    assert r.records["a"].end_time == 100.0
    assert r.records["b"].start_time == 100.0 and r.records["b"].end_time == 150.0
    m = compute(r)
    assert m["jobs_completed"] == 2
    assert m["avg_jct_seconds"] == pytest.approx((100.0 + 140.0) / 2)
    assert m["avg_queueing_seconds"] == pytest.approx(45.0)
    assert m["makespan_seconds"] == 150.0
    assert m["utilization"]["fast"] == pytest.approx(1.0)


def test_idle_gap_is_skipped_and_arrival_starts_at_once():
    w = small(
        [Job("a", total_steps=10.0), Job("b", total_steps=10.0, submit_time=1e6 + 7)],
        {"a": {"fast": 1.0}, "b": {"fast": 1.0}},
    )
    r = simulate(w, greedy_fastest, round_seconds=360.0)
    assert r.records["b"].start_time == 1e6 + 7 and r.records["b"].end_time == 1e6 + 17
    assert r.rounds <= 4


def test_restart_overhead_is_paid_on_resume_only():
    # equal_time on one device with two jobs alternates them; each resume loses 10 s.
    rows = {"a": {"fast": 1.0}, "b": {"fast": 1.0}}
    jobs = [Job("a", total_steps=300.0, preemptible=True), Job("b", total_steps=300.0, preemptible=True)]
    nodes = (Node("a-0", "fast", 1),)
    per_round = RoundConfig.per_round()
    base = simulate(small(jobs, rows, nodes), equal_time, round_seconds=100.0, config=per_round)
    slow = simulate(
        small(jobs, rows, nodes),
        equal_time,
        round_seconds=100.0,
        restart_overhead_seconds=10.0,
        config=per_round,
    )
    assert compute(base)["preemptions"] > 0
    assert compute(slow)["makespan_seconds"] > compute(base)["makespan_seconds"]
    assert base.records["a"].end_time + base.records["b"].end_time == pytest.approx(500.0 + 600.0)


def test_restart_metrics_per_job_hour_device_hours_and_krw_lost():
    """The simulator reports preemptions per job-hour, device-hours lost to restarts and KRW paid for that
    lost work (issue 10): two 2-device jobs alternating on one node, 10 s lost per resume at 3,600 KRW
    per device-hour (1 KRW per device-second)."""
    rows = {"a": {"fast": 1.0}, "b": {"fast": 1.0}}
    jobs = [
        Job("a", scale=2, total_steps=300.0, preemptible=True),
        Job("b", scale=2, total_steps=300.0, preemptible=True),
    ]
    w = small(jobs, rows, (Node("a-0", "fast", 2),), prices_krw_per_hour={"fast": 3600})
    r = simulate(
        w, equal_time, round_seconds=100.0, restart_overhead_seconds=10.0, config=RoundConfig.per_round()
    )
    m = compute(r)
    n = m["preemptions"]
    assert n > 0
    run_hours = sum(sum(rec.status.seconds_on.values()) for rec in r.records.values()) / 3600.0
    assert m["preemptions_per_job_hour"] == pytest.approx(n / run_hours)
    assert m["device_hours_lost_to_restarts"] == pytest.approx(n * 10.0 * 2 / 3600.0)
    assert m["krw_paid_for_lost_work"] == n * 10 * 2


def test_unschedulable_jobs_are_dropped_and_counted():
    w = small(
        [Job("big", scale=5, total_steps=1.0), Job("ok", total_steps=1.0)],
        {"big": {"fast": 1.0}, "ok": {"fast": 1.0}},
    )
    r = simulate(w, greedy_fastest)
    assert r.unschedulable == ("big",)
    assert compute(r)["jobs_completed"] == 1


def _invariant_checker(capacity_nodes):
    seen = []

    def check(report: RoundReport) -> None:
        used = set()
        for p in report.decision.placements():
            job = next(s.job for s in report.snapshot.jobs if s.job.id == p.job)
            assert p.count == job.scale, "gang jobs start whole"
            assert not job.allowed or p.accelerator in job.allowed, "a job runs only on types it may use"
            for node, devices in p.devices:
                assert capacity_nodes[node].accelerator == p.accelerator, "one type per job"
                for d in devices:
                    assert (node, d) not in used, "a device is double-booked"
                    used.add((node, d))
        ids = [p.job for p in report.decision.placements()]
        assert len(ids) == len(set(ids)), "a job is on two placements at once"
        seen.append(len(ids))

    return check, seen


@pytest.mark.parametrize("policy", [greedy_fastest, equal_time])
def test_invariants_every_round_on_a_gavel_trace(monkeypatch, policy):
    w = read_gavel_trace(FIXTURES / "gavel_b436b2_head60.trace", {"v100": 8, "p100": 8, "k80": 8})
    w = replace(w, jobs=w.jobs[:25])
    nodes = {n.name: n for n in w.cluster.nodes}
    check, seen = _invariant_checker(nodes)
    original = engine._Collector.__call__

    def wrapped(self, report):  # type: ignore[no-untyped-def]
        check(report)
        original(self, report)

    monkeypatch.setattr(engine._Collector, "__call__", wrapped)
    r = simulate(w, policy, max_rounds=400)
    assert seen and max(seen) > 1
    assert r.rounds <= 400


def test_grants_charged_never_negative_and_jobs_held_when_dry():
    w = generate({"h100": 16, "rngd": 16}, n_jobs=40, seed=3, grant_scale=0.2)
    r = simulate(w, greedy_fastest)
    m = compute(r)
    for g in w.grants:
        spent = r.grant_spent_krw[g.id]
        assert 0 <= spent <= g.amount_krw
    assert m["cost_krw_total"] == sum(r.grant_spent_krw.values())
    assert m["cost_krw_total"] > 0
    assert m["jobs_unfinished"] > 0  # a fifth of the money cannot pay for all the work
    held = [rec.reason for rec in r.records.values() if not rec.status.state.terminal]
    assert any(h.startswith("blocked (budget)") for h in held)


def test_public_services_run_on_domestic_npus_only():
    w = generate({"h100": 16, "rngd": 16, "atom": 8}, n_jobs=60, seed=1, grant_scale=50.0)
    r = simulate(w, greedy_fastest)
    m = compute(r)
    assert m["domestic_npu_share_public_services"] == pytest.approx(1.0)
    for rec in r.records.values():
        j = rec.status.job
        if j.public and j.kind.value == "inference":
            assert set(rec.status.seconds_on) <= {"rngd", "atom"}


def test_same_input_same_outcome():
    w = generate({"h100": 8, "a100": 8, "rngd": 8}, n_jobs=30, seed=5, grant_scale=10.0)
    a, b = compute(simulate(w, equal_time)), compute(simulate(w, equal_time))
    for key in ("avg_jct_seconds", "p99_jct_seconds", "makespan_seconds", "preemptions", "cost_krw_total"):
        assert a[key] == b[key]


@pytest.mark.parametrize(
    "config",
    [RoundConfig.per_round(), RoundConfig(lease_seconds=300.0, min_run_seconds=0.0, restart_seconds=0.0)],
    ids=["per-round", "leases"],
)
def test_fifo_never_stops_a_running_job_and_back_fills_without_delaying_its_head(config):
    """fifo: running preemptible jobs keep their devices while an older, higher-priority job arrives; a
    2-device gang at the head of the queue waits for "long" (due at t=1000); a 1-device job arriving after
    it back-fills the free device because it ends before then (EASY back-fill), and the head still starts
    at t=1000, at lease boundaries and at the ticks between them (rounds of 100 s, leases of 300 s)."""
    from accelpool.core.policies import get_policy

    jobs = [
        Job("long", total_steps=1000.0, preemptible=True),
        Job("wide", total_steps=100.0, scale=2, preemptible=True, submit_time=50.0),
        Job("vip", total_steps=100.0, preemptible=True, submit_time=60.0, priority=5),
        Job("small", total_steps=100.0, preemptible=True, submit_time=150.0),
    ]
    rows = {j.id: {"fast": 1.0} for j in jobs}
    w = small(jobs, rows, nodes=(Node("a-0", "fast", 2),))
    r = simulate(w, get_policy("fifo"), round_seconds=100.0, config=config)
    assert compute(r)["preemptions"] == 0
    assert r.records["long"].start_time == 0.0 and r.records["long"].end_time == 1000.0
    # vip (priority 5) goes first, on the free device; wide waits for both devices; small waits behind it
    assert r.records["vip"].start_time == 100.0
    assert r.records["wide"].start_time == 1000.0
    assert 200.0 <= r.records["small"].start_time and r.records["small"].end_time <= 1000.0
