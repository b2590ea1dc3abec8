"""The problem cache's carried rows (core.problem_cache.ProblemCache._carry) give the very problem that
build_problem gives for the new job set: every field equal, arrays of the same dtype and shape, over
random sequences of arrivals, departures and replaced job objects (constraints, grants, deadlines,
public jobs, tenants known and not, a public share), and the cases it leaves to a full build."""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest

from accelpool.core.allocation import AllocationProblem
from accelpool.core.problem import build_problem
from accelpool.core.problem_cache import ProblemCache
from accelpool.core.round_config import RoundConfig
from accelpool.core.round_types import JobStatus, Snapshot
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import (
    AcceleratorType,
    Grant,
    Job,
    JobState,
    Node,
    Program,
    ProgramRules,
    Tenant,
)

TYPES = ("a100", "h100", "rngd")
ACCEL = {
    "a100": AcceleratorType("a100", "A100", "nvidia", "US", memory_gb=40.0),
    "h100": AcceleratorType("h100", "H100", "nvidia", "US", memory_gb=80.0),
    "rngd": AcceleratorType("rngd", "RNGD", "furiosa", "KR", memory_gb=48.0),
}


def _job(rng: random.Random, k: int, grants: list[str]) -> Job:
    return Job(
        id=f"j{k:04d}",
        tenant=rng.choice(["t1", "t2", "t3", "unlisted"]),
        scale=rng.choice([1, 1, 2, 4]),
        allowed=frozenset(rng.sample(TYPES, rng.randint(1, 3))) if rng.random() < 0.3 else frozenset(),
        domestic_only=rng.random() < 0.1,
        min_memory_gb=rng.choice([None, None, 45.0]),
        priority=rng.choice([0, 0, 1]),
        weight=rng.choice([1.0, 2.0, 0.5]),
        deadline=rng.uniform(1e4, 1e6) if rng.random() < 0.2 else None,
        grant=rng.choice(grants) if grants and rng.random() < 0.4 else None,
        public=rng.random() < 0.3,
        total_steps=float(rng.randint(100, 10_000)) if rng.random() < 0.8 else None,
        submit_time=rng.uniform(0, 1e5),
    )


def _same(a: AllocationProblem, b: AllocationProblem) -> None:
    for f in dataclasses.fields(AllocationProblem):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray), f.name
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f.name
        else:
            assert x == y, f.name


def _run(seed: int, fairness: str, caps: bool, grants_on: bool) -> tuple[int, int]:
    rng = random.Random(seed)
    rules = ProgramRules(public_share={"*": 0.3}, tenant_caps={"h100": 2} if caps else {})
    programs = (Program("p1", "P1", 10**9, rules=rules), Program("p2", "P2", 10**9))
    tenants = (Tenant("t1", weight=2.0, quota={"h100": 1}), Tenant("t2"), Tenant("t3"))
    grant_ids = ["g1", "g2"] if grants_on else []
    grants = [Grant("g1", "p1", "t1", 10**7), Grant("g2", "p2", "t2", 10**6)] if grants_on else []
    nodes = tuple(Node(f"n{t}{i}", t, 8) for t in TYPES for i in range(2))
    prices = {"a100": 3000, "h100": 6000}
    speeds: dict[str, tuple[float, ...]] = {}
    cache = ProblemCache()
    config = RoundConfig(fairness=fairness)
    active: list[Job] = []
    status: dict[str, JobStatus] = {}
    made = 0
    for step in range(60):
        now = 1000.0 * step
        for j in [j for j in active if rng.random() < 0.08]:  # departures
            active.remove(j)
        if rng.random() < 0.6:  # arrivals, at the end (as the memory store lists them)
            for _ in range(rng.randint(1, 4)):
                j = _job(rng, made, grant_ids)
                made += 1
                active.append(j)
                speeds[j.id] = tuple(rng.choice([0.0, 1.0, 2.5, 7.0]) for _ in TYPES)
        if active and rng.random() < 0.1:  # a job object replaced under the same id
            i = rng.randrange(len(active))
            active[i] = dataclasses.replace(active[i], weight=active[i].weight + 1.0)
        statuses = []
        for j in active:
            s = status.get(j.id)
            if s is None or s.job is not j or rng.random() < 0.3:
                s = JobStatus(j, JobState.QUEUED, steps_done=float(rng.randint(0, 12_000)))
                status[j.id] = s
            statuses.append(s)
        grants = [dataclasses.replace(g, spent_krw=g.spent_krw + rng.randint(0, 1000)) for g in grants]
        values = np.array([speeds[j.id] for j in active], dtype=np.float64).reshape(len(active), len(TYPES))
        matrix = ThroughputMatrix(tuple(j.id for j in active), TYPES, values, np.zeros(values.shape, bool))
        snap = Snapshot(
            now=now,
            nodes=nodes,
            jobs=tuple(statuses),
            throughput=matrix,
            accelerators=ACCEL,
            tenants=tenants,
            programs=programs,
            grants=tuple(grants),
            prices_krw_per_hour=prices,
        )
        got = cache.get(snap, statuses, config, 360.0)
        remaining = {
            s.job.id: (
                (t - s.steps_done if t > s.steps_done else 0.0)
                if (t := s.job.total_steps) is not None
                else math.inf
            )
            for s in statuses
        }
        want = build_problem(
            [s.job for s in statuses],
            {t: 16 for t in TYPES},
            matrix,
            accelerators=ACCEL,
            tenants=tenants,
            programs=programs,
            grants=grants,
            prices_krw_per_hour=prices,
            remaining_steps=remaining,
            now=now,
            horizon_seconds=360.0,
            per_device_levels=config.per_device_levels,
            fairness=fairness,
        )
        _same(got, want)
    return made, cache.carries


@pytest.mark.parametrize("seed", range(12))
def test_carried_rows_build_the_same_problem(seed: int) -> None:
    _, carries = _run(seed, "job", caps=False, grants_on=seed % 2 == 0)
    assert carries > 10  # the carry ran (not only full builds)


@pytest.mark.parametrize("seed", range(6))
def test_tenant_fairness_and_program_caps_are_carried_too(seed: int) -> None:
    """Hierarchical weights (every job's weight depends on its tenant's and program's other jobs) and the
    per-tenant cap groups (numbered in job order) are computed over the whole new job list: the carried
    problem still equals build_problem's, field for field."""
    assert _run(seed, "tenant", caps=False, grants_on=True)[1] > 10
    assert _run(seed, "job", caps=True, grants_on=True)[1] > 10
    assert _run(seed, "tenant", caps=True, grants_on=seed % 2 == 0)[1] > 10
