"""A grant pays only within its period and its program's (core/periods.py): the scheduler holds a job whose
grant has not started or has ended, and stops a running one at its lease boundary, saying why (an
operator's test: a program's start and end were never read; jobs ran and were charged on a grant whose
program had ended)."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from accelpool.core.periods import closed, open_grants
from accelpool.core.policies import POLICIES
from accelpool.core.rounds import JobStatus, Placement, Snapshot, decide
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Grant, Job, JobState, Node, Program, WaitReason

NOW = 1_000_000.0
PRICE = {"h100": 3600}


def snap(grant: Grant, program: Program, *, running: bool = False) -> Snapshot:
    job = Job("j", tenant="lab", grant=grant.id, submit_time=0.0)
    if running:
        status = JobStatus(
            job,
            JobState.RUNNING,
            Placement("j", "h100", (("h-0", (0,)),)),
            metered_until=NOW,
            carry=Fraction(0),
        )
    else:
        status = JobStatus(job, JobState.QUEUED)
    tput = ThroughputMatrix.from_rows({"j": {"h100": 1.0}}, ("h100",))
    return Snapshot(
        NOW,
        (Node("h-0", "h100", 8),),
        (status,),
        tput,
        programs=(program,),
        grants=(grant,),
        prices_krw_per_hour=PRICE,
        run_started={"j": 0.0} if running else {},
    )


OPEN = Program("p", "p", budget_krw=10**9)
CASES = [
    (Grant("g", "p", "lab", 10**8, end=NOW - 1), OPEN, "grant g ended at"),
    (Grant("g", "p", "lab", 10**8, start=NOW + 3600), OPEN, "grant g starts at"),
    (Grant("g", "p", "lab", 10**8), Program("p", "p", budget_krw=10**9, end=NOW), "program p ended at"),
    (
        Grant("g", "p", "lab", 10**8),
        Program("p", "p", budget_krw=10**9, start=NOW + 1),
        "program p starts at",
    ),
]


@pytest.mark.parametrize(("grant", "program", "why"), CASES)
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_job_whose_grant_cannot_pay_now_waits_and_says_why(grant, program, why, policy):
    d = decide(snap(grant, program), POLICIES[policy])
    assert d.placements() == () or not d.placements()
    assert d.waiting == {"j": WaitReason.BUDGET}
    assert why in str(d.details["j"]), d.details["j"]


@pytest.mark.parametrize(("grant", "program", "why"), CASES[:1] + CASES[2:3])
def test_a_running_job_is_stopped_at_the_lease_boundary_when_its_grant_period_is_over(grant, program, why):
    d = decide(snap(grant, program, running=True), POLICIES["max-min-fairness"])
    assert [(j, r.split(":")[0]) for j, r in d.preempt] == [("j", "grant period over")]
    assert why in dict(d.preempt)["j"]


def test_an_open_grant_leaves_the_snapshot_as_it_is_and_the_job_runs():
    s = snap(
        Grant("g", "p", "lab", 10**8, start=NOW - 10, end=NOW + 10), Program("p", "p", 10**9, end=NOW + 5)
    )
    assert open_grants(s) is s
    assert [p.job for p in decide(s, POLICIES["fifo"]).placements()] == ["j"]


def test_closed_names_the_first_limit_that_applies():
    g = Grant("g", "p", "lab", 1, start=10.0, end=20.0)
    p = Program("p", "p", 1, start=0.0, end=15.0)
    assert closed(g, p, 5.0) == "grant g starts at 1970-01-01 00:00 UTC"
    assert closed(g, p, 12.0) is None
    assert closed(g, p, 16.0).startswith("program p ended at")  # type: ignore[union-attr]
    assert closed(g, p, 20.0).startswith("grant g ended at")  # type: ignore[union-attr]


def _whole(grant: Grant, program: Program, *, preemptible: bool = False, run: float = 7200.0) -> Snapshot:
    job = Job(
        "j", tenant="lab", grant=grant.id, submit_time=0.0, preemptible=preemptible, max_run_seconds=run
    )
    return Snapshot(
        NOW,
        (Node("h-0", "h100", 8),),
        (JobStatus(job, JobState.QUEUED),),
        ThroughputMatrix.from_rows({"j": {"h100": 1.0}}, ("h100",)),
        programs=(program,),
        grants=(grant,),
        prices_krw_per_hour=PRICE,
    )


@pytest.mark.parametrize(
    ("grant", "program", "why"),
    [
        (Grant("g", "p", "lab", 10**8, end=NOW + 3600), OPEN, "grant g ends at"),
        (Grant("g", "p", "lab", 10**8), Program("p", "p", 10**9, end=NOW + 3600), "program p ends at"),
        (  # the earlier of the two ends
            Grant("g", "p", "lab", 10**8, end=NOW + 5000),
            Program("p", "p", 10**9, end=NOW + 3600),
            "program p ends at",
        ),
    ],
)
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_job_that_may_not_be_stopped_is_blocked_when_its_grant_ends_before_its_max_run_time(
    grant, program, why, policy
):
    # a review's find: a job that is not preemptible, with a 2 h max_run_time, started 1 h before its grant
    # ended and ran on past the end (its whole run set aside, it is never stopped for money), charged to a
    # grant whose period was over
    d = decide(_whole(grant, program), POLICIES[policy])
    assert not d.placements()
    assert d.waiting == {"j": WaitReason.BUDGET}
    text = str(d.details["j"])
    assert text.startswith("blocked (budget)") and why in text and "max_run_time (2.0 h)" in text, text
    assert "may not be stopped starts only when its whole run fits in its grant's period" in text


@pytest.mark.parametrize(("preemptible", "run"), [(True, 7200.0), (False, 3600.0), (False, 1800.0)])
def test_a_preemptible_job_or_one_whose_run_ends_in_time_starts(preemptible, run):
    s = _whole(Grant("g", "p", "lab", 10**8, end=NOW + 3600), OPEN, preemptible=preemptible, run=run)
    assert [p.job for p in decide(s, POLICIES["max-min-fairness"]).placements()] == ["j"]


def test_the_grants_made_for_closed_grants_stay_the_same_object_from_round_to_round():
    # a review's find: with any grant closed, every round made a new grants tuple, so the quiet-round check
    # (which compares the grants by identity first) compared every grant every round
    from accelpool.core.rounds import DecideCache

    s = snap(Grant("g", "p", "lab", 10**8, end=NOW - 1), OPEN)
    cache = DecideCache()
    first = open_grants(s, cache)
    later = open_grants(dataclasses.replace(s, now=NOW + 360), cache)
    assert first.grants is later.grants and first.grants[0].remaining_krw == 0
    other = open_grants(snap(Grant("g", "p", "lab", 10**8, end=NOW - 1), OPEN), cache)  # other grants
    assert other.grants is not first.grants and other.grants == first.grants
