"""The benchmark problem families (bench/problems.py): what each claims about itself.

The capacity-bound families exist so that the exact LP's stage 1 is held by the rows, not by a job's
own ceiling (issue 13): asserted here on the tuning seed 0 and the held-out seeds 1 and 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from accelpool.core.allocation import check_feasible  # noqa: E402
from accelpool.core.policies._seam import build_rows, usable_mask  # noqa: E402
from accelpool.core.policies.max_min_fairness import exact_level, max_min_fairness, stage_level  # noqa: E402
from problems import ALL, CAPACITY_BOUND, CEILING_BOUND, FAMILIES, RULED, ceiling_gap, family_problem  # noqa: E402


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("family", CAPACITY_BOUND)
def test_capacity_bound_families_hold_stage_one_by_capacity(family, seed):
    problem = family_problem(family, 1000, 8, seed)
    assert (problem.scale / problem.weight).min() >= 1.0  # no job's own ceiling under 1
    assert set(np.unique(problem.weight)) <= {1.0, 2.0, 3.0, 4.0}
    assert 0.2 <= problem.capacity.sum() / problem.scale.sum() <= 0.4
    assert problem.allowed.any(axis=1).all() and not problem.allowed.all()
    assert len(np.unique(problem.throughput, axis=0)) == problem.n_jobs  # distinct rows
    level = exact_level(problem)
    assert 0.0 < ceiling_gap(problem, level) < 0.95, "stage 1 held by a ceiling, not by capacity"
    alloc = max_min_fairness(problem)
    assert check_feasible(problem, alloc) == []
    assert stage_level(problem, alloc.x) == pytest.approx(level, rel=1e-6)


@pytest.mark.parametrize("family", CEILING_BOUND)
def test_ceiling_bound_families_hold_stage_one_by_the_smallest_ceiling(family):
    """What bench_policies' ``level/opt`` alone checks on these: the smallest ceiling (s1/ceil 1)."""
    problem = family_problem(family, 300, 8, 1)
    assert ceiling_gap(problem, exact_level(problem)) == pytest.approx(1.0, rel=1e-6)


def test_family_names():
    assert FAMILIES == CEILING_BOUND + CAPACITY_BOUND
    assert ALL == FAMILIES + RULED
    with pytest.raises(ValueError, match="unknown family"):
        family_problem("nope", 10)


def test_the_ruled_family_has_rules_that_bind():
    """``ruled``: reserve, caps and quotas, and the allocation is held by them (a cap, the reserve and a
    tenant's own quota full; each quota a quarter of its type's devices)."""
    problem = family_problem("ruled", 600, 8, 1)
    rows = build_rows(problem, usable_mask(problem))
    kinds = set(rows.kind)
    assert kinds == {"capacity", "reserve", "cap", "quota"}
    alloc = max_min_fairness(problem)
    assert check_feasible(problem, alloc) == []
    use = (alloc.x * problem.scale[:, None])[None, :, :] * rows.member[:, :, None]
    per_row = use.sum(axis=1)[np.arange(rows.n_rows), rows.type_of]
    full = per_row >= rows.bound - 1e-6
    for kind in ("cap", "reserve"):
        assert any(f and k == kind and b > 0 for f, k, b in zip(full, rows.kind, rows.bound, strict=True)), (
            kind
        )
    # without the rules the same jobs get another allocation: a capped tenant uses more than its cap
    plain = family_problem("restricted", 600, 8, 1)
    free = (max_min_fairness(plain).x * plain.scale[:, None])[None, :, :] * rows.member[:, :, None]
    free_row = free.sum(axis=1)[np.arange(rows.n_rows), rows.type_of]
    capped = np.array([k == "cap" for k in rows.kind])
    assert (free_row[capped] > rows.bound[capped] + 1e-6).any()
