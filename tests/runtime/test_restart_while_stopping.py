"""A preempted job placed again while its old run still checkpoints waits in the local executor's memory
(its next launch starts once the old run ends). A scheduler killed then lost that launch, and the new
executor adopted the old run and reported it STARTED at the old run's start: the store, which had placed
the job again, billed the new placement from before it, twice over, and on while nothing ran (a review:
23 KRW for 5 s of work). A run being stopped is no longer reported STARTED when adopted."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from tests.helpers import greedy_fastest

from accelpool.core.types import Job, JobState, Node
from accelpool.executors.local import LocalExecutor
from accelpool.ports import EventKind, RunSpec
from accelpool.runtime.clock import SystemClock
from accelpool.runtime.reconciler import Reconciler
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore

CHECKPOINT = "trap 'sleep 4; exit 0' TERM; sleep 1000 & wait; sleep 4"  # 4 s to save on SIGTERM


def test_a_stopping_run_adopted_after_a_kill_bills_nothing_more(tmp_path: Path) -> None:
    clock = SystemClock()
    store = SqlStore(sqlite_url(tmp_path / "s.sqlite"))
    store.add_nodes([Node("n0", "h100", 1)])
    store.set_prices({"h100": 3600})  # 1 KRW per second
    ex = LocalExecutor(tmp_path / "state", clock=clock)
    rec = Reconciler(store, ex, clock, greedy_fastest, round_seconds=5.0)
    store.submit(Job("J", scale=1), {"h100": 1.0}, RunSpec(CHECKPOINT, grace_seconds=30))
    ex2 = None
    try:
        rec.step()
        time.sleep(1.5)
        rec.step()  # records STARTED
        time.sleep(1.0)
        d = rec.step().decision  # a lease boundary preempts J: the round records it, then stops the run
        store.record_decision(
            dataclasses.replace(d, start=(), keep=(), preempt=(("J", "lease"),), waiting={}, positions={})
        )
        ex.stop("J", "lease")
        billed = store.get_job("J").charged_krw
        assert billed is not None and billed > 0
        assert [p.job for p in rec.step().decision.start] == ["J"]  # placed again; its launch waits
        assert ex._jobs["J"].pending is not None
        ex.close()  # the scheduler is killed: the old run goes on checkpointing, the waiting launch is gone
        ex2 = LocalExecutor(tmp_path / "state", clock=clock)
        assert not [e for e in ex2.poll() if e.kind is EventKind.STARTED]
        rec2 = Reconciler(store, ex2, clock, greedy_fastest, round_seconds=5.0)
        rec2.recover()
        deadline = time.time() + 30
        while "J" in ex2.active():
            assert time.time() < deadline, "the old run never ended"
            rec2.step()
            time.sleep(0.5)
        for _ in range(3):
            rec2.step()
            time.sleep(0.5)
        v = store.get_job("J")
        assert v.charged_krw == billed, (billed, v)  # nothing for the run that never started
        assert JobState(v.state) is JobState.RUNNING  # placed, not started: the service's audit requeues it
    finally:
        ex.close()
        if ex2 is not None:
            ex2.close()
        store.close()
