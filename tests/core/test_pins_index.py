"""The ceiling search's pin bound (core/policies/_wf_ceilings._pins_index): the largest index whose pins
(every active job with one best type and ceiling <= that ceiling) do not overload a row, found by
bisection, equals the brute-force answer, on problems where pins do overload (scarce capacity, rules)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from accelpool.core.policies._seam import build_rows, usable_mask  # noqa: E402
from accelpool.core.policies._wf_ceilings import _pins_index  # noqa: E402
from accelpool.core.policies._wf_overload import _pins_overload  # noqa: E402
from accelpool.core.policies._wf_stage import _Stage  # noqa: E402
from accelpool.core.policies.max_min_fairness import _level_coefficients  # noqa: E402
from problems import family_problem, random_rules  # noqa: E402


def _stage_of(problem):  # type: ignore[no-untyped-def]
    u = usable_mask(problem)
    rows = build_rows(problem, u)
    run = np.nonzero(u.any(1))[0]
    a = np.where(u[run], _level_coefficients(problem, u)[run], 0.0)
    return _Stage(a, problem.scale[run].astype(float), rows, rows.member[:, run]), len(run)


CASES = [("rules", s) for s in (0, 3, 7)] + [(f, s) for f in ("scarce", "gang", "pinned") for s in (1, 2)]


@pytest.mark.parametrize(("family", "seed"), CASES)
def test_bisection_equals_brute_force(family: str, seed: int) -> None:
    problem = random_rules(seed) if family == "rules" else family_problem(family, 300, seed=seed)
    stage, ng = _stage_of(problem)
    rng = np.random.default_rng(seed)
    overloads = 0
    for trial in range(6):
        active = rng.uniform(size=ng) < (1.0 if trial == 0 else 0.8)
        pinned = ~active & stage.unique_best & (rng.uniform(size=ng) < 0.2 * (trial % 2))
        ceilings = np.unique(stage.ceiling[active])
        m = len(ceilings)
        cand = active & stage.unique_best
        fits = [not _pins_overload(stage, pinned | (cand & (stage.ceiling <= c))) for c in ceilings]

        for lo in (-1, m // 3):
            want = max([k for k in range(lo + 1, m) if fits[k]] + [lo])
            assert _pins_index(stage, active, pinned, ceilings, lo, m - 1) == want
            overloads += not fits[m - 1]
    if family in ("scarce", "gang"):
        assert overloads > 0  # the case the bound is for occurs
