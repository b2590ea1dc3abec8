"""fair-share's loop on the capacity rows alone (``fair_share._spread_capacity``, taken when no rule row
binds and there are fewer than 8 types) gives the very same allocation as the general loop over the
ledger (``Ledger.room`` and ``add``), bit for bit: the same float operations in the same order."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from tests.helpers import problem_of

from accelpool.core.policies._greedy import Ledger

fs = importlib.import_module(
    "accelpool.core.policies.fair_share"
)  # the module (the package exports the function)


def random_problem(rng: np.random.Generator):  # type: ignore[no-untyped-def]
    n, t = int(rng.integers(1, 60)), int(rng.integers(1, 8))
    tput = rng.uniform(0.1, 10, (n, t)) * (rng.uniform(size=(n, t)) < 0.8)
    # integer capacities, and fractional ones (sums of splits then differ in their last bits by order)
    cap = rng.integers(0, 12, t).astype(float) if rng.uniform() < 0.5 else rng.uniform(0, 12, t)
    scale = rng.choice([1, 2, 4, 8], n).astype(float)
    allowed = rng.uniform(size=(n, t)) < 0.9
    return problem_of(tput, cap, scale, allowed=allowed, weight=rng.choice([0.5, 1.0, 2.0], n))


@pytest.mark.parametrize("seed", range(3))
def test_the_capacity_row_loop_is_the_general_loop(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    cases = [random_problem(rng) for _ in range(150)]
    spread = fs._spread_capacity
    calls = []

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return spread(*args, **kwargs)

    monkeypatch.setattr(fs, "_spread_capacity", counted)
    fast = [fs.fair_share(p).x for p in cases]
    taken = sum(
        1 for p in cases if Ledger(p, fs.build_rows(p, fs.usable_mask(p))).capacity_only() is not None
    )
    assert taken == len(cases)  # no rules: every case took the capacity-row loop
    assert len(calls) >= len(cases) // 2  # ... and the loop ran (not only its condition held)
    monkeypatch.setattr(fs, "_spread_capacity", spread)
    monkeypatch.setattr(Ledger, "capacity_only", lambda self: None)  # the general loop
    for p, x in zip(cases, fast, strict=True):
        assert np.array_equal(fs.fair_share(p).x, x)


def every_type_problem(rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """Many jobs, most usable on every type (the arrays' prefix of ``_spread_capacity`` is taken)."""
    n, t = int(rng.integers(16, 400)), int(rng.integers(2, 5))
    tput = rng.uniform(0.1, 10, (n, t))
    kind = rng.integers(0, 3)  # equal capacities, integer ones, fractional ones
    cap = (
        np.full(t, float(rng.integers(4, 40)))
        if kind == 0
        else rng.integers(4, 40, t).astype(float)
        if kind == 1
        else rng.uniform(4, 40, t)
    )
    scale = rng.choice([1, 2, 4, 8], n).astype(float)
    # every type for every job, or a few jobs on fewer types (sets of types whose sums differ by order)
    allowed = np.ones((n, t), dtype=bool) if rng.uniform() < 0.5 else rng.uniform(size=(n, t)) < 0.95
    return problem_of(tput, cap, scale, allowed=allowed, weight=rng.choice([0.5, 1.0, 2.0], n))


def _count_prefix(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """fair-share's ``_spread_prefix`` wrapped to record how many jobs each call did in arrays."""
    prefix = fs._spread_prefix
    done: list[int] = []

    def counted(jobs, *args):  # type: ignore[no-untyped-def]
        k = prefix(jobs, *args)
        done.append(k)
        return k

    monkeypatch.setattr(fs, "_spread_prefix", counted)
    return done


@pytest.mark.parametrize("seed", range(3))
def test_the_prefix_in_arrays_is_the_loop(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(100 + seed)
    cases = [every_type_problem(rng) for _ in range(60)]
    done = _count_prefix(monkeypatch)
    fast = [fs.fair_share(p).x for p in cases]
    assert sum(1 for k in done if k > 0) >= len(cases) // 3  # the arrays did jobs (not only the loop)
    monkeypatch.setattr(fs, "_spread_prefix", lambda *args: 0)  # the loop alone
    for p, x in zip(cases, fast, strict=True):
        assert np.array_equal(fs.fair_share(p).x, x)
    monkeypatch.setattr(Ledger, "capacity_only", lambda self: None)  # the general loop
    for p, x in zip(cases, fast, strict=True):
        assert np.array_equal(fs.fair_share(p).x, x)


def test_jobs_on_many_types_are_left_to_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # a job allowed on more than _PREFIX_TYPES types ends the prefix (its orders are not enumerated)
    rng = np.random.default_rng(7)
    n, t = 40, fs._PREFIX_TYPES + 2
    p = problem_of(
        rng.uniform(0.1, 10, (n, t)), np.full(t, 10.0), np.ones(n), allowed=np.ones((n, t), dtype=bool)
    )
    done = _count_prefix(monkeypatch)
    x = fs.fair_share(p).x
    assert done and all(k == 0 for k in done)
    monkeypatch.setattr(fs, "_spread_prefix", lambda *args: 0)
    assert np.array_equal(fs.fair_share(p).x, x)
