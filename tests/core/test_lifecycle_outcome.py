"""The core says what each event means for the store, so no store decides it from the job's state: whether the
event applied, whether the job left the active jobs and its hold on its grant was released, whether a process
must be stopped, and how many runs were placed."""

from __future__ import annotations

from fractions import Fraction

import pytest

from accelpool.core.lifecycle import Command, EventKind, ExecutorEvent, SchedulerEvent, apply_event
from accelpool.core.rounds import JobStatus, Placement
from accelpool.core.types import Job, JobState

P = Placement("j", "h100", (("n0", (0,)),))


def _status(state: JobState, mark: float | None = 10.0) -> JobStatus:
    placed = state is JobState.RUNNING
    return JobStatus(
        Job("j", tenant="t", grant="g"), state, P if placed else None, metered_until=mark, carry=Fraction(0)
    )


def test_a_place_applies_once_and_counts_one_attempt():
    place = SchedulerEvent("j", Command.PLACE, 5.0, placement=P)
    out = apply_event(_status(JobState.QUEUED, None), place)
    assert (out.applied, out.attempts, out.ended, out.hold_krw) == (True, 1, False, None)
    again = apply_event(out.status, place)
    assert (again.applied, again.attempts) == (False, 0)  # no longer queued: a store skips the start
    cancelled = apply_event(_status(JobState.CANCELLED, None), place)
    assert not cancelled.applied and cancelled.status.state is JobState.CANCELLED


@pytest.mark.parametrize(
    ("state", "event", "stop"),
    [
        (JobState.RUNNING, SchedulerEvent("j", Command.CANCEL, 20.0), True),
        (JobState.QUEUED, SchedulerEvent("j", Command.CANCEL, 20.0), False),
        (JobState.RUNNING, ExecutorEvent("j", EventKind.EXITED, 20.0, exit_code=0), False),
        (JobState.RUNNING, ExecutorEvent("j", EventKind.EXITED, 20.0, exit_code=3), False),
    ],
)
def test_an_event_that_ends_a_job_releases_its_hold_and_says_whether_to_stop_it(state, event, stop):
    out = apply_event(_status(state), event, 3600)
    assert out.status.state.terminal
    assert (out.applied, out.ended, out.hold_krw, out.stop_process) == (True, True, 0, stop)


@pytest.mark.parametrize(
    "event",
    [
        SchedulerEvent("j", Command.PREEMPT, 20.0, "priority"),
        ExecutorEvent("j", EventKind.LOST, 20.0),
        ExecutorEvent("j", EventKind.PROGRESS, 20.0, steps=3.0),
    ],
)
def test_an_event_that_keeps_a_job_active_keeps_its_hold(event):
    out = apply_event(_status(JobState.RUNNING), event, 3600)
    assert not out.status.state.terminal
    assert (out.ended, out.hold_krw, out.stop_process) == (False, None, False)


def test_a_finished_job_takes_no_command():
    for cmd in Command:
        out = apply_event(_status(JobState.SUCCEEDED, None), SchedulerEvent("j", cmd, 30.0, placement=P))
        assert (out.applied, out.ended, out.stop_process) == (False, False, False)
