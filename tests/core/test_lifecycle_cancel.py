"""A cancel that reaches a job after a round has billed it past the cancel's own clock reading takes effect at
the job's mark: the history never shows the job cancelled while charges still run on (torture: cancel race)."""

from __future__ import annotations

from fractions import Fraction

from accelpool.core.lifecycle import Command, SchedulerEvent, apply_event
from accelpool.core.rounds import JobStatus, Placement
from accelpool.core.types import Job, JobState

PRICE = 3600  # 1 KRW per device-second


def _running(mark: float) -> JobStatus:
    p = Placement("j", "h100", (("n0", (0, 1)),))
    return JobStatus(
        Job("j", tenant="t", scale=2), JobState.RUNNING, p, metered_until=mark, carry=Fraction(0)
    )


def test_a_cancel_read_before_a_later_mark_takes_effect_at_the_mark_and_bills_nothing_more():
    out = apply_event(_running(mark=101.0), SchedulerEvent("j", Command.CANCEL, 100.0, "cancelled"), PRICE)
    assert out.status.state is JobState.CANCELLED
    assert [r.time for r in out.records] == [101.0]
    assert all(c.end <= 101.0 for c in out.charges)
    assert sum(c.amount_krw for c in out.charges) == 0


def test_a_cancel_after_the_mark_bills_the_tail_up_to_the_cancel():
    out = apply_event(_running(mark=100.0), SchedulerEvent("j", Command.CANCEL, 103.0, "cancelled"), PRICE)
    assert [r.time for r in out.records] == [103.0]
    assert [(c.start, c.end, c.amount_krw) for c in out.charges] == [(100.0, 103.0, 6)]


def test_a_slice_proposed_for_a_job_cancelled_meanwhile_books_nothing_even_from_its_mark():
    from dataclasses import replace

    from accelpool.core import ledger
    from accelpool.core.types import Charge

    cancelled = replace(_running(mark=100.0), state=JobState.CANCELLED)
    slice_ = Charge("j", "t", None, "h100", 2.0, 0, 100.0, 101.0)
    assert ledger.book_charge(cancelled, slice_, PRICE) is None


def test_a_cancelled_job_ends_when_the_cancel_takes_effect():
    # its end time is the cancel's (queued or running), as for a job that finished: reports and `show` need it
    queued = JobStatus(Job("j", tenant="t", scale=2), JobState.QUEUED, None)
    out = apply_event(queued, SchedulerEvent("j", Command.CANCEL, 50.0, "cancelled"), PRICE)
    assert out.status.state is JobState.CANCELLED and out.ended_at == 50.0
    out = apply_event(_running(mark=100.0), SchedulerEvent("j", Command.CANCEL, 103.0, "cancelled"), PRICE)
    assert out.ended_at == 103.0
    out = apply_event(_running(mark=101.0), SchedulerEvent("j", Command.CANCEL, 100.0, "cancelled"), PRICE)
    assert out.ended_at == 101.0  # at the job's mark, as its record
