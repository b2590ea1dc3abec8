"""Weak duality for the max-min water-filling (the notation: _waterfill.py): row prices that prove levels
out of reach. One test, used by a stage's target and its Farkas rays (_wf_stage._stage), the ceiling
searches' upper end (_wf_ceilings._dual_index) and the tenant-local events' search (_wf_local); until the
thirteenth session three copies with two budgets (the stage's _over_budget and the ceiling searches'
counted each quota row with its pool's whole bound, a weaker proof).

At row prices p >= 0, each pool priced at the largest price of its rows (the least pool price its borrow
columns allow: b_r has -1 in row r and +1 in its pool), an allocation in which every job j reaches lam_j
uses rows worth at least sum_j S_j cost_j(lam_j, p) (cost_j: its cheapest plan, _min_cost) and at most
sum_r p_r bound_r + sum_q p_q pool_bound_q. When the first exceeds the second, no allocation reaches
those levels (a proof; not finding one proves nothing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from accelpool.core.allocation import BoolArray, FloatArray
from accelpool.core.policies._wf_plans import _min_cost

if TYPE_CHECKING:
    from accelpool.core.policies._wf_stage import _Stage


def _refutes(
    stage: _Stage,
    active: BoolArray,
    ell: FloatArray,
    price: FloatArray,
    lam: FloatArray,
    pi: FloatArray | None = None,
) -> bool:
    """Weak duality at row prices ``price`` (negative entries dropped): every active j at lam[j] and every
    frozen one at ell costs, at its cheapest plans, more than the rows and pools are worth (above). ``pi``:
    stage.effective_price(price), when the caller has it. A non-finite price (a nonsense warm hint's)
    proves nothing: inf x 0 would make every cost NaN and read as refuted."""
    if not np.isfinite(price).all():
        return False
    price = np.maximum(price, 0.0)
    if not price.any():
        return False
    rows = stage.rows
    pool = np.zeros(len(rows.pool_bound))
    quota = rows.pool_of >= 0
    np.maximum.at(pool, rows.pool_of[quota], price[quota])
    budget = float((price * rows.bound).sum() + (pool * rows.pool_bound).sum())
    need = np.where(active, lam, ell)
    if pi is None:
        pi = stage.effective_price(price)
    cost = np.where(need > 0, _min_cost(stage, pi, need), 0.0)
    if not np.isfinite(cost).all():
        return True
    return float((stage.size * cost).sum()) > budget * (1 + 1e-7) + 1e-9 * float(price.max())


def _over_budget(stage: _Stage, active: BoolArray, ell: FloatArray, price: FloatArray, level: float) -> bool:
    """_refutes with every active job at min(level, its ceiling)."""
    return _refutes(stage, active, ell, price, np.minimum(level, stage.ceiling))
