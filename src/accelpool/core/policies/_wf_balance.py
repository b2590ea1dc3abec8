"""Balanced start prices for large water-filling stages (_wf_stage._stage's restarts; docs/allocate.md,
"Balanced restarts"): multiplicative weights on every row's price by its load under the jobs' cheapest
plans, first on a sample of the jobs, then on all. Only a start: every stage still ends on its master's
own duals."""

from __future__ import annotations

import numpy as np

from accelpool.core.allocation import BoolArray, FloatArray
from accelpool.core.policies._wf_plans import _plans
from accelpool.core.policies._wf_stage import _segment_x, _Stage

BALANCE_SAMPLE = 1500
BALANCE_ROUNDS = 40
BALANCE_POLISH = 5
"""_balance: BALANCE_ROUNDS rounds on a sample of BALANCE_SAMPLE groups (rows scaled to it), then
BALANCE_POLISH rounds on all (_wf_stage.BALANCE_ABOVE says when a stage restarts at all)."""


def _usage(stage: _Stage, price: FloatArray, lam: FloatArray) -> FloatArray:
    """Devices each row would hold if every job ran its cheapest plan at ``price`` to reach lam[j]."""
    ng, tt = stage.a.shape
    u, v, cost, _ = _plans(stage, stage.effective_price(price), lam)
    idx = np.nonzero(np.isfinite(cost))[0]
    xv, xu = _segment_x(stage, u, v, idx, lam[idx])
    x = np.zeros((ng, tt))
    x[idx, v[idx]] = np.clip(xv, 0.0, 1.0)
    real = u[idx] > 0
    x[idx[real], u[idx[real]] - 1] = np.clip(xu[real], 0.0, 1.0)
    return stage.row_total(stage.size[:, None] * x)


def _balance_rounds(
    stage: _Stage,
    active: BoolArray,
    ell: FloatArray,
    price: FloatArray,
    level: float,
    adapt: bool,
    rounds: int,
    first: int,
) -> tuple[FloatArray, float]:
    """Multiplicative-weights rounds on the row prices (and, ``adapt``, the level): each row's price
    grows with its load over its bound under the jobs' cheapest plans; the level moves toward where the
    busiest row is full (never above the smallest active ceiling)."""
    rows = stage.rows
    bound = np.maximum(rows.reach(), 1e-9)
    cap = float(stage.ceiling[active].min(initial=np.inf))
    level = min(max(level, 1e-9), cap)
    for k in range(first, first + rounds):
        lam = np.where(active, np.minimum(level, stage.ceiling), ell)
        ratio = _usage(stage, price, lam) / bound
        step = 1.0 / np.sqrt(k + 1)
        price = price * np.exp(step * np.clip(ratio - 1, -1.0, 1.0))
        price = price / float(price @ bound)
        if adapt:
            level = min(cap, level * float(np.clip(1 + 0.5 * step * (1 - ratio.max()), 0.7, 1.3)))
    return price, level


def _balance(
    stage: _Stage, active: BoolArray, ell: FloatArray, price: FloatArray | None, level: float, adapt: bool
) -> tuple[FloatArray, float]:
    """Start prices with every row priced (and, ``adapt``, a level estimate) for a large stage.

    At a stage's exact prices the rows that do not bind cost 0, and every job whose cheapest plans are
    all free ties: fixed to its fastest free type, those jobs overloaded a free row, the first master
    was infeasible and grew to most jobs (generational 10,000 x 8, seed 0, the second stage: started
    from its own optimal prices, 302 -> 5,900 jobs, 2.8 s CPU). Multiplicative weights on all rows
    (BALANCE_ROUNDS on a sample of BALANCE_SAMPLE jobs, rows scaled to it, then BALANCE_POLISH rounds
    on all) price the free rows a little, by their load, so the cheapest plans spread over them.
    Only the start: the master's own duals still decide the stage.
    """
    rows = stage.rows
    bound = np.maximum(rows.reach(), 1e-9)
    even = np.full(len(bound), 1.0 / len(bound)) / bound
    p = np.maximum(price, 0.0) if price is not None else np.zeros(len(bound))
    p = even if not p.any() else 0.9 * p / float(p @ bound) + 0.1 * even
    ng = stage.a.shape[0]
    if ng > BALANCE_SAMPLE:
        pick = np.sort(np.random.default_rng(7).choice(ng, BALANCE_SAMPLE, replace=False))
        small = _Stage(stage.a[pick], stage.size[pick], rows, stage.member[:, pick])
        small.size = small.size * (float(stage.size.sum()) / float(small.size.sum()))
        p, level = _balance_rounds(small, active[pick], ell[pick], p, level, adapt, BALANCE_ROUNDS, 0)
    p, level = _balance_rounds(stage, active, ell, p, level, adapt, BALANCE_POLISH, BALANCE_ROUNDS)
    return p, level
