"""The max-min water-filling's one weak-duality test (core/policies/_wf_dual._refutes): at any prices
>= 0 it never refutes a level the exact LP reaches (a proof, not a guess), it does refute levels above
the optimum at the optimum's own prices (tight), and a non-finite price (a nonsense warm hint's) proves
nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from accelpool.core.policies._seam import build_rows, usable_mask  # noqa: E402
from accelpool.core.policies._wf_dual import _refutes  # noqa: E402
from accelpool.core.policies._wf_stage import _Stage, _stage  # noqa: E402
from accelpool.core.policies.max_min_fairness import _level_coefficients, exact_level  # noqa: E402
from problems import random_rules  # noqa: E402


def _first_stage(seed: int):  # type: ignore[no-untyped-def]
    p = random_rules(seed)
    u = usable_mask(p)
    rows = build_rows(p, u)
    run = np.nonzero(u.any(1))[0]
    a = np.where(u[run], _level_coefficients(p, u)[run], 0.0)
    stage = _Stage(a, p.scale[run].astype(float), rows, rows.member[:, run], ipm=True)
    return stage, len(run), exact_level(p)


@pytest.mark.parametrize("seed", [0, 3, 7, 11, 19])
def test_no_prices_refute_the_exact_level_and_its_own_prices_refute_more(seed: int) -> None:
    stage, ng, level = _first_stage(seed)
    active, ell = np.ones(ng, bool), np.zeros(ng)
    below = np.minimum(level * (1 - 1e-7), stage.ceiling)
    rng = np.random.default_rng(seed)
    n_rows = stage.rows.n_rows
    for k in range(60):
        price = rng.exponential(size=n_rows) * (rng.uniform(size=n_rows) < (0.3 if k % 2 else 1.0))
        assert not _refutes(stage, active, ell, price, below)
    got, _, own, _ = _stage(stage, active, ell, np.zeros(ng, bool), None, 0.0)
    assert got == pytest.approx(level, rel=1e-6)
    for scaled in (own, own * 1e6, own * 1e-6):
        assert not _refutes(stage, active, ell, scaled, below)
    above = np.minimum(level * 1.01, stage.ceiling)
    if (above > level * 1.001).all():  # no job's ceiling stops it: the optimum's prices prove it out of reach
        assert _refutes(stage, active, ell, own, above)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_a_non_finite_price_proves_nothing(bad: float) -> None:
    stage, ng, level = _first_stage(3)
    price = np.zeros(stage.rows.n_rows)
    price[0] = bad
    low = np.minimum(level * 1e-3, stage.ceiling)
    assert not _refutes(stage, np.ones(ng, bool), np.zeros(ng), price, low)
