"""A reason is text every store keeps and every page shows: an executor's report with a NUL in it (which
PostgreSQL refuses in text: a review's poison event, which failed every round) or a reason a job made
megabytes long is cleaned in the core's event types, the same for every store."""

from __future__ import annotations

from tests.helpers import greedy_fastest

from accelpool.core.lifecycle import REASON_CHARS, clean_reason
from accelpool.core.types import Job, JobState, Node
from accelpool.executors.fake import FakeExecutor
from accelpool.ports import EventKind, ExecutorEvent, RunSpec
from accelpool.runtime.clock import VirtualClock
from accelpool.runtime.reconciler import Reconciler
from accelpool.storage.sql import SqlStore


def test_control_characters_and_length_are_cleaned() -> None:
    assert clean_reason("exited with code 3") == "exited with code 3"
    assert clean_reason("a\x00b\x1b[31mc\nd\te") == "a\ufffdb\ufffd[31mc\nd\te"
    assert clean_reason("\ud800") == "\ufffd"  # a lone surrogate, which UTF-8 cannot hold
    long = clean_reason("x" * (REASON_CHARS * 10))
    assert long == "x" * REASON_CHARS + " [cut]"
    assert ExecutorEvent("j", EventKind.EXITED, 1.0, reason="a\x00b").reason == "a\ufffdb"
    assert ExecutorEvent("j", EventKind.EXITED, 1.0, reason="정상 종료").reason == "정상 종료"


def test_a_reason_with_a_nul_is_recorded_on_every_store(sql_store: SqlStore) -> None:
    sql_store.add_nodes([Node("n1", "h100", 1)])
    sql_store.submit(Job("a", scale=1), {"h100": 1.0}, RunSpec("exit 0"))
    clock = VirtualClock()
    Reconciler(sql_store, FakeExecutor(clock), clock, greedy_fastest, round_seconds=60).step()
    sql_store.record_events([ExecutorEvent("a", EventKind.EXITED, 10.0, exit_code=1, reason="bad\x00reason")])
    view = sql_store.get_job("a")
    assert JobState(view.state) is JobState.FAILED and view.reason == "bad\ufffdreason"
