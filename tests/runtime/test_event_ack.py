"""An end an executor reported is never lost before the store has recorded it (a review's reproduction: a
round whose record failed, SQLite's write lock held by another process, lost the exit; the audit requeued
the finished job and it ran and was billed again). Also: the executor's own dirs removed while it runs, and
the attempt number after a scheduler restart."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import greedy_fastest

from accelpool.core.types import Job, JobState, Node
from accelpool.executors import sandbox as sb
from accelpool.executors.local import LocalExecutor
from accelpool.ports import EventKind, ExecutorEvent, RunSpec
from accelpool.runtime.clock import SystemClock, VirtualClock
from accelpool.runtime.reconciler import MAX_REFUSALS, Reconciler
from accelpool.storage.engine import sqlite_url
from accelpool.storage.memory import MemoryStore
from accelpool.storage.sql import SqlStore

KRW_PER_HOUR = 3600  # 1 KRW per device-second


class FailingRecord:
    """The store, whose record_events raises once when the events hold an end (the write lock was held)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.failed: list[ExecutorEvent] = []

    def record_events(self, events: Sequence[ExecutorEvent]) -> Any:
        if not self.failed and any(e.kind is EventKind.EXITED for e in events):
            self.failed = list(events)
            raise sqlite3.OperationalError("database is locked")
        return self.store.record_events(events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _store(kind: str, tmp_path: Path) -> Any:
    store = MemoryStore() if kind == "memory" else SqlStore(sqlite_url(tmp_path / "s.sqlite"))
    store.add_nodes([Node("n0", "h100", 1)])
    store.set_prices({"h100": KRW_PER_HOUR})
    return store


def _state(store: Any, job: str) -> tuple[JobState, int, int]:
    """(state, KRW billed, preemptions) of the job."""
    if isinstance(store, MemoryStore):
        rec = store.jobs[job]
        return rec.status.state, sum(c.amount_krw for c in store.charges if c.job == job), rec.preemptions
    v = store.get_job(job)
    return JobState(v.state), int(v.charged_krw or 0), v.preemptions


def _wait_exit(ex: LocalExecutor, job: str) -> None:
    exit_file = ex.jobs_dir / job / "exit.0"
    deadline = time.monotonic() + 60
    while sb.read_exit(str(exit_file)) is None:
        assert time.monotonic() < deadline, ex.logs(job)
        time.sleep(0.05)
    time.sleep(0.2)  # the wrapper exits just after its record


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_an_exit_seen_in_a_round_whose_record_fails_is_recorded_next_round_once(kind, tmp_path) -> None:
    clock = VirtualClock()
    inner = _store(kind, tmp_path)
    store = FailingRecord(inner)
    ex = LocalExecutor(tmp_path / "state", clock=clock)
    rec = Reconciler(store, ex, clock, greedy_fastest, round_seconds=60.0)  # type: ignore[arg-type]
    inner.submit(Job("j", scale=1), {"h100": 1.0}, RunSpec("exit 0"))
    try:
        rec.step()  # t=0: starts j
        assert ex.active() == {"j"}
        _wait_exit(ex, "j")
        clock.advance(60.0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            rec.step()  # t=60: the poll reports EXITED; its record fails
        assert [e.kind for e in store.failed if e.job == "j"][-1] is EventKind.EXITED
        assert (ex.jobs_dir / "j" / "state.json").exists()  # not acked: kept for a restart
        for _ in range(3):  # later rounds: the kept end is recorded first; nothing runs j again
            clock.advance(60.0)
            rec.step()
            assert ex.active() == set()
        state, billed, preempted = _state(inner, "j")
        assert (state, billed, preempted) == (JobState.SUCCEEDED, 60, 0)  # billed to t=60, where it was seen
        assert ex.logs("j").count("=== accelpool: attempt") == 1  # started once
        assert (ex.jobs_dir / "j" / "state.done.json").exists()  # acked: forgotten
        assert not (ex.jobs_dir / "j" / "state.json").exists()
    finally:
        ex.close()
        if kind == "sqlite":
            inner.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_restart_after_a_failed_record_reports_the_end_again(kind, tmp_path) -> None:
    """The control plane goes away after the round whose record failed (close(), or killed): a new
    executor over the same state dir adopts the job and reports its end, at the time it really ended."""
    clock = SystemClock()
    price = 3_600_000  # 1000 KRW per second: a bill to the restart would be seconds too long
    inner = _store(kind, tmp_path)
    inner.set_prices({"h100": price})
    store = FailingRecord(inner)
    ex = LocalExecutor(tmp_path / "state", clock=clock)
    rec = Reconciler(store, ex, clock, greedy_fastest, round_seconds=60.0)  # type: ignore[arg-type]
    inner.submit(Job("j", scale=1), {"h100": 1.0}, RunSpec("sleep 0.3"))
    rec.step()
    started = json.loads((ex.jobs_dir / "j" / "state.json").read_text())["started"]
    _wait_exit(ex, "j")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        rec.step()
    ex.close()
    time.sleep(2.0)  # the control plane is down a while
    ex2 = LocalExecutor(tmp_path / "state", clock=clock)
    try:
        assert ex2.active() == {"j"}  # adopted: its end not acked
        rec2 = Reconciler(inner, ex2, clock, greedy_fastest, round_seconds=60.0)
        assert rec2.recover() == []  # not requeued as lost
        rec2.step()
        rec2.step()
        state, billed, preempted = _state(inner, "j")
        ended = sb.read_exit(str(ex2.jobs_dir / "j" / "exit.0"))
        assert ended is not None and ended[1] is not None
        assert state is JobState.SUCCEEDED and preempted == 0
        assert billed == pytest.approx((ended[1] - started) * 1000, abs=2)  # to its real end
        assert ex2.logs("j").count("=== accelpool: attempt") == 1
    finally:
        ex2.close()
        if kind == "sqlite":
            inner.close()


def test_removed_log_and_job_dirs_are_made_again(tmp_path: Path) -> None:
    clock = VirtualClock()
    store = _store("memory", tmp_path)
    ex = LocalExecutor(tmp_path / "state", clock=clock)
    rec = Reconciler(store, ex, clock, greedy_fastest, round_seconds=60.0)
    shutil.rmtree(ex.log_dir)
    shutil.rmtree(ex.jobs_dir)
    store.submit(Job("j", scale=1), {"h100": 1.0}, RunSpec("echo hi"))
    try:
        rec.step()
        assert store.jobs["j"].status.state is JobState.RUNNING and ex.active() == {"j"}
        _wait_exit(ex, "j")
        clock.advance(60.0)
        rec.step()
        assert store.jobs["j"].status.state is JobState.SUCCEEDED
        assert "hi" in ex.logs("j")
    finally:
        ex.close()


def test_the_executors_own_dir_trouble_requeues_the_job_without_a_host_path(tmp_path: Path) -> None:
    clock = VirtualClock()
    store = _store("memory", tmp_path)
    ex = LocalExecutor(tmp_path / "state", clock=clock)
    rec = Reconciler(store, ex, clock, greedy_fastest, round_seconds=60.0)
    shutil.rmtree(ex.log_dir)
    ex.log_dir.write_text("not a directory")  # the log dir cannot be made
    store.submit(Job("j", scale=1), {"h100": 1.0}, RunSpec("echo hi"))
    try:
        rec.step()
        j = store.jobs["j"]
        assert j.status.state is JobState.QUEUED, j.reason  # requeued: it waits, it is not failed
        lines = " ".join(why for _, _, why in j.events)
        assert "the executor could not" in lines and str(tmp_path) not in lines, lines
        assert not any(c.job == "j" for c in store.charges)
        ex.log_dir.unlink()  # the operator repairs it: the job runs
        clock.advance(60.0)
        rec.step()
        assert store.jobs["j"].status.state is JobState.RUNNING
    finally:
        ex.close()


def test_a_start_over_a_live_run_of_the_job_is_refused_and_leaves_its_files(tmp_path: Path) -> None:
    """A second executor on the same state dir (a second scheduler) must not delete a live run's dir."""
    from accelpool.core.rounds import Placement
    from accelpool.ports import ExecutorFault, Launch

    first = LocalExecutor(tmp_path / "state")
    launch = Launch(Job("j", scale=1), Placement("j", "h100", (("n0", (0,)),)), RunSpec("sleep 30"), 1.0)
    first.start(launch)
    second = LocalExecutor(tmp_path / "other")
    second.jobs_dir = first.jobs_dir  # the same jobs dir, not adopted (the race the lock should prevent)
    try:
        with pytest.raises(ExecutorFault, match="still alive"):
            second._launch(launch)
        assert (first.jobs_dir / "j" / "state.json").exists() and first.active() == {"j"}
    finally:
        first.stop("j", "test over")
        deadline = time.monotonic() + 30
        while first.active() and time.monotonic() < deadline:
            first.poll()
            time.sleep(0.05)
        first.close()
        second.close()


def test_the_log_header_counts_attempts_as_the_store_does_after_a_restart(tmp_path: Path) -> None:
    clock = VirtualClock()
    store = _store("sqlite", tmp_path)
    ex = LocalExecutor(tmp_path / "state", clock=clock)
    rec = Reconciler(store, ex, clock, greedy_fastest, round_seconds=60.0)
    store.submit(Job("j", scale=1, preemptible=True), {"h100": 1.0}, RunSpec("sleep 30"))
    try:
        rec.step()
        ex.stop("j", "test: the node went away")
        deadline = time.monotonic() + 30
        while ex.active() and time.monotonic() < deadline:
            ex.ack(ex.poll())
            time.sleep(0.05)
        ex.close()
        store.record_events([ExecutorEvent("j", EventKind.LOST, clock.now(), reason="lost: test")])
        ex = LocalExecutor(tmp_path / "state", clock=clock)  # a scheduler restart
        rec = Reconciler(store, ex, clock, greedy_fastest, round_seconds=60.0)
        clock.advance(60.0)
        rec.step()  # placed again: the store's second attempt, this reconciler's first start
        assert store.get_job("j").attempts == 2
        assert "=== accelpool: attempt 2 on" in ex.logs("j"), ex.logs("j")
    finally:
        for j in ex.active():
            ex.stop(j, "test over")
        ex.close()
        store.close()


class RefusesJob:
    """The store, whose record_events raises whenever the events hold one of job ``bad``'s (a poison row)."""

    def __init__(self, store: Any, bad: str) -> None:
        self.store, self.bad = store, bad

    def record_events(self, events: Sequence[ExecutorEvent]) -> Any:
        if any(e.job == self.bad for e in events):
            raise RuntimeError(f"cannot record {self.bad}")
        return self.store.record_events(events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_events_the_store_refuses_keep_back_only_their_own_job(tmp_path) -> None:
    """One job's events the store will not take do not keep another job's end from being recorded and
    acked; the refused ones are kept (and the service's audit leaves their job be) until they are taken."""
    clock = VirtualClock()
    inner = _store("sqlite", tmp_path)
    inner.add_nodes([Node("n1", "h100", 1)])
    ex = LocalExecutor(tmp_path / "state", clock=clock)
    rec = Reconciler(inner, ex, clock, greedy_fastest, round_seconds=60.0)
    for j in ("good", "bad"):
        inner.submit(Job(j, scale=1), {"h100": 1.0}, RunSpec("exit 0"))
    try:
        rec.step()  # t=0: both start
        assert ex.active() == {"good", "bad"}
        _wait_exit(ex, "good")
        _wait_exit(ex, "bad")
        rec.store = RefusesJob(inner, "bad")  # type: ignore[assignment]
        clock.advance(60.0)
        rec.step()  # the round goes on for everyone else
        assert _state(inner, "good")[0] is JobState.SUCCEEDED
        assert (ex.jobs_dir / "good" / "state.done.json").exists()  # recorded, so acked
        assert _state(inner, "bad")[0] is JobState.RUNNING
        assert (ex.jobs_dir / "bad" / "state.json").exists()  # kept
        assert rec.unrecorded_jobs == {"bad"}
        for _ in range(3):  # refused again, in the plain form too: kept, and not billed past its end
            clock.advance(60.0)
            rec.step()
            assert rec.unrecorded_jobs == {"bad"} and _state(inner, "bad")[:2] == (JobState.RUNNING, 0)
        rec.store = inner
        clock.advance(60.0)
        rec.step()
        assert _state(inner, "bad")[:2] == (JobState.SUCCEEDED, 60)  # billed up to its end, as polled
        assert rec.unrecorded_jobs == set()
    finally:
        ex.close()
        inner.close()


class RefusesReports:
    """The store, refusing every event of job ``bad`` but in the reconciler's plain form (a report of the
    executor it cannot keep, as PostgreSQL could not keep a NUL in a reason)."""

    def __init__(self, store: Any, bad: str) -> None:
        self.store, self.bad, self.refused = store, bad, 0

    def record_events(self, events: Sequence[ExecutorEvent]) -> Any:
        plain = all(e.steps is None and "could not be recorded" in e.reason for e in events if e.reason)
        if any(e.job == self.bad for e in events) and not plain:
            self.refused += 1
            raise ValueError("the report cannot be kept")
        return self.store.record_events(events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_poison_report_goes_in_a_plain_form_and_the_pool_goes_on(kind, tmp_path) -> None:
    """A job's report the store never takes (a review: a NUL in a reason, on PostgreSQL) used to fail every
    round: nothing else was scheduled again. Now the round goes on, a job queued meanwhile starts on the
    ended job's device (never preempting it: that billed its run to the round and requeued it), and after
    MAX_REFUSALS rounds the job's end is recorded in a plain form: failed with its exit code, billed up to
    its end and not for the rounds it waited."""
    clock = VirtualClock()
    inner = _store(kind, tmp_path)
    ex = LocalExecutor(tmp_path / "state", clock=clock)
    rec = Reconciler(inner, ex, clock, greedy_fastest, round_seconds=60.0)
    inner.submit(Job("bad", scale=1), {"h100": 1.0}, RunSpec("exit 3"))
    try:
        rec.step()
        _wait_exit(ex, "bad")
        store = RefusesReports(inner, "bad")
        rec.store = store  # type: ignore[assignment]
        inner.submit(Job("next", scale=1), {"h100": 1.0}, RunSpec("sleep 30"))
        for _ in range(MAX_REFUSALS - 1):
            clock.advance(60.0)
            rec.step()  # the bad job has ended: its device goes to the next one, and it is never preempted
            assert rec.unrecorded_jobs == {"bad"} and _state(inner, "bad") == (JobState.RUNNING, 0, 0)
            assert "next" in ex.active()
        clock.advance(60.0)
        rec.step()  # the third refusal: recorded in the plain form
        assert rec.unrecorded_jobs == set() and store.refused >= MAX_REFUSALS
        state, billed, _ = _state(inner, "bad")
        assert (state, billed) == (JobState.FAILED, 60)
        assert (ex.jobs_dir / "bad" / "state.done.json").exists()  # acked: the executor forgets it
        if kind == "sqlite":
            view = inner.get_job("bad")
            assert "could not be recorded (ValueError)" in view.reason, view
        assert _state(inner, "bad")[2] == 0  # never preempted (nor requeued to run again)
    finally:
        ex.close()
        if kind == "sqlite":
            inner.close()


class FailsBatchOnce:
    """The store, whose first record of more than one job's events fails (transiently), or with a database
    error (``OperationalError``: a lock held past its wait) when ``locked``."""

    def __init__(self, store: Any, locked: bool = False) -> None:
        self.store, self.locked, self.calls = store, locked, 0

    def record_events(self, events: Sequence[ExecutorEvent]) -> Any:
        self.calls += 1
        if len({e.job for e in events}) > 1 and self.calls == 1:
            if self.locked:
                raise sqlite3.OperationalError("database is locked")
            raise RuntimeError("transient")
        return self.store.record_events(events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.mark.parametrize("locked", [False, True])
def test_a_failed_batch_is_split_only_for_the_stores_refusals(locked, tmp_path) -> None:
    """Split by job and all recorded: the round goes on. A database error (the lock held past its wait) is
    not split, where every job's record would wait for the lock again: the round fails with all kept."""
    clock = VirtualClock()
    inner = _store("memory", tmp_path)
    inner.add_nodes([Node("n1", "h100", 1)])
    ex = LocalExecutor(tmp_path / "state", clock=clock)
    rec = Reconciler(inner, ex, clock, greedy_fastest, round_seconds=60.0)
    for j in ("a", "b"):
        inner.submit(Job(j, scale=1), {"h100": 1.0}, RunSpec("exit 0"))
    try:
        rec.step()
        _wait_exit(ex, "a")
        _wait_exit(ex, "b")
        store = FailsBatchOnce(inner, locked)
        rec.store = store  # type: ignore[assignment]
        clock.advance(60.0)
        if locked:
            with pytest.raises(Exception, match="locked"):
                rec.step()
            assert store.calls == 1 and rec.unrecorded_jobs == {"a", "b"}
            rec.step()
        else:
            rec.step()  # no raise
            assert store.calls == 3
        assert rec.unrecorded_jobs == set()
        assert {_state(inner, j)[0] for j in ("a", "b")} == {JobState.SUCCEEDED}
    finally:
        ex.close()
