"""The reconciler's round on memory store + fake executor + virtual clock: hand-checked outcomes."""

from __future__ import annotations

import pytest
from tests.helpers import greedy_fastest

from accelpool.core.round_config import RoundConfig
from accelpool.core.types import Grant, Job, JobState, Node, Program
from accelpool.executors.fake import FakeExecutor
from accelpool.runtime.clock import VirtualClock
from accelpool.runtime.reconciler import Reconciler
from accelpool.storage.memory import MemoryStore


def make(round_seconds: float = 100.0, config: RoundConfig | None = None):
    clock = VirtualClock()
    store = MemoryStore()
    store.add_nodes([Node("h-0", "h100", 4), Node("h-1", "h100", 4), Node("r-0", "rngd", 8)])
    ex = FakeExecutor(clock)
    rec = Reconciler(store, ex, clock, greedy_fastest, round_seconds=round_seconds, config=config)
    return clock, store, ex, rec


def test_job_runs_on_fastest_type_and_finishes_at_exact_time():
    clock, store, ex, rec = make()
    store.submit(Job("a", scale=2, total_steps=1000.0), {"h100": 4.0, "rngd": 1.0})
    rec.run(rounds=4)
    r = store.jobs["a"]
    assert r.status.state == JobState.SUCCEEDED
    assert r.end_time == 250.0  # 1000 steps / 4 steps/s
    assert ex.launches[0].placement.accelerator == "h100"
    assert ex.launches[0].placement.devices == (("h-0", (0, 1)),) or ex.launches[0].placement.count == 2


def test_gang_job_spans_fewest_nodes_and_never_double_books():
    clock, store, ex, rec = make()
    store.submit(Job("big", scale=6, total_steps=1e6), {"h100": 1.0})
    store.submit(Job("small", scale=2, total_steps=1e6), {"h100": 1.0})
    report = rec.step()
    placed = {p.job: p for p in report.decision.start}
    assert placed["big"].count == 6 and len(placed["big"].devices) == 2
    used = [(n, d) for p in placed.values() for n, ds in p.devices for d in ds]
    assert len(used) == len(set(used)) == 8


def test_waiting_job_has_reason_and_position():
    clock, store, ex, rec = make()
    store.submit(Job("a", scale=8, total_steps=1e6), {"h100": 1.0})
    store.submit(Job("b", scale=8, total_steps=1e6, submit_time=1.0), {"h100": 1.0})
    store.submit(Job("c", scale=8, total_steps=1e6, submit_time=2.0), {"h100": 1.0})
    report = rec.step()
    assert [p.job for p in report.decision.start] == ["a"]
    assert report.decision.waiting == {"b": "capacity", "c": "capacity"}
    assert report.decision.positions == {"b": 1, "c": 2}


def test_grant_is_charged_and_never_overspent_and_job_held_for_budget():
    clock, store, ex, rec = make(round_seconds=3600.0, config=RoundConfig(lease_seconds=3600.0))
    store.set_prices({"h100": 1000})  # KRW per device-hour
    store.add_program(Program("p", "program", budget_krw=10_000))
    store.add_grant(Grant("g", "p", "t1", amount_krw=2500))
    store.submit(Job("a", tenant="t1", scale=1, grant="g", total_steps=1e9), {"h100": 1.0})
    rec.run(rounds=5)
    # two whole hours; a third lease (an hour) would overspend, so the job stops at that boundary
    assert store.grants["g"].spent_krw == 2000
    assert store.grants["g"].remaining_krw >= 0
    assert store.jobs["a"].reason.startswith("blocked (budget): needs 1 x h100; grant g has 500 KRW left")
    assert sum(c.amount_krw for c in store.charges) == 2000


def test_lost_job_is_requeued_and_restarted():
    clock, store, ex, rec = make()
    store.submit(Job("a", scale=1, total_steps=1000.0), {"h100": 1.0})
    rec.step()
    clock.advance(50)
    ex.lose("a")
    rec.step()
    events = [s for _, s, _ in store.jobs["a"].events]
    assert "preempted" in events and events[-1] == "running"
    assert store.jobs["a"].status.steps_done == 50.0


def test_recover_requeues_jobs_the_executor_forgot():
    clock, store, ex, rec = make()
    store.submit(Job("a", scale=1, total_steps=1e6), {"h100": 1.0})
    rec.step()
    fresh = Reconciler(store, FakeExecutor(clock), clock, greedy_fastest, round_seconds=100)
    assert fresh.recover() == ["a"]
    assert store.jobs["a"].status.state == JobState.QUEUED


def test_fake_executor_resumes_from_its_checkpoint_and_can_skip_progress_events():
    from accelpool.core.rounds import Placement
    from accelpool.ports import EventKind, Launch, RunSpec

    clock = VirtualClock(0.0)
    ex = FakeExecutor(clock, progress_events=False)
    job = Job("a", tenant="t", scale=1, total_steps=1000.0, submit_time=0.0)
    p = Placement("a", "x", (("n", (0,)),))
    ex.start(Launch(job, p, RunSpec(), 1.0, 0.0, 1))
    clock.sleep_until(100.0)
    # no per-poll progress: only the attempt's first report, dated when its work resumed (no overhead: 0)
    assert [(e.kind, e.time) for e in ex.poll()] == [(EventKind.STARTED, 0.0), (EventKind.PROGRESS, 0.0)]
    ex.stop("a", "moved")
    # the scheduler's view may lag (no progress events): the job still resumes from its own checkpoint
    ex.start(Launch(job, p, RunSpec(), 1.0, 0.0, 2))
    clock.sleep_until(1000.0)
    done = [e for e in ex.poll() if e.kind == EventKind.EXITED and e.exit_code == 0]
    assert done and done[0].time == pytest.approx(1000.0)


def test_slices_accumulate_exactly_one_hour_at_800_krw_in_3_second_rounds():
    clock, store, ex, rec = make(round_seconds=3.0)
    store.set_prices({"warboy": 800})
    store.add_nodes([Node("w-0", "warboy", 1)])
    store.submit(Job("a", scale=1, total_steps=3600.0), {"warboy": 1.0})
    rec.run(rounds=1202)
    assert store.jobs["a"].status.state == JobState.SUCCEEDED
    charges = [c for c in store.charges if c.job == "a"]
    assert len(charges) >= 1200
    assert sum(c.amount_krw for c in charges) == 800  # per-slice rounding billed 1,200


def test_preempted_run_settles_its_carry():
    clock, store, ex, rec = make(round_seconds=1.0)
    store.set_prices({"rngd": 1000})
    store.submit(Job("a", scale=1, total_steps=1e9), {"rngd": 1.0})
    rec.run(rounds=3)  # two 1-s slices metered: 2 x 0.2778 KRW, nothing billed yet
    assert sum(c.amount_krw for c in store.charges) == 0
    store.cancel("a", clock.now())  # tail billed by the store, carry (0.56) settled in the next round
    rec.step()
    assert sum(c.amount_krw for c in store.charges if c.job == "a") == 1
