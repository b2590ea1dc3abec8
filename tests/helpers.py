"""Stand-in policies for tests of the rounds, the reconciler, the stores and the simulator; the SQL backends
the store tests run on (fixtures in tests/conftest.py)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from accelpool.core.allocation import Allocation, AllocationProblem
from accelpool.storage.engine import sqlite_url
from accelpool.storage.pgserver import drop_database, fresh_database, postgres_url

# the two SQL backends, for ``parametrize`` and fixture ``params`` (tests/conftest.py: database_url)
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
NO_POSTGRES = "no PostgreSQL: set ACCELPOOL_TEST_POSTGRES_URL or install the server binaries"


def problem_of(tput, cap, scale=None, *, allowed=None, **kw) -> AllocationProblem:
    """An allocation problem from a throughput matrix (jobs x types) and capacities: jobs ``j0..``, types
    ``t0..``, scale 1 and weight 1 unless given, allowed where the throughput is positive unless given;
    other fields (``keep_type``, ``weight``, ...) by keyword (tests/core)."""
    tput = np.asarray(tput, dtype=float)
    n, t = tput.shape
    return AllocationProblem(
        job_ids=tuple(f"j{i}" for i in range(n)),
        types=tuple(f"t{k}" for k in range(t)),
        capacity=np.asarray(cap, dtype=float),
        scale=np.ones(n) if scale is None else np.asarray(scale, dtype=float),
        weight=kw.pop("weight", np.ones(n)),
        throughput=tput,
        allowed=(tput > 0) if allowed is None else np.asarray(allowed, dtype=bool),
        **kw,
    )


def greedy_fastest(problem: AllocationProblem) -> Allocation:
    """Each job, in order, gets all of its time on its fastest usable type that still has room."""
    x = np.zeros((problem.n_jobs, problem.n_types))
    free = problem.capacity.copy()
    usable = problem.usable()
    for j in range(problem.n_jobs):
        for t in np.argsort(-problem.throughput[j], kind="stable"):
            if usable[j, t] and free[t] >= problem.scale[j]:
                x[j, t] = 1.0
                free[t] -= problem.scale[j]
                break
    return Allocation(problem.job_ids, problem.types, x, "greedy")


def equal_time(problem: AllocationProblem) -> Allocation:
    """Agnostic time-sharing: every usable pair gets an equal slice of each type's capacity."""
    usable = problem.usable()
    x = np.zeros((problem.n_jobs, problem.n_types))
    for t in range(problem.n_types):
        demand = (usable[:, t] * problem.scale).sum()
        if demand > 0:
            x[usable[:, t], t] = min(1.0, problem.capacity[t] / demand)
    row = x.sum(axis=1, keepdims=True)
    x = np.where(row > 1, x / np.maximum(row, 1e-12), x)
    return Allocation(problem.job_ids, problem.types, x, "equal")


class Databases:
    """Empty databases for one test: ``make("sqlite")`` a new file under ``tmp``, ``make("postgres")`` a fresh
    database on the tests' server (``postgres_url()``: CI's ``ACCELPOOL_TEST_POSTGRES_URL`` or a private
    cluster; the test is skipped when there is none, which fails CI). ``drop_all()`` drops every PostgreSQL
    database made, ending connections still open to them (``pgserver.drop_database``)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.made: list[tuple[str, str]] = []  # (server URL, database URL) of each PostgreSQL one
        self._n = itertools.count()

    def make(self, kind: str) -> str:
        if kind == "sqlite":
            return sqlite_url(self.tmp / f"db{next(self._n)}.sqlite")
        if kind != "postgres":
            raise ValueError(f"database_url: kind {kind!r} is neither 'sqlite' nor 'postgres'")
        base = postgres_url()
        if base is None:
            pytest.skip(NO_POSTGRES)
        url = fresh_database(base)
        self.made.append((base, url))
        return url

    def drop_all(self) -> None:
        while self.made:
            drop_database(*self.made.pop())


def capacity_stage(a: np.ndarray, capacity: float = 1.0) -> Any:
    """A water-filling stage (_wf_stage._Stage) over level coefficients ``a`` (jobs x types) whose only rows
    are one capacity row per type, each of ``capacity`` devices (tests/core)."""
    from accelpool.core.policies._seam import Rows
    from accelpool.core.policies._wf_stage import _Stage

    ng, tt = a.shape
    rows = Rows(
        np.arange(tt),
        np.ones((tt, ng), dtype=bool),
        np.full(tt, float(capacity)),
        -np.ones(tt, dtype=np.int64),
        ("capacity",) * tt,
        np.zeros(0),
    )
    return _Stage(a, np.ones(ng), rows, rows.member)
