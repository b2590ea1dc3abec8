"""Queue positions in the fair order, per tenant and pool, and estimated start ranges (issue 10)."""

from __future__ import annotations

from accelpool.core.policies import get_policy
from accelpool.core.round_config import RoundConfig
from accelpool.core.rounds import JobStatus, Placement, Snapshot, decide
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Job, JobState, Node, Tenant

POLICY = get_policy("max-min-fairness")


def snapshot(statuses, nodes, *, now=10.0, boundary=False, started=None, lease_end=None, tenants=()):
    tput = ThroughputMatrix.from_rows({s.job.id: {"h100": 1.0} for s in statuses}, ("h100",))
    return Snapshot(
        now,
        tuple(nodes),
        tuple(statuses),
        tput,
        tenants=tuple(tenants),
        round_seconds=3.0,
        lease_boundary=boundary,
        run_started=started or {},
        lease_end=lease_end,
    )


def running(job: Job, node: str = "n0", devices=(0,)) -> JobStatus:
    return JobStatus(job, JobState.RUNNING, Placement(job.id, "h100", ((node, tuple(devices)),)))


def queued(job: Job) -> JobStatus:
    return JobStatus(job, JobState.QUEUED)


def test_positions_follow_the_fair_order_in_the_pool_and_in_the_tenant() -> None:
    """Tenant a holds the only device and has three jobs waiting; tenant b's one job, submitted last, is
    first in the fair order (b holds nothing); a's jobs follow in their own order."""
    statuses = [
        running(Job("a-run", tenant="a", max_run_seconds=100.0)),
        queued(Job("a1", tenant="a", submit_time=1.0)),
        queued(Job("a2", tenant="a", submit_time=2.0)),
        queued(Job("a3", tenant="a", submit_time=3.0)),
        queued(Job("b1", tenant="b", submit_time=4.0)),
    ]
    d = decide(snapshot(statuses, [Node("n0", "h100", 1)], started={"a-run": 0.0}), POLICY)
    spots = {j: d.queue.spot(j) for j in ("a1", "a2", "a3", "b1")}
    assert [(s.position, s.of, s.tenant_position, s.tenant_of) for s in spots.values()] == [
        (2, 4, 1, 3),
        (3, 4, 2, 3),
        (4, 4, 3, 3),
        (1, 4, 1, 1),
    ]
    assert d.positions == {"b1": 1, "a1": 2, "a2": 3, "a3": 4}  # the same order
    assert d.queue.spot("a-run") is None


def test_start_estimates_follow_max_run_times_and_say_unknown_without_a_bound() -> None:
    """One device, held until 100 s (its max_run_time, started at 0). b1 (max 50 s) is next: it starts at
    100 and ends by 150, then a1 starts by 150; a1 has no bound, so a2 has no estimate (unknown)."""
    statuses = [
        running(Job("a-run", tenant="a", max_run_seconds=100.0)),
        queued(Job("a1", tenant="a", submit_time=1.0)),
        queued(Job("a2", tenant="a", submit_time=2.0)),
        queued(Job("b1", tenant="b", submit_time=4.0, max_run_seconds=50.0)),
    ]
    d = decide(snapshot(statuses, [Node("n0", "h100", 1)], started={"a-run": 0.0}), POLICY)
    got = {j: d.queue.spot(j).range for j in ("b1", "a1", "a2")}
    assert got == {"b1": (100.0, 100.0), "a1": (150.0, 150.0), "a2": (None, None)}


def test_a_device_held_without_a_bound_makes_the_estimate_unknown() -> None:
    statuses = [running(Job("r")), queued(Job("q", submit_time=1.0))]
    d = decide(snapshot(statuses, [Node("n0", "h100", 1)]), POLICY)
    assert d.queue.spot("q").range == (None, None)


def test_a_preemptible_holder_gives_an_earliest_start_at_its_first_lease_boundary_past_its_minimum_run() -> (
    None
):
    """A preemptible job started at 0, no max_run_time: the earliest start is the first lease boundary
    (every 360 s from 360) past its minimum run (two leases: 720 s); no upper bound."""
    statuses = [running(Job("r", preemptible=True)), queued(Job("q", submit_time=1.0))]
    d = decide(
        snapshot(statuses, [Node("n0", "h100", 1)], started={"r": 0.0}, lease_end=360.0),
        POLICY,
        config=RoundConfig(),
    )
    assert d.queue.spot("q").range == (720.0, None)


def test_small_jobs_behind_a_gang_are_replayed_as_the_back_fill_starts_them() -> None:
    """Two devices, one free now, one held until 60 s. A 2-device job is first in line, a 1-device job
    behind it: the back-fill starts the small one now (it fits), the gang when both are free."""
    statuses = [
        running(Job("r", max_run_seconds=60.0)),
        queued(Job("big", scale=2, submit_time=1.0, max_run_seconds=10.0)),
        queued(Job("small", submit_time=2.0, max_run_seconds=100.0)),
    ]
    nodes = [Node("n0", "h100", 2)]
    d = decide(snapshot(statuses, nodes, now=5.0, started={"r": 0.0}), POLICY)
    assert [p.job for p in d.start] == ["small"]  # it fit on the idle device
    assert d.queue.spot("big").range == (105.0, 105.0)  # small ends by 5 + 100


def test_blocked_jobs_have_no_place_in_the_queue() -> None:
    statuses = [running(Job("r")), queued(Job("w", allowed=frozenset({"warboy"}))), queued(Job("q"))]
    d = decide(snapshot(statuses, [Node("n0", "h100", 1)], tenants=[Tenant("default")]), POLICY)
    assert d.queue.spot("w") is None
    assert d.queue.spot("q").position == 1  # type: ignore[union-attr]
    assert d.queue.spot("q").of == 1  # type: ignore[union-attr]


def test_start_ranges_and_sentences_are_worked_out_when_first_read_with_the_same_figures() -> None:
    """The round's start ranges and wait sentences are computed when first read (the simulator never reads
    them), from that round's values: a later round on the same cache changes nothing in them."""
    from accelpool.core.reasons import LazyText
    from accelpool.core.rounds import DecideCache

    def round_(now: float, cache: DecideCache):
        statuses = [
            running(Job("a-run", tenant="a", max_run_seconds=100.0)),
            queued(Job("a1", tenant="a", submit_time=1.0)),
            queued(Job("b1", tenant="b", submit_time=4.0, max_run_seconds=50.0)),
        ]
        return decide(
            snapshot(statuses, [Node("n0", "h100", 1)], now=now, started={"a-run": 0.0}), POLICY, cache
        )

    eager = round_(10.0, DecideCache())
    want = ({j: eager.queue.spot(j).range for j in ("b1", "a1")}, dict(eager.details))
    assert want[0] == {"b1": (100.0, 100.0), "a1": (150.0, 150.0)}
    assert want[1]["a1"].startswith("capacity: needs 1 x h100")
    cache = DecideCache()
    lazy = round_(10.0, cache)
    assert callable(lazy.queue.starts) and isinstance(lazy.details, LazyText)
    round_(40.0, cache)  # a later round fills the same cache before the first one is read
    assert ({j: lazy.queue.spot(j).range for j in ("b1", "a1")}, dict(lazy.details)) == want
