"""core.policies._lp builds its LP matrix with numpy alone (``csc``): the same arrays scipy.sparse's
``coo_matrix(...).tocsc()`` gave (duplicates summed, zeros kept, rows ascending in each column), and
LpModel.point's borrow columns as scipy's product gave them, bit for bit (scipy is here only as the
reference the product's code replaced)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from accelpool.core.policies._lp import csc  # noqa: E402
from accelpool.core.policies._seam import build_rows, lp_model, usable_mask  # noqa: E402
from accelpool.core.policies.max_min_fairness import max_min_fairness  # noqa: E402
from problems import random_rules  # noqa: E402


def reference(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]
) -> sparse.csc_matrix:
    m = sparse.coo_matrix((vals, (rows, cols)), shape=shape).tocsc()
    m.sort_indices()
    return m


@pytest.mark.parametrize("seed", range(12))
def test_csc_is_scipys_matrix(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_rows, n_cols = int(rng.integers(1, 40)), int(rng.integers(1, 40))
    k = int(rng.integers(0, 300))
    rows = rng.integers(0, n_rows, k)
    cols = rng.integers(0, n_cols, k)  # many duplicates at these sizes
    # zeros given, and pairs that sum to zero; sums exact in any order (scipy's order of summing duplicates
    # is its sort's; the LP models have no duplicates)
    vals = rng.choice([0.0, 1.0, -1.0, 2.5, 0.25, -0.75], k)
    got = csc(rows, cols, vals, n_rows, n_cols)
    ref = reference(rows, cols, vals, (n_rows, n_cols))
    assert (got.n_rows, got.n_cols) == ref.shape
    assert got.start.tolist() == ref.indptr.tolist()
    assert got.index.tolist() == ref.indices.tolist()
    assert got.value.tolist() == ref.data.tolist()


def test_csc_of_nothing() -> None:
    got = csc(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), 3, 2)
    assert got.start.tolist() == [0, 0, 0] and len(got.index) == 0 and len(got.value) == 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5, 8])
def test_model_matrix_and_start_point_as_with_scipy(seed: int) -> None:
    p = random_rules(seed)
    usable = usable_mask(p)
    model = lp_model(p, usable, build_rows(p, usable))
    a = model.matrix()
    ref = reference(
        np.concatenate(model.coo_r),
        np.concatenate(model.coo_c),
        np.concatenate(model.coo_v),
        (model.n_rows, model.n_cols),
    )
    assert a.start.tolist() == ref.indptr.tolist()
    assert a.index.tolist() == ref.indices.tolist()
    assert a.value.tolist() == ref.data.tolist()
    x = max_min_fairness(p).x
    point = model.point(x, a)
    assert model.borrow_rows is not None
    expect = np.zeros(model.n_cols)
    expect[: model.n_x] = x[model.jobs, model.types]
    if len(model.borrow_rows):
        use = ref[model.borrow_rows, : model.n_x] @ expect[: model.n_x]
        hi = np.concatenate(model.row_hi)[model.borrow_rows]
        expect[model.n_x : model.n_x + len(use)] = np.maximum(use - hi, 0.0)
    assert point.tolist() == expect.tolist()
