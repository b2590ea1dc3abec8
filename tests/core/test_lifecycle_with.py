"""``core.lifecycle._with`` (the state changes' copy of a JobStatus without its constructor) makes the same
objects as ``dataclasses.replace``, and ``_outcome`` and ``_record`` the same as the Outcome and Record
constructors: field by field, for the changes the lifecycle makes, and for whole event sequences run
through ``apply_event`` against the module with ``replace`` and the constructors put back."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from accelpool.core import ledger, lifecycle
from accelpool.core.lifecycle import Command, EventKind, ExecutorEvent, SchedulerEvent, apply_event
from accelpool.core.rounds import JobStatus, Placement
from accelpool.core.types import Job, JobState

P = Placement("j", "v100", (("n0", (0, 1)),))
JOB = Job("j", tenant="t", grant="g", scale=2)


def _same(a: JobStatus, b: JobStatus) -> None:
    assert type(a) is type(b) is JobStatus
    assert a == b
    assert vars(a) == vars(b)
    assert list(vars(a)) == list(vars(b))  # the same fields in the same order (repr, asdict)
    assert repr(a) == repr(b)


STATUSES = [
    JobStatus(JOB, JobState.QUEUED),
    JobStatus(JOB, JobState.RUNNING, P, 3.0, {"v100": 720.0}, 1000.0, Fraction(1, 7), 990.0, 12.5),
    JobStatus(JOB, JobState.CANCELLED, P, metered_until=50.0),
]
CHANGES = [
    {"state": JobState.RUNNING, "placement": P, "metered_until": None, "carry": ledger.ZERO},
    {"placement": None},
    {"metered_until": 5.0, "attempt_started": 5.0},
    {"steps_done": 9.0},
    {"attempt_started": None, "restart_measured": 2.0},
    {
        "state": JobState.QUEUED,
        "placement": None,
        "metered_until": 7.0,
        "carry": ledger.ZERO,
        "seconds_on": {"v100": 1.0},
        "attempt_started": None,
    },
    {},
]


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("changes", CHANGES)
def test_with_equals_replace(status: JobStatus, changes: dict[str, object]) -> None:
    new = lifecycle._with(status, **changes)
    _same(new, dataclasses.replace(status, **changes))
    assert new is not status
    with pytest.raises(dataclasses.FrozenInstanceError):
        new.state = JobState.FAILED  # type: ignore[misc]


def test_with_rejects_a_name_that_is_not_a_field() -> None:
    with pytest.raises(TypeError):
        lifecycle._with(STATUSES[0], stat=JobState.RUNNING)


def test_job_status_has_nothing_replace_would_run_or_drop() -> None:
    """What makes the copy equal to ``replace``: no ``__post_init__`` to run, every field in ``__init__``,
    no slots, nothing else kept in the instance's dict (a cached property would be copied, not dropped)."""
    assert not hasattr(JobStatus, "__post_init__")
    assert all(f.init for f in dataclasses.fields(JobStatus))
    assert "__slots__" not in vars(JobStatus)
    assert set(vars(STATUSES[1])) == {f.name for f in dataclasses.fields(JobStatus)}


def _sequences() -> list[list[lifecycle.Event]]:
    place = SchedulerEvent("j", Command.PLACE, 10.0, placement=P)
    started = ExecutorEvent("j", EventKind.STARTED, 12.0)
    return [
        [place, started, ExecutorEvent("j", EventKind.PROGRESS, 20.0, steps=4.0),
         ExecutorEvent("j", EventKind.EXITED, 400.0, exit_code=0)],
        [place, started, SchedulerEvent("j", Command.PREEMPT, 380.0, "priority"), place,
         ExecutorEvent("j", EventKind.PROGRESS, 500.0, steps=1.0), ExecutorEvent("j", EventKind.LOST, 700.0)],
        [place, SchedulerEvent("j", Command.CANCEL, 11.0, "user"), started],
        [place, SchedulerEvent("j", Command.CANCEL, 11.0, "user"), ExecutorEvent("j", EventKind.EXITED, 13.0)],
        [place, started, ExecutorEvent("j", EventKind.EXITED, 99.5, exit_code=2)],
        [place, ExecutorEvent("j", EventKind.PROGRESS, 30.0, steps=2.0), SchedulerEvent("j", Command.CANCEL, 40.0)],
    ]  # fmt: skip


@pytest.mark.parametrize("events", _sequences())
def test_apply_event_gives_the_same_outcomes_as_with_replace(
    events: list[lifecycle.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    def run() -> list[lifecycle.Outcome]:
        status, outs = JobStatus(JOB, JobState.QUEUED), []
        for e in events:
            out = apply_event(status, e, 3600)
            outs.append(out)
            status = out.status
        return outs

    fast = run()
    monkeypatch.setattr(lifecycle, "_with", dataclasses.replace)
    monkeypatch.setattr(lifecycle, "_outcome", lifecycle.Outcome)
    monkeypatch.setattr(lifecycle, "_record", lifecycle.Record)
    slow = run()
    assert fast == slow
    for a, b in zip(fast, slow, strict=True):
        _same(a.status, b.status)
        assert repr(a) == repr(b)
        assert list(vars(a)) == list(vars(b)) and a.records == b.records
        assert [vars(r) for r in a.records] == [vars(r) for r in b.records]


def test_outcome_and_record_equal_their_constructors() -> None:
    for cls in (lifecycle.Outcome, lifecycle.Record):
        assert not hasattr(cls, "__post_init__")
        assert all(f.init for f in dataclasses.fields(cls))
    rec = lifecycle._record(5.0, JobState.PREEMPTED, "priority", lifecycle.StopCause.PREEMPTED)
    assert vars(rec) == vars(
        lifecycle.Record(5.0, JobState.PREEMPTED, "priority", lifecycle.StopCause.PREEMPTED)
    )
    assert vars(lifecycle._record(1.0, JobState.QUEUED, "x")) == vars(
        lifecycle.Record(1.0, JobState.QUEUED, "x")
    )
    s = STATUSES[1]
    for args, kw in [
        ((s,), {}),
        ((s,), {"applied": False}),
        ((s, (), (rec,)), {"preemptions": 1}),
        (
            (s,),
            {
                "started_at": 3.0,
                "ended_at": 4.0,
                "attempts": 1,
                "ended": True,
                "hold_krw": 0,
                "stop_process": True,
            },
        ),
    ]:
        fast, slow = lifecycle._outcome(*args, **kw), lifecycle.Outcome(*args, **kw)  # type: ignore[arg-type]
        assert fast == slow and vars(fast) == vars(slow) and list(vars(fast)) == list(vars(slow))
        assert repr(fast) == repr(slow) and fast.reason == slow.reason
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast.applied = False  # type: ignore[misc]
