"""Round ranking: a job's priority counts the time it ran on every type, back-fill included."""

from __future__ import annotations

import numpy as np
import pytest

from accelpool.core.allocation import Allocation, AllocationProblem
from accelpool.core.round_config import RoundConfig
from accelpool.core.rounds import JobStatus, Snapshot, decide
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Job, JobState, Node


def half_each_on_a(problem: AllocationProblem) -> Allocation:
    x = np.zeros((problem.n_jobs, problem.n_types))
    x[:, problem.types.index("a")] = 0.5
    return Allocation(problem.job_ids, problem.types, x, "fixed")


def snapshot() -> Snapshot:
    # both jobs are 2,000 s old and queued; j1 ran 1,000 s on b (back-filled there), j2 500 s on a
    jobs = (
        JobStatus(Job("j1", submit_time=0.0), JobState.QUEUED, seconds_on={"b": 1000.0}),
        JobStatus(Job("j2", submit_time=0.0), JobState.QUEUED, seconds_on={"a": 500.0}),
    )
    tput = ThroughputMatrix.from_rows({"j1": {"a": 1.0, "b": 1.0}, "j2": {"a": 1.0, "b": 1.0}}, ("a", "b"))
    return Snapshot(2000.0, (Node("a-0", "a", 1), Node("b-0", "b", 1)), jobs, tput, round_seconds=360.0)


@pytest.mark.parametrize(("mode", "on_a"), [("job", "j2"), ("ratio", "j1")])
def test_back_filled_time_counts_towards_the_job(mode, on_a):
    d = decide(snapshot(), half_each_on_a, config=RoundConfig(ranking=mode))
    placed = {p.job: p.accelerator for p in d.placements()}
    # job ratio: j1 ran 50% of its age (ratio 1), j2 25% (ratio 2) -> j2 takes a, j1 is back-filled on b.
    # Gavel's per-type ratio sees j1 with nothing on a (infinite) and gives it a again.
    assert placed[on_a] == "a" and len(placed) == 2
