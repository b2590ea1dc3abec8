"""Money and the preemption contract (issue 10): a job that is not preemptible and has a max_run_time
starts only when its grant can pay its whole run, which stays set aside while it runs, so it is never
stopped for money; one without a max_run_time is stopped when its grant cannot pay the next lease
("grant exhausted", the one exception to the contract)."""

from __future__ import annotations

from accelpool.core.policies import get_policy
from accelpool.core.rounds import DecideCache, JobStatus, Placement, Snapshot, decide
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Grant, Job, JobState, Node, WaitReason

POLICY = get_policy("max-min-fairness")
NODES = (Node("n0", "h100", 1), Node("n1", "h100", 1))
PRICE = {"h100": 1000}  # KRW per device-hour: a 360 s lease of one device costs 100 KRW


def snap(statuses, balance: int, *, now: float, boundary: bool, started=None) -> Snapshot:
    tput = ThroughputMatrix.from_rows({s.job.id: {"h100": 1.0} for s in statuses}, ("h100",))
    return Snapshot(
        now,
        NODES,
        tuple(statuses),
        tput,
        grants=(Grant("g", "p", "default", amount_krw=balance),),
        prices_krw_per_hour=PRICE,
        round_seconds=3.0,
        lease_boundary=boundary,
        run_started=started or {},
        lease_end=now + 360.0 if boundary else now + 100.0,
    )


def running(job: Job, node: str = "n0") -> JobStatus:
    return JobStatus(job, JobState.RUNNING, Placement(job.id, "h100", ((node, (0,)),)))


def test_a_non_preemptible_job_with_max_run_time_starts_only_when_its_whole_run_is_paid() -> None:
    job = Job("a", grant="g", max_run_seconds=3600.0)  # a whole run costs 1,000 KRW
    d = decide(snap([JobStatus(job, JobState.QUEUED)], 999, now=0.0, boundary=True), POLICY)
    assert d.start == () and d.waiting["a"] is WaitReason.BUDGET
    assert d.details["a"].startswith("blocked (budget): ")  # nothing else of g runs: it can never start
    d = decide(snap([JobStatus(job, JobState.QUEUED)], 1000, now=0.0, boundary=True), POLICY)
    assert [p.job for p in d.start] == ["a"]


def test_its_money_stays_set_aside_and_it_is_never_stopped_for_money() -> None:
    """At 1,800 s, half of a's run is left (500 KRW): b's lease (100 KRW) does not fit in 550 KRW - 500."""
    a = running(Job("a", grant="g", max_run_seconds=3600.0))
    b = JobStatus(Job("b", grant="g", preemptible=True, submit_time=1.0), JobState.QUEUED)
    d = decide(snap([a, b], 550, now=1800.0, boundary=True, started={"a": 0.0}), POLICY)
    assert [p.job for p in d.keep] == ["a"] and d.start == () and d.waiting["b"] is WaitReason.BUDGET
    d = decide(snap([a, b], 600, now=1800.0, boundary=True, started={"a": 0.0}), POLICY)
    assert [p.job for p in d.start] == ["b"]
    # even when its grant has less left than the rest of its run (spent elsewhere), a is kept at a boundary
    d = decide(snap([a], 10, now=1800.0, boundary=True, started={"a": 0.0}), POLICY)
    assert [p.job for p in d.keep] == ["a"] and d.preempt == ()


def test_a_non_preemptible_job_without_max_run_time_is_stopped_when_its_grant_is_exhausted() -> None:
    a = running(Job("a", grant="g"))
    d = decide(snap([a], 99, now=720.0, boundary=True, started={"a": 0.0}), POLICY)
    assert d.preempt == (("a", "grant exhausted"),)
    d = decide(snap([a], 99, now=723.0, boundary=False, started={"a": 0.0}), POLICY)  # a tick: kept
    assert [p.job for p in d.keep] == ["a"] and d.preempt == ()


def test_a_non_preemptible_job_whose_grant_can_never_pay_its_whole_run_is_blocked() -> None:
    """Its grant was spent down after submission: 999 KRW left, its run costs 1,000 KRW. Nothing of the grant
    runs, so it cannot start as things stand: blocked, with both figures, and no place in the queue (a job
    behind it is first); on a tick as at a boundary. Topped up, it is queued and starts again."""
    a = JobStatus(Job("a", grant="g", max_run_seconds=3600.0), JobState.QUEUED)
    other = Job("c", grant=None, submit_time=1.0)
    busy = running(Job("b", submit_time=0.5), "n0")
    cache = DecideCache()  # the rows of such jobs are kept while the job set is the same
    for boundary in (True, False, True):
        d = decide(
            snap([busy, a, JobStatus(other, JobState.QUEUED)], 999, now=10.0, boundary=boundary),
            POLICY,
            cache,
        )
        assert d.waiting["a"] is WaitReason.BUDGET and "a" not in d.positions, boundary
        assert d.details["a"] == (
            "blocked (budget): needs 1 x h100; grant g has 999 KRW left and its max_run_time (60 min) costs "
            "at least 1000 KRW, set aside when it starts (it is not preemptible)"
        )
        assert [p.job for p in d.start] == ["c"] and d.queue.spot("a") is None
        assert d.allocation.x[list(d.allocation.job_ids).index("a")].sum() == 0.0  # no share wasted on it
    d = decide(
        snap([busy, a, JobStatus(other, JobState.QUEUED)], 1000, now=10.0, boundary=False), POLICY, cache
    )
    assert [p.job for p in d.start] == ["a"]  # topped up: queued again, first in fair order


def test_a_job_that_waits_for_its_grants_running_jobs_keeps_its_place() -> None:
    """1,500 KRW left, of which a running job of the grant sets aside 1,000: the queued job's run (1,000 KRW)
    is paid once that job ends, so it waits with a position and the 'budget' reason, not blocked."""
    r = running(Job("r", grant="g", max_run_seconds=3600.0), "n0")
    q = JobStatus(Job("q", grant="g", max_run_seconds=3600.0, submit_time=1.0), JobState.QUEUED)
    d = decide(snap([r, q], 1500, now=0.0, boundary=True, started={"r": 0.0}), POLICY)
    assert d.waiting["q"] is WaitReason.BUDGET and d.positions["q"] == 1
    assert d.details["q"].startswith(
        "budget: needs 1 x h100; grant g has 500 KRW left after what its running"
    )


def test_a_preemptible_job_whose_grant_cannot_pay_a_lease_is_blocked() -> None:
    """The preemptible case: it needs one lease (100 KRW) and its grant has 99 KRW: blocked, no position."""
    a = JobStatus(Job("a", grant="g", preemptible=True, max_run_seconds=3600.0), JobState.QUEUED)
    for boundary in (True, False):
        d = decide(snap([a], 99, now=0.0, boundary=boundary), POLICY)
        assert d.start == () and "a" not in d.positions
        assert (
            d.details["a"]
            == "blocked (budget): needs 1 x h100; grant g has 99 KRW left and a lease (6 min) costs 100 KRW"
        )
