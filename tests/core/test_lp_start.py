"""An LP started from a feasible allocation (core/policies/_lp: LpModel.solve's ``start``, HiGHS's
crossover then primal simplex) reaches the same optimum as one solved from nothing, quota rows (borrow
columns) included; max-min-fairness's keep-running tie-break, which starts from the water-filling's
allocation, keeps as much time on the held types as the cold LP does and every job's level."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from accelpool.core.allocation import check_feasible  # noqa: E402
from accelpool.core.policies import _lp  # noqa: E402
from accelpool.core.policies._seam import build_rows, lp_model, usable_mask  # noqa: E402
from accelpool.core.policies.max_min_fairness import max_min_fairness  # noqa: E402
from problems import random_rules  # noqa: E402

SEEDS = [0, 1, 2, 3, 5, 8, 13, 21]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_start_reaches_the_cold_optimum(seed: int) -> None:
    p = random_rules(seed)
    usable = usable_mask(p)
    rows = build_rows(p, usable)
    x = max_min_fairness(p).x  # feasible under every rule row and pool
    rng = np.random.default_rng(seed)
    for _ in range(3):
        model = lp_model(p, usable, rows)
        cost = np.zeros(model.n_cols)
        cost[: model.n_x] = -rng.uniform(0, 1, model.n_x) * p.scale[model.jobs]
        cold = model.solve(cost)
        warm = model.solve(cost, start=x)
        assert cold.ok and warm.ok
        assert warm.objective == pytest.approx(cold.objective, rel=1e-7, abs=1e-7)
        got = model.x_matrix(warm.x, p.n_jobs, p.n_types)
        assert not check_feasible(p, replace(max_min_fairness(p), x=got))


def test_borrow_columns_of_the_start_cover_what_quota_rows_use() -> None:
    # a start that keeps the rules only with borrowing: its borrow columns are set, not left at 0
    checked = 0
    for seed in SEEDS:
        p = random_rules(seed)
        usable = usable_mask(p)
        rows = build_rows(p, usable)
        model = lp_model(p, usable, rows)
        if model.borrow_rows is None or not len(model.borrow_rows):
            continue
        point = model.point(max_min_fairness(p).x)
        use = model.matrix() @ point
        hi = np.concatenate(model.row_hi)
        b = point[model.n_x : model.n_x + len(model.borrow_rows)]
        # every quota row keeps its bound with its borrowing, and borrows no more than it needs (the pools
        # may still be over: fill_spare's x lends idle quota, which these rows do not count)
        assert (b >= 0).all()
        assert (use[model.borrow_rows] <= hi[model.borrow_rows] + 1e-7).all()
        assert ((b == 0) | (np.abs(use[model.borrow_rows] - hi[model.borrow_rows]) <= 1e-7)).all()
        checked += 1
    assert checked >= 2  # the seeds have quota rows to check


@pytest.mark.parametrize("seed", SEEDS)
def test_keep_running_keeps_as_much_as_the_cold_tie_break(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    p = random_rules(seed)
    rng = np.random.default_rng(seed)
    usable = usable_mask(p)
    choice = np.array([rng.choice(np.nonzero(u)[0]) if u.any() else -1 for u in usable])
    keep = np.where(rng.uniform(size=p.n_jobs) < 0.4, choice, -1)
    kept = replace(p, keep_type=keep.astype(np.int64))
    warm = max_min_fairness(kept)
    real = _lp.LpModel.solve
    monkeypatch.setattr(_lp.LpModel, "solve", lambda self, cost, start=None: real(self, cost))
    cold = max_min_fairness(kept)
    held = np.nonzero(keep >= 0)[0]

    def on_type(x: np.ndarray) -> float:
        return float((x[held, keep[held]] * kept.scale[held]).sum())

    # both are HiGHS optima within its 1e-7 row tolerance, and that tolerance alone can move this LP's
    # objective: with another water-filling's x (a ceiling-search change tried in the sixteenth session)
    # seed 5 gave 18.71423 from the start and 18.71348 cold, the start's answer 1.3e-8 over a row; on
    # these seeds today they agree to 1e-12
    assert on_type(warm.x) == pytest.approx(on_type(cold.x), rel=1e-4)
    assert not check_feasible(kept, warm)
