"""A restricted master proven infeasible without HiGHS (core/policies/_wf_overload._master_overload, called by
_wf_master.Master.solve before each interior-point master): each job's least use of a type (_least_use) is the LP's minimum,
every master the check proves infeasible is one HiGHS calls infeasible, and allocations that take the
shortcut still reach the exact stage-1 level and fit every row."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from tests.helpers import capacity_stage  # noqa: E402

from accelpool.core.allocation import check_feasible  # noqa: E402
from accelpool.core.policies import _wf_master  # noqa: E402
from accelpool.core.policies._wf_overload import _least_use  # noqa: E402
from accelpool.core.policies.max_min_fairness import exact_level, max_min_fairness, stage_level  # noqa: E402
from problems import family_problem  # noqa: E402

CASES = [("generational", 1000, 0), ("generational", 1000, 4), ("ruled", 1000, 1), ("ruled", 1000, 4)]
"""Problems on which the check fires (counted in the twenty-fourth session, after the ray hold of _wf_stage: 2,
3, 1 and 1 masters; generational 1,000 seed 1, where it fired 3 times before, no longer reaches it)."""


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5))
def test_least_use_is_the_lp_minimum(seed: int, tt: int) -> None:
    rng = np.random.default_rng(seed)
    ng = 6
    a = rng.choice([0.0, 0.5, 1.0, 1.5, 3.0], size=(ng, tt)) * rng.uniform(0.5, 1.5, (ng, tt))
    a[a.sum(axis=1) == 0, 0] = 1.0
    stage = capacity_stage(a)
    lam = stage.ceiling * rng.choice([0.0, 0.3, 0.7, 1.0, 1.2], size=ng)
    got = _least_use(stage, lam)
    for j in range(ng):
        usable = a[j] > 0
        for t in range(tt):
            # min x_t  s.t.  sum a x >= lam, sum x <= 1, x >= 0, unusable types 0
            res = linprog(
                np.eye(tt)[t],
                A_ub=np.vstack([-a[j], np.ones(tt)]),
                b_ub=[-lam[j], 1.0],
                bounds=[(0, None if u else 0) for u in usable],
                method="highs",
            )
            if res.status == 2:  # infeasible: lam above the ceiling
                assert got[j, t] == np.inf
            else:
                assert res.status == 0
                assert got[j, t] == pytest.approx(res.fun, abs=1e-9)


def _proofs_checked(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Let HiGHS solve every master (the check proves, but returns nothing) and record, for each master the
    check proved infeasible, whether HiGHS found it infeasible too."""
    inner = _wf_master._master_overload
    proven: list[object] = []
    outcome: list[bool] = []

    def check_only(*args: object) -> None:
        proven.append(inner(*args))  # type: ignore[arg-type]
        return None

    solve = _wf_master.Master.solve

    def solve_and_compare(self: _wf_master.Master, *args: object) -> object:
        proven.clear()
        out = solve(self, *args)  # type: ignore[arg-type]
        if proven and proven[0] is not None:
            outcome.append(not out[0])
        return out

    monkeypatch.setattr(_wf_master, "_master_overload", check_only)
    monkeypatch.setattr(_wf_master.Master, "solve", solve_and_compare)
    return outcome


@pytest.mark.parametrize(("family", "n", "seed"), CASES)
def test_every_master_proven_infeasible_is_infeasible_to_highs(
    family: str, n: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = _proofs_checked(monkeypatch)
    max_min_fairness(family_problem(family, n, seed=seed))
    assert outcome, "the check never fired: pick a problem where it does"
    assert all(outcome)


@pytest.mark.parametrize(("family", "n", "seed"), CASES)
def test_allocations_through_the_shortcut_stay_exact_and_feasible(
    family: str, n: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fired = []
    inner = _wf_master._master_overload

    def counting(*args: object) -> object:
        out = inner(*args)  # type: ignore[arg-type]
        fired.append(out is not None)
        return out

    monkeypatch.setattr(_wf_master, "_master_overload", counting)
    problem = family_problem(family, n, seed=seed)
    alloc = max_min_fairness(problem)
    assert any(fired)
    assert check_feasible(problem, alloc) == []
    assert stage_level(problem, alloc.x) == pytest.approx(exact_level(problem), rel=1e-6)
