"""Zones in placement: free devices are counted per (type, zone) for jobs pinned to a zone."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from accelpool.core.allocation import Allocation, AllocationProblem
from accelpool.core.policies import POLICIES
from accelpool.core.rounds import JobStatus, Placement, Snapshot, decide
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Job, JobState, Node


def all_in(problem: AllocationProblem) -> Allocation:
    """Every job gets all its time on h100 (more than fits: the round must choose)."""
    x = np.where(problem.usable(), 1.0, 0.0)
    return Allocation(problem.job_ids, problem.types, x, "all")


NODES = (Node("na", "h100", 4, zone="a"), Node("nb", "h100", 4, zone="b"))


def test_zone_full_job_waits_for_capacity_and_zone_free_job_takes_the_other_zone() -> None:
    run = Placement("run", "h100", (("na", (0, 1, 2, 3)),))
    jobs = (
        JobStatus(Job("run", scale=4, zone="a", submit_time=0.0), JobState.RUNNING, placement=run),
        JobStatus(Job("zjob", scale=4, zone="a", priority=5, submit_time=1.0), JobState.QUEUED),
        JobStatus(Job("other", scale=4, submit_time=2.0), JobState.QUEUED),
    )
    tput = ThroughputMatrix.from_rows({j.job.id: {"h100": 1.0} for j in jobs}, ("h100",))
    d = decide(Snapshot(100.0, NODES, jobs, tput, round_seconds=3.0), all_in)
    placed = {p.job: p for p in d.placements()}
    assert set(placed) == {"run", "other"}
    assert placed["other"].nodes == ("nb",)
    assert d.waiting == {"zjob": "capacity"}
    assert d.preempt == ()


def test_zoned_job_is_placed_before_a_zone_free_job_takes_its_zone() -> None:
    # "free" ranks first but may go anywhere; "za" needs zone a. Both must run.
    nodes = (Node("na", "h100", 4, zone="a"), Node("nb", "h100", 6, zone="b"))
    jobs = (
        JobStatus(Job("free", scale=4, submit_time=0.0), JobState.QUEUED),
        JobStatus(Job("za", scale=4, zone="a", submit_time=1.0), JobState.QUEUED),
    )
    tput = ThroughputMatrix.from_rows({j.job.id: {"h100": 1.0} for j in jobs}, ("h100",))
    d = decide(Snapshot(100.0, nodes, jobs, tput, round_seconds=3.0), all_in)
    placed = {p.job: p for p in d.placements()}
    assert placed["za"].nodes == ("na",) and placed["free"].nodes == ("nb",)
    assert d.waiting == {}


@settings(max_examples=150, deadline=None)
@given(
    nodes=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=1, max_value=8)),
        min_size=1,
        max_size=5,
    ),
    jobs=st.lists(
        st.tuples(st.sampled_from([None, "a", "b", "c"]), st.integers(min_value=1, max_value=8)),
        min_size=1,
        max_size=10,
    ),
    policy=st.sampled_from(["fifo", "max-min-fairness"]),
)
def test_zones_hold_and_no_placeable_job_waits_for_gang(
    nodes: list[tuple[str, int]], jobs: list[tuple[str | None, int]], policy: str
) -> None:
    pool = tuple(Node(f"n{k}", "h100", d, zone=z) for k, (z, d) in enumerate(nodes))
    zone_of = {n.name: n.zone for n in pool}
    statuses = tuple(
        JobStatus(Job(f"j{k}", scale=s, zone=z, submit_time=float(k)), JobState.QUEUED)
        for k, (z, s) in enumerate(jobs)
    )
    tput = ThroughputMatrix.from_rows({s.job.id: {"h100": 1.0} for s in statuses}, ("h100",))
    d = decide(Snapshot(100.0, pool, statuses, tput, round_seconds=3.0), POLICIES[policy])
    used = [(n, i) for p in d.placements() for n, ds in p.devices for i in ds]
    assert len(used) == len(set(used))
    by_id = {s.job.id: s.job for s in statuses}
    for p in d.placements():
        job = by_id[p.job]
        assert p.count == job.scale
        if job.zone is not None:
            assert all(zone_of[n] == job.zone for n in p.nodes)
    # a job pinned to a zone is never reported as a gang failure when its zone simply lacks room
    free = {z: sum(n.devices for n in pool if n.zone == z) for z in "abc"}
    for n, _ in used:
        free[zone_of[n]] -= 1
    for jid, why in d.waiting.items():
        job = by_id[jid]
        if why == "gang" and job.zone is not None:
            assert free[job.zone] >= job.scale
    # work-conserving across zones: a zone-free job the policy did not hold waits for capacity only
    # when too few devices are left
    left = sum(free.values())
    for jid, why in d.waiting.items():
        job = by_id[jid]
        if job.zone is None and why == "capacity" and jid not in d.allocation.held:
            assert left < job.scale
