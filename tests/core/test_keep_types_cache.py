"""core.rounds._keep_types with the round's cache: over random sequences of rounds (placements set, moved
and cleared, statuses replaced or kept, the job set and the type columns changed now and then), the
cached answer equals the answer computed afresh, and it is read-only and the very same object while no
status changed."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest

from accelpool.core.round_types import JobStatus, Placement
from accelpool.core.rounds import DecideCache, _keep_types
from accelpool.core.types import Job, JobState

TYPES = ("a100", "h100", "rngd")
SITE_TYPES = ("a100@s1", "a100@s2", "h100", "rngd@s1")


def _status(rng: random.Random, job: Job) -> JobStatus:
    if rng.random() < 0.5:
        return JobStatus(job, JobState.QUEUED)
    t = rng.choice(TYPES)
    p = Placement(job.id, t, (("n1", (0,)),), site=rng.choice(["s1", "s2", "default"]))
    return JobStatus(job, JobState.RUNNING, p)


@pytest.mark.parametrize("seed", range(12))
def test_cached_keep_types_equal_a_fresh_computation(seed: int) -> None:
    rng = random.Random(seed)
    cache = DecideCache()
    jobs = [Job(id=f"j{k:03d}", tenant="t") for k in range(rng.randint(1, 40))]
    statuses = [_status(rng, j) for j in jobs]
    problem = SimpleNamespace(job_ids=tuple(j.id for j in jobs), types=TYPES)
    last = None
    for _ in range(60):
        r = rng.random()
        statuses = list(statuses)  # a new list every round, as decide's _live gives
        if r < 0.1:  # the job set changes: a new problem (a new job tuple)
            jobs = [j for j in jobs if rng.random() < 0.9] + [
                Job(id=f"n{rng.randrange(10**6):06d}", tenant="t") for _ in range(rng.randint(0, 3))
            ]
            jobs = list({j.id: j for j in jobs}.values()) or [Job(id="solo", tenant="t")]
            statuses = [_status(rng, j) for j in jobs]
            problem = SimpleNamespace(job_ids=tuple(j.id for j in jobs), types=problem.types)
        elif r < 0.15:  # other columns (per site): a new types tuple
            problem = SimpleNamespace(job_ids=problem.job_ids, types=rng.choice([TYPES, SITE_TYPES]))
        else:  # some statuses are new objects (moved, started, stopped, or the same facts again)
            for i in rng.sample(range(len(statuses)), rng.randint(0, min(3, len(statuses)))):
                statuses[i] = _status(rng, statuses[i].job)
        got = _keep_types(problem, statuses, cache)  # type: ignore[arg-type]
        want = _keep_types(problem, statuses)  # type: ignore[arg-type]
        assert got.dtype == want.dtype == np.int64
        np.testing.assert_array_equal(got, want)
        assert not got.flags.writeable
        if (
            last is not None
            and last[0] is problem
            and all(a is b for a, b in zip(last[1], statuses, strict=True))
        ):
            assert got is last[2]  # nothing changed: the very same array (ReusingPolicy's identity test)
        last = (problem, list(statuses), got)
