"""_wf_rowsum's sparse row sums carry the same bits as the dense products they replace in _Stage
(effective_price: the plain row-order sum, and OpenBLAS's product where its core sums rows in order, as
here, else that product within rounding; row_total: numpy's pairwise sum), on random rule-like row sets (capacity
and reserve rows over most jobs, tenant caps, program caps and quotas over a few), values of mixed
magnitudes and signs, many group counts (the pairwise blocks' edges). The one allowed difference is the
sign of an exact zero (compared after adding +0.0)."""

from __future__ import annotations

import numpy as np
import pytest

from accelpool.core.policies import _wf_rowsum
from accelpool.core.policies._rules import Rows
from accelpool.core.policies._wf_stage import _Stage


def _bits(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) + 0.0).view(np.uint64)


def _rule_rows(rng: np.random.Generator, ng: int, tt: int, span: bool = False) -> Rows:
    tenants = rng.integers(0, int(rng.integers(2, 30)), ng)
    program = rng.integers(0, 3, ng)
    public = rng.random(ng) < 0.15
    member, type_of = [], []
    for t in range(tt):
        member.append(np.ones(ng, dtype=bool))
        type_of.append(t)
        member.append(~public)
        type_of.append(t)
    for g in np.unique(tenants):
        for t in range(tt):
            if rng.random() < 0.7:
                member.append(tenants == g)
                type_of.append(t)
            if rng.random() < 0.5:
                member.append((tenants == g) & (program == rng.integers(0, 3)))
                type_of.append(t)
    rng.shuffle(order := np.arange(len(member)))
    m = np.array(member)[order]
    to = np.array(type_of, dtype=np.int64)[order]
    cover = None
    if span:
        cover = to[:, None] == np.arange(tt)[None, :]
        cover |= rng.random(cover.shape) < 0.2
    n = len(to)
    return Rows(to, m, np.ones(n), -np.ones(n, dtype=np.int64), ("rule",) * n, np.zeros(0), cover)


def _row_order(member: np.ndarray, cover: np.ndarray, price: np.ndarray) -> np.ndarray:
    """effective_price's sum taken plainly: row by row, in row order."""
    out = np.zeros((member.shape[1], cover.shape[1]))
    for r in range(len(price)):
        out[np.ix_(member[r], cover[r])] += price[r]
    return out


def _check_price(member: np.ndarray, onehot: np.ndarray, got: np.ndarray, price: np.ndarray) -> bool:
    """The sparse sum is the row-order sum bit for bit; the dense product is the same bits where
    OpenBLAS's core sums the product's rows in row order (this machine's SkylakeX kernels; its Haswell
    and Zen kernels do not on some shapes), and else the same terms in another order: within rounding of
    the sum of their magnitudes. Returns whether the bits matched (no test skips on another core)."""
    assert (_bits(got) == _bits(_row_order(member, onehot > 0, price))).all()
    dense = member.astype(np.float64).T @ (price[:, None] * onehot)
    if (_bits(dense) == _bits(got)).all():
        return True
    scale = member.astype(np.float64).T @ (np.abs(price)[:, None] * onehot)
    assert (np.abs(dense - got) <= 1e-12 * scale).all()
    return False


def _values(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    v = rng.random(shape) * 10.0 ** rng.integers(-12, 12, shape) * rng.choice([-1.0, 1.0], shape)
    return np.where(rng.random(shape) < 0.2, 0.0, v)


@pytest.mark.parametrize("seed", range(24))
def test_same_bits_as_dense(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ng = int(rng.choice([512, 519, 1000, 1024, 1031, 4096, 7550, 8200, 16391]))
    tt = int(rng.integers(2, 7))  # one column: _Stage keeps the dense product (OpenBLAS's gemv sums apart)
    rows = _rule_rows(rng, ng, tt)
    member_f = rows.member.astype(np.float64)
    onehot = rows.cover(tt).astype(np.float64)
    price_sum = _wf_rowsum.PriceSum(rows.member, onehot > 0)
    row_total = _wf_rowsum.RowTotal(rows.member, rows.type_of, tt)
    for _ in range(3):
        price = _values(rng, (rows.n_rows,))
        _check_price(rows.member, onehot, price_sum(price), price)
        per = _values(rng, (ng, tt))
        dense = (member_f * per[:, rows.type_of].T).sum(axis=1)
        assert (_bits(row_total(per, rows.n_rows)) == _bits(dense)).all()


@pytest.mark.parametrize("seed", range(3))
def test_price_sum_over_spans(seed: int) -> None:
    """Rows over several columns (per-site columns): effective_price's sparse sum still matches."""
    rng = np.random.default_rng(100 + seed)
    ng, tt = 2000, 5
    rows = _rule_rows(rng, ng, tt, span=True)
    onehot = rows.cover(tt).astype(np.float64)
    price_sum = _wf_rowsum.PriceSum(rows.member, onehot > 0)
    price = _values(rng, (rows.n_rows,))
    _check_price(rows.member, onehot, price_sum(price), price)


def test_stage_uses_sparse_and_dense_falls_back() -> None:
    """_Stage routes big ruled stages through _wf_rowsum; a non-finite input takes the dense product."""
    rng = np.random.default_rng(7)
    ng, tt = 3000, 4
    rows = _rule_rows(rng, ng, tt)
    a = rng.random((ng, tt))
    stage = _Stage(a, np.ones(ng), rows, rows.member)
    price = _values(rng, (rows.n_rows,))
    per = _values(rng, (ng, tt))
    dense_rt = (stage.member_f * per[:, rows.type_of].T).sum(axis=1)
    assert (_bits(stage.row_total(per)) == _bits(dense_rt)).all()
    _check_price(rows.member, stage.onehot, stage.effective_price(price), price)
    assert stage._price_sum is not None and stage._row_total is not None
    price[3] = np.inf
    with np.errstate(invalid="ignore"):
        out = stage.effective_price(price)
    assert np.isnan(out).any()  # the dense product's inf x 0
    one = _rule_rows(rng, ng, 1)
    single = _Stage(rng.random((ng, 1)), np.ones(ng), one, one.member)
    p1 = _values(rng, (one.n_rows,))
    assert (
        _bits(single.effective_price(p1)) == _bits(single.member_f.T @ (p1[:, None] * single.onehot))
    ).all()
    assert single._price_sum is None
