"""The price-space water-filling (core/policies/_wf_price.py): its bounds are proofs, its allocations are
feasible, its stage-1 level is the exact LP's and its levels are the whole-LP water-filling's."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelpool.core.allocation import AllocationProblem, check_feasible
from accelpool.core.policies._seam import build_rows, usable_mask
from accelpool.core.policies._waterfill import max_min_waterfill
from accelpool.core.policies._wf_price import (
    _Pairs,
    max_min_fairness_price,
    max_min_waterfill_price,
    price_stage,
)
from accelpool.core.policies._wf_stage import _Stage
from accelpool.core.policies.max_min_fairness import _level_coefficients, exact_level, stage_level

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from problems import FAMILIES, family_problem  # noqa: E402

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw, rules: bool = False):  # type: ignore[no-untyped-def]
    """Small problems; with ``rules``: tenants with quotas (pools), tenant and program caps, a public
    reserve, grants (budgets)."""
    n = draw(st.integers(1, 14))
    t = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    tput = rng.uniform(0.1, 10, (n, t)) * (rng.uniform(size=(n, t)) < 0.85)
    tput[:, 0] = np.maximum(tput[:, 0], 0.05)
    cap = rng.integers(1, 12, t).astype(float)
    scale = rng.choice([1, 2, 4], n).astype(float)
    kw: dict[str, object] = {"weight": rng.uniform(0.5, 2.0, n)}
    if rules:
        g = int(rng.integers(1, 4))
        kw.update(
            tenant_ids=tuple(f"g{i}" for i in range(g)),
            tenant_index=rng.integers(0, g, n),
            tenant_weight=np.ones(g),
            quota=rng.integers(0, 4, (g, t)).astype(float),
            tenant_cap=np.where(rng.uniform(size=(g, t)) < 0.5, rng.integers(1, 8, (g, t)), np.inf),
            cap_index=rng.integers(-1, 2, n),
            cap_limit=np.where(rng.uniform(size=(2, t)) < 0.6, rng.integers(1, 8, (2, t)), np.inf),
            public=rng.uniform(size=n) < 0.3,
            public_reserve=np.floor(cap * 0.3),
            price_krw_per_hour=rng.integers(0, 5000, t),
            budget_krw=np.where(rng.uniform(size=n) < 0.3, rng.integers(0, 20000, n), -1),
        )
    return AllocationProblem(
        job_ids=tuple(f"j{i}" for i in range(n)),
        types=tuple(f"t{k}" for k in range(t)),
        capacity=cap,
        scale=scale,
        throughput=tput,
        allowed=tput > 0,
        **kw,  # type: ignore[arg-type]
    )


def _inputs(problem: AllocationProblem):  # type: ignore[no-untyped-def]
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    return _level_coefficients(problem, usable), rows, usable


@pytest.mark.parametrize("rules", [False, True])
@SETTINGS
@given(data=st.data())
def test_stage_one_level_is_the_exact_lps_and_the_allocation_feasible(
    rules: bool, data: st.DataObject
) -> None:
    problem = data.draw(problems(rules=rules))
    alloc = max_min_fairness_price(problem)
    assert check_feasible(problem, alloc) == []
    assert stage_level(problem, alloc.x) == pytest.approx(exact_level(problem), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("seed", [3, 4])
def test_levels_are_the_whole_lp_water_fillings(family: str, seed: int) -> None:
    """Every job's level (the lexicographic max-min levels are unique) against plain HiGHS stage by stage."""
    problem = family_problem(family, 60, 4, seed)
    a, rows, usable = _inputs(problem)
    _, mine = max_min_waterfill_price(a, problem.scale, rows, usable)
    _, whole = max_min_waterfill(a, problem.scale, rows, usable, whole_lp=True)
    assert np.abs(mine - whole).max() <= 1e-5 * whole.max()


@pytest.mark.parametrize("family", FAMILIES)
def test_stage_bounds_are_proofs(family: str) -> None:
    """lo <= the folded stage-1 level <= hi, and x reaches min(lo, c_j) for every job within every row."""
    problem = family_problem(family, 200, 6, 7)
    a, rows, usable = _inputs(problem)
    stage = _Stage(np.where(usable, a, 0.0), problem.scale.astype(float), rows, rows.member)
    ng = stage.a.shape[0]
    res = price_stage(stage, _Pairs(stage), np.ones(ng, dtype=bool), np.zeros(ng), [])
    assert res.x is not None and 0 < res.lo <= res.hi <= res.lo * (1 + 2e-6)
    # the folded level from the whole-LP water-filling: the lowest level of a job below its ceiling
    _, whole = max_min_waterfill(a, problem.scale, rows, usable, whole_lp=True)
    below = whole < stage.ceiling * (1 - 1e-6)
    folded = float(whole[below].min()) if below.any() else float(stage.ceiling.max())
    assert res.lo * (1 - 1e-7) <= folded <= res.hi * (1 + 1e-7)
    level = (stage.a * res.x).sum(axis=1)
    assert (level >= np.minimum(res.lo, stage.ceiling) * (1 - 1e-7)).all()
    assert (res.x.sum(axis=1) <= 1 + 1e-9).all()
    use = stage.row_total(stage.size[:, None] * res.x)
    assert (use <= rows.bound * (1 + 1e-7) + 1e-7).all()  # no rules here: no pools


def test_a_larger_problem_keeps_the_exact_level() -> None:
    problem = family_problem("restricted", 1000, 8, 5)
    alloc = max_min_fairness_price(problem)
    assert check_feasible(problem, alloc) == []
    assert stage_level(problem, alloc.x) == pytest.approx(exact_level(problem), rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rule_rows_spanning_a_type_s_sites(seed: int) -> None:
    """Rule rows over a type's per-site columns (Rows.span): feasible, and the exact LP's stage-1 level."""
    rng = np.random.default_rng(seed)
    n, g = 40, 2
    tput = rng.uniform(0.5, 5.0, (n, 4))
    tput[:, 1] = tput[:, 0]  # one type at two sites: same speed at both
    tput[:, 3] = tput[:, 2]
    problem = AllocationProblem(
        job_ids=tuple(f"j{i}" for i in range(n)),
        types=("a@s1", "a@s2", "b@s1", "b@s2"),
        capacity=rng.integers(4, 16, 4).astype(float),
        scale=rng.choice([1.0, 2.0], n),
        weight=rng.uniform(0.5, 2.0, n),
        throughput=tput,
        allowed=rng.uniform(size=(n, 4)) < 0.9,
        tenant_ids=("g0", "g1"),
        tenant_index=rng.integers(0, g, n),
        tenant_cap=np.array([[6.0, 6.0, np.inf, np.inf], [np.inf, np.inf, 5.0, 5.0]]),
        public=rng.uniform(size=n) < 0.3,
        public_reserve=np.array([2.0, 2.0, 1.0, 1.0]),
        column_group=np.array([0, 0, 1, 1]),
    )
    a, rows, usable = _inputs(problem)
    assert rows.span is not None
    alloc = max_min_fairness_price(problem)
    assert check_feasible(problem, alloc) == []
    assert stage_level(problem, alloc.x) == pytest.approx(exact_level(problem), rel=1e-6)
