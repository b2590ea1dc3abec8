"""ReusingPolicy reuses an allocation only for a problem the policy would answer the same way."""

from __future__ import annotations

import dataclasses

import numpy as np

from accelpool.core.policies import get_policy
from accelpool.core.problem import build_problem
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Job
from accelpool.runtime.reconciler import ReusingPolicy


def _two_jobs_two_types():
    jobs = [
        Job(id="j0", tenant="t", submit_time=0.0, total_steps=100.0),
        Job(id="j1", tenant="t", submit_time=1.0, total_steps=100.0),
    ]
    speeds = ThroughputMatrix.from_rows({"j0": {"a": 1.0, "b": 1.0}, "j1": {"a": 1.0, "b": 1.0}}, ["a", "b"])
    return build_problem(jobs, {"a": 1, "b": 1}, speeds)


def test_a_changed_keep_type_is_not_answered_with_the_last_allocation() -> None:
    """fifo keeps each running job on the type it holds: the same jobs held on other types get another
    allocation, which a reuse keyed without keep_type would miss (j0 kept on "a" while it runs on "b")."""
    fifo = get_policy("fifo")
    on_a = dataclasses.replace(_two_jobs_two_types(), keep_type=np.array([0, -1]))
    on_b = dataclasses.replace(on_a, keep_type=np.array([1, -1]))
    assert not np.array_equal(fifo(on_a).x, fifo(on_b).x)
    reusing = ReusingPolicy(fifo)
    reusing(on_a)
    assert np.array_equal(reusing(on_b).x, fifo(on_b).x)
    assert reusing.reused == 0


def test_the_same_keep_type_is_reused() -> None:
    fifo = get_policy("fifo")
    on_a = dataclasses.replace(_two_jobs_two_types(), keep_type=np.array([0, -1]))
    again = dataclasses.replace(on_a, keep_type=np.array([0, -1]))  # equal, another array
    reusing = ReusingPolicy(fifo)
    first = reusing(on_a)
    assert reusing(again) is first
    assert reusing.reused == 1
