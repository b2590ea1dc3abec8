"""Two of a review's failures between a round's parts. (1) ``record_decision`` commits the preemptions and
starts, then writes the wait reasons and the queue view in further transactions; one of those meeting a
lock held past its wait raised out of the round before it acted: the preempted job ran on, unbilled, and
the next round's start of it failed the tenant's job as "already running". (2) With the local executor's
jobs dir removed, a stop raised before its SIGTERM and the reaper thread died on its SIGKILL: a cancelled
job kept its device."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import time
from pathlib import Path

from tests.helpers import greedy_fastest

from accelpool.core.types import Job, JobState, Node
from accelpool.executors.local import LocalExecutor
from accelpool.ports import RunSpec
from accelpool.runtime.clock import SystemClock
from accelpool.runtime.reconciler import Reconciler
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore


def _world(tmp_path: Path) -> tuple[SqlStore, LocalExecutor, Reconciler]:
    clock = SystemClock()
    store = SqlStore(sqlite_url(tmp_path / "s.sqlite"))
    store.add_nodes([Node("n0", "h100", 1)])
    store.set_prices({"h100": 3600})
    ex = LocalExecutor(tmp_path / "state", clock=clock)
    return store, ex, Reconciler(store, ex, clock, greedy_fastest, round_seconds=5.0)


def _gone(pids: list[int], timeout: float = 20.0) -> bool:
    deadline = time.time() + timeout
    while any(
        os.path.exists(f"/proc/{p}") and "Z" not in Path(f"/proc/{p}/stat").read_text().split(")")[-1][:3]
        for p in pids
    ):
        if time.time() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_a_lock_on_the_wait_reasons_does_not_keep_the_round_from_acting(tmp_path: Path) -> None:
    store, ex, rec = _world(tmp_path)
    store.submit(Job("J", scale=1), {"h100": 1.0}, RunSpec("sleep 1000", grace_seconds=1))
    store.submit(Job("W", scale=1), {"h100": 1.0}, RunSpec("true"))  # waits: it has a reason to write
    try:
        rec.step()
        time.sleep(1)
        decision = rec.step().decision
        billed = store.get_job("J").charged_krw

        def locked(_d):  # type: ignore[no-untyped-def]
            raise sqlite3.OperationalError("database is locked")

        store._record_queue = locked  # type: ignore[method-assign]
        preempt = dataclasses.replace(decision, keep=(), preempt=(("J", "a higher priority job"),))
        tails = store.record_decision(preempt)  # no raise: committed, so the round goes on to act on it
        del store._record_queue
        assert JobState(store.get_job("J").state) is JobState.QUEUED
        assert sum(c.amount_krw for c in tails) + (billed or 0) == store.get_job("J").charged_krw
        # the next round writes what this one could not
        rec.step()
        assert store.get_job("W").reason
    finally:
        for p in ex.pids("J"):
            os.killpg(p, 9)
        ex.close()
        store.close()


def test_a_stop_goes_on_with_the_executors_jobs_dir_removed(tmp_path: Path) -> None:
    store, ex, rec = _world(tmp_path)
    store.submit(Job("J", scale=1), {"h100": 1.0}, RunSpec("trap '' TERM; sleep 1000", grace_seconds=1))
    try:
        rec.step()
        time.sleep(1)
        rec.step()
        pids = ex.pids("J")
        shutil.rmtree(ex.jobs_dir)  # a clean-up of the state dir, or the disk full on the state write
        ex.stop("J", "cancelled")  # no raise: the signal first, the state file best effort
        assert _gone(pids), "the run survived its stop (SIGTERM ignored: the reaper's SIGKILL must come)"
        assert ex._reaper.is_alive()
    finally:
        for p in ex.pids("J"):
            try:
                os.killpg(p, 9)
            except ProcessLookupError:
                pass
        ex.close()
        store.close()
