"""Frozen jobs an infeasible master's Farkas ray names go back to the segments that held their levels in the
last allocation (core/policies/_wf_stage._stage, _held_segments) instead of joining the master: the segments
found are the ones the allocation ran, they hold the frozen level exactly, and allocations taken through
the hold stay feasible and reach the exact stage-1 level."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from tests.helpers import capacity_stage  # noqa: E402

from accelpool.core.allocation import check_feasible  # noqa: E402
from accelpool.core.policies import _wf_stage  # noqa: E402
from accelpool.core.policies._wf_stage import _held_segments  # noqa: E402
from accelpool.core.policies.max_min_fairness import exact_level, max_min_fairness, stage_level  # noqa: E402
from problems import family_problem  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 6))
def test_held_segments_are_the_allocations_own(seed: int, tt: int) -> None:
    rng = np.random.default_rng(seed)
    ng = 12
    a = rng.uniform(0.5, 3.0, size=(ng, tt))
    stage = capacity_stage(a)
    x = np.zeros((ng, tt))
    lo_t = np.zeros(ng, dtype=np.int64)
    hi_t = np.zeros(ng, dtype=np.int64)
    for j in range(ng):
        s, t = rng.choice(tt, size=2, replace=False)
        lo_t[j], hi_t[j] = (s, t) if a[j, s] < a[j, t] else (t, s)
        share = rng.uniform(0.05, 0.95)
        x[j, hi_t[j]], x[j, lo_t[j]] = share, 1 - share
    ell = (a * x).sum(axis=1)
    held, pu, pv = _held_segments(stage, ell, x)
    assert held.all()
    assert (pu == lo_t + 1).all() and (pv == hi_t).all()
    # the segment's x at ell is the allocation's
    share = (ell - a[np.arange(ng), lo_t]) / (a[np.arange(ng), hi_t] - a[np.arange(ng), lo_t])
    assert share == pytest.approx(x[np.arange(ng), hi_t])
    # a level above the segment's fast end is not held by it
    held_above, _, _ = _held_segments(stage, a[np.arange(ng), hi_t] * 1.01, x)
    assert not held_above.any()


@pytest.mark.parametrize(("family", "n", "seed"), [("generational", 1000, 4), ("scarce", 1000, 3)])
def test_allocations_through_the_hold_stay_exact_and_feasible(
    family: str, n: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner = _wf_stage._held_segments
    calls: list[int] = []

    def counting(*args: object) -> object:
        out = inner(*args)  # type: ignore[arg-type]
        calls.append(int(out[0].sum()))
        return out

    monkeypatch.setattr(_wf_stage, "_held_segments", counting)
    problem = family_problem(family, n, seed=seed)
    alloc = max_min_fairness(problem)
    assert calls and max(calls) > 0, "no infeasible master after an allocation: pick a problem where there is"
    assert check_feasible(problem, alloc) == []
    assert stage_level(problem, alloc.x) == pytest.approx(exact_level(problem), rel=1e-6)
