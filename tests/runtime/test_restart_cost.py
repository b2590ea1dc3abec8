"""A job's restart cost, measured (STARTED to its first progress report), kept and used by the preemption
gate instead of the default; a declared restart cost wins (issue 10)."""

from __future__ import annotations

import pytest

from accelpool.core.lifecycle import EventKind, ExecutorEvent, apply_event
from accelpool.core.round_config import RoundConfig
from accelpool.core.rounds import JobStatus, Placement, Snapshot, _pinned, restart_cost
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Job, JobState, Node
from accelpool.storage.engine import sqlite_url
from accelpool.storage.memory import MemoryStore
from accelpool.storage.sql import SqlStore

P = Placement("a", "h100", (("n0", (0,)),))


def test_the_first_progress_report_of_each_attempt_measures_the_restart_cost() -> None:
    s = JobStatus(Job("a", preemptible=True), JobState.RUNNING, P)
    for e in (
        ExecutorEvent("a", EventKind.STARTED, 10.0),
        ExecutorEvent("a", EventKind.PROGRESS, 25.0, steps=1.0),
        ExecutorEvent("a", EventKind.PROGRESS, 90.0, steps=5.0),  # not the first: changes nothing
    ):
        s = apply_event(s, e).status
    assert s.restart_measured == 15.0 and s.attempt_started is None
    s = apply_event(s, ExecutorEvent("a", EventKind.LOST, 100.0)).status  # requeued
    s = JobStatus(s.job, JobState.RUNNING, P, s.steps_done, restart_measured=s.restart_measured)  # placed
    s = apply_event(s, ExecutorEvent("a", EventKind.STARTED, 200.0)).status
    assert s.restart_measured == 15.0  # kept until the new attempt reports
    s = apply_event(s, ExecutorEvent("a", EventKind.PROGRESS, 230.0, steps=6.0)).status
    assert s.restart_measured == 30.0


def test_declared_restart_cost_wins_then_the_measured_one_then_the_default() -> None:
    config = RoundConfig(restart_seconds=60.0)
    job = Job("a", preemptible=True)
    assert restart_cost(JobStatus(job, JobState.RUNNING, P), config) == 60.0
    assert restart_cost(JobStatus(job, JobState.RUNNING, P, restart_measured=20.0), config) == 20.0
    declared = Job("a", preemptible=True, restart_seconds=5.0)
    assert restart_cost(JobStatus(declared, JobState.RUNNING, P, restart_measured=20.0), config) == 5.0


def _boundary(status: JobStatus) -> Snapshot:
    tput = ThroughputMatrix.from_rows({"a": {"h100": 1.0}}, ("h100",))
    return Snapshot(10_000.0, (Node("n0", "h100", 1),), (status,), tput, run_started={"a": 0.0})


def test_the_gate_uses_the_measured_cost_a_job_whose_restart_costs_a_lease_is_not_preempted() -> None:
    config = RoundConfig(lease_seconds=360.0, restart_seconds=60.0)
    slow = JobStatus(Job("a", preemptible=True), JobState.RUNNING, P, restart_measured=400.0)
    pinned, _ = _pinned(_boundary(slow), [slow], config, 360.0)
    assert pinned == [0]  # a restart would cost more than the lease could gain
    quick = JobStatus(Job("a", preemptible=True), JobState.RUNNING, P, restart_measured=120.0)
    pinned, threshold = _pinned(_boundary(quick), [quick], config, 360.0)
    assert pinned == [] and threshold[0] == pytest.approx(360.0 / 240.0)  # measured 120 s, not 60 s
    told = JobStatus(
        Job("a", preemptible=True, restart_seconds=0.0), JobState.RUNNING, P, restart_measured=400.0
    )
    pinned, threshold = _pinned(_boundary(told), [told], config, 360.0)
    assert pinned == [] and threshold[0] == pytest.approx(1.0)  # declared: a restart costs nothing


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_the_measured_cost_is_kept_by_the_store(kind, tmp_path) -> None:
    store = MemoryStore() if kind == "memory" else SqlStore(sqlite_url(tmp_path / "r.sqlite"))
    store.add_nodes([Node("n0", "h100", 1)])
    store.submit(Job("a", preemptible=True, total_steps=1e6), {"h100": 1.0})
    from accelpool.core.rounds import Decision

    store.record_decision(Decision(now=1.0, allocation=None, start=(P,)))  # type: ignore[arg-type]
    store.record_events([ExecutorEvent("a", EventKind.STARTED, 2.0)])
    store.record_events([ExecutorEvent("a", EventKind.PROGRESS, 44.5, steps=3.0)])
    assert store.running()[0].restart_measured == 42.5
    snap = store.snapshot(50.0, 3.0)
    assert [s.restart_measured for s in snap.jobs] == [42.5]
    if kind == "sqlite":
        store.close()


def _meter(store, now: float) -> None:
    """Meter the running jobs up to ``now`` as the reconciler does with this store."""
    from accelpool.core import ledger

    one_pass = getattr(store, "meter_running", None)
    if one_pass is not None:
        one_pass(now)
        return
    charges = [ledger.meter(s, now, 3600, final=False) for s in store.running()]
    store.record_charges([c for c in charges if c is not None])


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_metering_keeps_the_attempt_and_the_measured_cost(kind, tmp_path) -> None:
    """Booking a metering slice kept only the status's billing fields: every slice wiped the running
    attempt's start (so a restart metered before its first report was never measured) and the measured
    cost (the preemption gate fell back to the default)."""
    store = MemoryStore() if kind == "memory" else SqlStore(sqlite_url(tmp_path / "m.sqlite"))
    store.add_nodes([Node("n0", "h100", 1)])
    store.submit(Job("a", preemptible=True, total_steps=1e6), {"h100": 1.0})
    from accelpool.core.rounds import Decision

    store.record_decision(Decision(now=1.0, allocation=None, start=(P,)))  # type: ignore[arg-type]
    store.record_events([ExecutorEvent("a", EventKind.STARTED, 2.0)])
    _meter(store, 30.0)  # a slice before the attempt's first progress report
    assert store.running()[0].attempt_started == 2.0
    store.record_events([ExecutorEvent("a", EventKind.PROGRESS, 44.5, steps=3.0)])
    assert store.running()[0].restart_measured == 42.5
    _meter(store, 60.0)
    _meter(store, 90.0)
    assert store.running()[0].restart_measured == 42.5
    assert [s.restart_measured for s in store.snapshot(95.0, 3.0).jobs] == [42.5]
    if kind == "sqlite":
        store.close()
