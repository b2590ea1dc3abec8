"""Each job's cheapest plan at row prices (core/policies/_wf_plans.py) over the list of segments with a_u < a_v
is the dense form's (every job x (1 + types) x types, masked; kept here as the reference) bit for bit: the
same segment picked among ties, the same cost and runner-up, on problems with program rules (prices per job),
free types (price 0: ties broken by the fastest type), levels exactly at a segment's end, above the ceiling
and at 0, and after types are closed (stage.forbid)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from tests.helpers import capacity_stage  # noqa: E402

from accelpool.core.policies._seam import build_rows, usable_mask  # noqa: E402
from accelpool.core.policies._wf_plans import _min_cost, _plans  # noqa: E402
from accelpool.core.policies._wf_stage import _Stage  # noqa: E402
from accelpool.core.policies.max_min_fairness import _level_coefficients  # noqa: E402
from problems import family_problem, random_rules  # noqa: E402


def _dense_plans(stage: _Stage, pi: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, ...]:
    """_plans as it was until the twenty-third session (argmin over the masked dense block), except for a job
    with no plan (cost inf): u = v = 0 here and in _plans, where the dense argmin took the first idle segment to
    an unusable type when its level was 0 (0 / 0 made that entry NaN); no caller reads such a job's segment."""
    ng, tt = stage.a.shape
    au = stage.a_from[:, :, None]
    av = stage.a[:, None, :]
    pu = np.concatenate([np.zeros((ng, 1)), pi], axis=1)[:, :, None]
    pv = pi[:, None, :]
    lv = lam[:, None, None]
    idle = np.zeros(tt + 1, dtype=bool)
    idle[0] = True
    valid = (
        stage.from_ok[:, :, None]
        & stage.usable[:, None, :]
        & (au < lv)
        & ((av > lv) | (idle[None, :, None] & (av >= lv)))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (lv - au) / (av - au)
        cost = np.where(valid, pu + (pv - pu) * frac, np.inf).reshape(ng, -1)
        busy = np.where(idle[None, :, None], frac, 1.0).reshape(ng, -1)
    tie = 1e-9 * max(float(pi.max(initial=0.0)), 1e-12)
    pick = np.argmin(cost + tie * busy, axis=1)
    best = cost[np.arange(ng), pick]
    pick = np.where(np.isfinite(best), pick, 0)
    rest = cost.copy()
    rest[np.arange(ng), pick] = np.inf
    second = rest.min(axis=1)
    second = np.where((best <= 0) & (second <= 0), np.inf, second)
    return pick // tt, pick % tt, best, second


def _dense_min_cost(stage: _Stage, pi: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """_min_cost as it was (every group x segment, a masked minimum)."""
    ng, tt = stage.a.shape
    ok = stage.from_ok[:, :, None] & stage.usable[:, None, :]
    width = stage.a[:, None, :] - stage.a_from[:, :, None]
    lv = lam[:, None]
    valid = ok & (stage.a_from < lv)[:, :, None]
    valid[:, 0, :] &= stage.a >= lv
    valid[:, 1:, :] &= (stage.a > lv)[:, None, :]
    pu = np.concatenate([np.zeros((ng, 1)), pi], axis=1)[:, :, None]
    with np.errstate(all="ignore"):
        cost = pi[:, None, :] - pu
        cost *= (lv - stage.a_from)[:, :, None] / width
        cost += pu
    out: np.ndarray = cost.reshape(ng, -1).min(axis=1, where=valid.reshape(ng, -1), initial=np.inf)
    return out


def _stage_of(problem) -> _Stage:  # type: ignore[no-untyped-def]
    u = usable_mask(problem)
    rows = build_rows(problem, u)
    run = np.nonzero(u.any(1))[0]
    a = np.where(u[run], _level_coefficients(problem, u)[run], 0.0)
    return _Stage(a, problem.scale[run].astype(float), rows, rows.member[:, run], ipm=True)


def _same(got: tuple[np.ndarray, ...] | np.ndarray, want: tuple[np.ndarray, ...] | np.ndarray) -> None:
    gs = got if isinstance(got, tuple) else (got,)
    ws = want if isinstance(want, tuple) else (want,)
    for g, w in zip(gs, ws, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert (np.ascontiguousarray(g).view(np.uint64) == np.ascontiguousarray(w).view(np.uint64)).all()


def _levels(stage: _Stage, rng: np.random.Generator) -> np.ndarray:
    ng, tt = stage.a.shape
    lam = rng.uniform(0.0, 1.2, ng) * stage.ceiling  # some above the ceiling (inf), some at 0
    lam[rng.uniform(size=ng) < 0.1] = 0.0
    at_end = rng.uniform(size=ng) < 0.2  # exactly at a segment's end
    lam[at_end] = stage.a[np.nonzero(at_end)[0], rng.integers(0, tt, int(at_end.sum()))]
    return lam


@pytest.mark.parametrize(
    "make",
    [
        lambda: random_rules(0),
        lambda: random_rules(7),
        lambda: family_problem("generational", 300, seed=1),
        lambda: family_problem("gang", 300, seed=2),
        lambda: family_problem("sparse", 300, seed=1),
    ],
)
def test_list_plans_and_costs_are_the_dense_ones_bit_for_bit(make) -> None:  # type: ignore[no-untyped-def]
    stage = _stage_of(make())
    rng = np.random.default_rng(5)
    for k in range(24):
        price = rng.exponential(size=stage.rows.n_rows) * (rng.uniform(size=stage.rows.n_rows) < 0.6)
        if k % 4 == 0:
            price[:] = 0.0  # every type free: ties broken by the fastest type, then by position
        pi = stage.effective_price(price)
        lam = _levels(stage, rng)
        if k == 12:
            stage.forbid(rng.uniform(size=stage.a.shape) < 0.2)  # the list follows stage.a
        _same(_plans(stage, pi, lam), _dense_plans(stage, pi, lam))
        _same(_min_cost(stage, pi, lam), _dense_min_cost(stage, pi, lam))
        u, v, cost, _ = _plans(stage, pi, lam)
        _same(cost, _min_cost(stage, pi, lam))  # the cost alone is _plans' cost


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 30))
def test_list_plans_match_on_small_random_jobs_with_exact_ties(seed: int, tt: int, ng: int) -> None:
    rng = np.random.default_rng(seed)
    # few distinct speeds and prices, so that segments tie exactly
    a = rng.choice([0.0, 0.5, 1.0, 2.0], size=(ng, tt))
    a[a.sum(axis=1) == 0, 0] = 1.0
    stage = capacity_stage(a, ng)
    pi = rng.choice([0.0, 0.0, 1.0, 2.0], size=(ng, tt))
    lam = rng.choice([0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0], size=ng)
    _same(_plans(stage, pi, lam), _dense_plans(stage, pi, lam))
    _same(_min_cost(stage, pi, lam), _dense_min_cost(stage, pi, lam))


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_a_non_finite_price_still_gives_plans(bad: float) -> None:
    """Only a nonsense warm hint has one: its plans are only a start, but each must be a real segment."""
    stage = _stage_of(random_rules(3))
    pi = stage.effective_price(np.ones(stage.rows.n_rows))
    pi[:, 0] = bad
    lam = 0.5 * stage.ceiling
    u, v, cost, second = _plans(stage, pi, lam)
    assert not np.isnan(cost).any() and not np.isnan(second).any()
    idx = np.arange(len(lam))
    assert (stage.a_from[idx, u] < lam).all() and (stage.a[idx, v] >= lam).all()
