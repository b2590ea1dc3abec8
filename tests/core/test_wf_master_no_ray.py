"""A master HiGHS's presolve calls infeasible leaves no Farkas ray (core/policies/_wf_master.Master.solve): it is
solved again without presolve, so the stage never grows its master to every job on a ray of zeros. On
generational 2,000 x 8, seed 4 (found in issue 13's twenty-fourth session) presolve called a master of 92 jobs
infeasible that is feasible (L = 1.30 without presolve) and the probe's master grew to all 1,342 unpinned jobs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from accelpool.core.allocation import check_feasible  # noqa: E402
from accelpool.core.policies import _wf_master  # noqa: E402
from accelpool.core.policies.max_min_fairness import exact_level, max_min_fairness, stage_level  # noqa: E402
from problems import family_problem  # noqa: E402


def test_no_master_is_left_infeasible_without_a_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    rays = _wf_master._dual_ray
    no_ray: list[bool] = []

    def recording(h: object, rr: int) -> object:
        out = rays(h, rr)  # type: ignore[arg-type]
        no_ray.append(out is None)
        return out

    solve = _wf_master.Master.solve
    infeasible: list[np.ndarray] = []

    def solve_and_record(self: _wf_master.Master, *args: object) -> object:
        out = solve(self, *args)  # type: ignore[arg-type]
        if not out[0]:
            infeasible.append(out[3])
        return out

    monkeypatch.setattr(_wf_master, "_dual_ray", recording)
    monkeypatch.setattr(_wf_master.Master, "solve", solve_and_record)
    problem = family_problem("generational", 2000, seed=4)
    alloc = max_min_fairness(problem)
    assert any(no_ray), "presolve never left a master without a ray: pick a problem where it does"
    assert infeasible and all(np.abs(ray).max() > 0 for ray in infeasible)
    assert check_feasible(problem, alloc) == []
    assert stage_level(problem, alloc.x) == pytest.approx(exact_level(problem), rel=1e-6)
