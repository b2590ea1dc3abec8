"""The interior-point borderline re-check (core/policies/_wf_master.recheck): a model HiGHS's interior point
method calls infeasible by a hair (above its 1e-7 primal tolerance, below BORDERLINE_INFEASIBILITY) comes
back optimal from its crossover basis; a clearly infeasible one, or one without a basis, does not."""

from __future__ import annotations

import highspy._core as _highs
import numpy as np
import pytest

from accelpool.core.policies._wf_master import BORDERLINE_INFEASIBILITY, RECHECK_TOLERANCE, recheck


def _model(excess: float, solver: str = "ipm", run: bool = True) -> _highs._Highs:
    """max x1 + x2 over [0, 1]^2 with x1 + x2 >= 2 + excess (feasible only for excess <= 0) and
    x1 + x2 <= 5; presolve off, so that HiGHS's solver (not presolve) decides."""
    h = _highs._Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("solver", solver)
    h.setOptionValue("presolve", "off")
    lp = _highs.HighsLp()
    lp.num_col_, lp.num_row_ = 2, 2
    lp.col_cost_ = np.array([-1.0, -1.0])
    lp.col_lower_ = np.zeros(2)
    lp.col_upper_ = np.ones(2)
    lp.row_lower_ = np.array([2.0 + excess, -np.inf])
    lp.row_upper_ = np.array([np.inf, 5.0])
    lp.a_matrix_.format_ = _highs.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.array([0, 2, 4], dtype=np.int32)
    lp.a_matrix_.index_ = np.array([0, 1, 0, 1], dtype=np.int32)
    lp.a_matrix_.value_ = np.ones(4)
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = 2, 2
    h.passModel(lp)
    if run:
        h.run()
    return h


@pytest.mark.parametrize("excess", [2e-7, 3e-7, 5e-7])
def test_a_borderline_interior_point_infeasible_model_is_optimal_on_recheck(excess: float) -> None:
    assert excess < RECHECK_TOLERANCE
    h = _model(excess)
    assert h.getModelStatus() == _highs.HighsModelStatus.kInfeasible
    assert h.getInfo().max_primal_infeasibility < BORDERLINE_INFEASIBILITY
    again = recheck(h)
    assert again is not None
    assert again.getModelStatus() == _highs.HighsModelStatus.kOptimal
    assert np.asarray(again.getSolution().col_value) == pytest.approx([1.0, 1.0])
    assert h.getModelStatus() == _highs.HighsModelStatus.kInfeasible  # the original is left as it was


@pytest.mark.parametrize("solver", ["ipm", "simplex"])
@pytest.mark.parametrize("excess", [1e-5, 0.5])
def test_a_clearly_infeasible_model_stays_infeasible(solver: str, excess: float) -> None:
    h = _model(excess, solver)
    assert h.getModelStatus() == _highs.HighsModelStatus.kInfeasible
    assert recheck(h) is None


def test_a_model_without_a_basis_is_not_rechecked() -> None:
    assert recheck(_model(3e-7, run=False)) is None
