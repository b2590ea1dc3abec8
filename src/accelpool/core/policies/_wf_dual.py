"""Whether every job can reach a given level, decided in the rows' price space (Dantzig-Wolfe over
whole-problem plans), without a master LP over the jobs.

Only the R rows couple the jobs. At row prices p every job's cheapest plan reaching its level lam_j
(_wf_stage._plans: a hull segment, numpy over all jobs at once) gives one aggregate use vector U(p) in
R dimensions, and any convex combination of such whole-problem plans is itself an allocation that
reaches every lam_j with every job's time <= 1. So with plans P_1..P_K found so far:

    minimize  theta   s.t.  sum_i l_i U_i[r] - b_r - theta s_r <= bound_r   every row r   (dual p_r >= 0)
                            sum_{r of q} b_r <= pool_bound_q                 every pool q
                            sum_i l_i = 1,  l >= 0,  b >= 0                  (s_r = max(bound_r, 1))

theta < 0: the combination fits every row with room to spare: lam is reachable, and the combined x
proves it (a feasible allocation, not an estimate). Otherwise the LP's row duals p are the next prices
(Kelley's cutting planes on the Lagrangian dual). At any prices p, weak duality: every allocation that
reaches lam costs at least sum_j S_j mincost_j(p, lam_j) and at most p.bound + sum_q max_{r of q} p_r
pool_bound_q, so a p whose cheapest plans cost more than that proves lam unreachable (a certificate,
exact up to a 1e-7 relative margin). Neither found within MAX_ITER plans: undecided, and the caller
solves its LP as before (starting from the last prices).

Each plan costs one _plans call (about 24 ms CPU at 10,000 jobs x 8 types); the LP above has K + a few
columns and R + 1 rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from accelpool.core.allocation import FloatArray, IntArray
from accelpool.core.policies._lp import solve_lp
from accelpool.core.policies._wf_stage import _min_cost, _plans, _segment_x, _Stage

MAX_ITER = 24
"""Whole-problem plans tried before giving up (undecided)."""
MARGIN = 1e-6
"""theta below -MARGIN (relative to each row's bound) counts as fitting."""


@dataclass
class Reach:
    """The answer: ``fits`` True (x reaches lam), False (``price`` proves it cannot), None (undecided;
    ``price``: the last prices, a start for an LP)."""

    fits: bool | None
    price: FloatArray
    x: FloatArray | None = None
    plans: int = 0


def _budget(stage: _Stage, p: FloatArray) -> float:
    rows = stage.rows
    value = float((p * rows.bound).sum())
    for q in range(len(rows.pool_bound)):
        in_q = rows.pool_of == q
        if in_q.any():
            value += float(p[in_q].max()) * float(rows.pool_bound[q])
    return value


def reach(stage: _Stage, lam: FloatArray, starts: list[FloatArray], max_iter: int = MAX_ITER) -> Reach:
    """Decide whether every group j can reach level lam[j] (groups with lam <= 0 need nothing)."""
    ng, tt = stage.a.shape
    rows = stage.rows
    rr = rows.n_rows
    need = lam > 0
    if (lam > stage.ceiling * (1 + 1e-12)).any():
        return Reach(False, np.zeros(rr))
    lam_eval = np.where(need, lam, stage.ceiling)  # any reachable level; those jobs' use is dropped
    idx = np.nonzero(need)[0]
    size = stage.size
    scale_r = np.maximum(rows.bound, 1.0)
    borrow = np.nonzero(rows.pool_of >= 0)[0]
    nb = len(borrow)
    npool = len(rows.pool_bound)
    uses: list[FloatArray] = []
    segs: list[tuple[IntArray, IntArray]] = []
    if not starts:
        starts = [np.ones(rr) / scale_r]
    last = starts[-1]

    def plan(p: FloatArray) -> bool:
        """Add the cheapest plans at p; True when they prove lam unreachable."""
        pi = stage.effective_price(p)
        u, v, cost, _ = _plans(stage, pi, lam_eval)
        xv, xu = _segment_x(stage, u, v, idx, lam_eval[idx])
        per = np.zeros((ng, tt))
        per[idx, v[idx]] += size[idx] * xv
        real = u[idx] > 0
        per[idx[real], u[idx[real]] - 1] += size[idx[real]] * xu[real]
        use = stage.row_total(per)
        uses.append(use)
        segs.append((u, v))
        if not p.any():
            return False
        budget = _budget(stage, p)
        if float(p @ use) <= budget * (1 + 1e-7):
            return False
        exact = _min_cost(stage, pi, lam_eval)[idx]  # the proof uses exact minimum costs
        if not np.isfinite(exact).all():
            return True
        return float((size[idx] * exact).sum()) > budget * (1 + 1e-7) + 1e-12 * float(p.max())

    for p in starts:
        if plan(p):
            return Reach(False, p, plans=len(uses))
    for _ in range(max_iter):
        k = len(uses)
        # columns: l_1..l_k, borrow (nb), theta; rows: rr resource rows, npool pools, convexity
        ncol = k + nb + 1
        dense = np.zeros((rr + npool + 1, ncol))
        dense[:rr, :k] = np.array(uses).T
        for i, r in enumerate(borrow.tolist()):
            dense[r, k + i] = -1.0
            dense[rr + int(rows.pool_of[r]), k + i] = 1.0
        dense[:rr, -1] = -scale_r
        dense[rr + npool, :k] = 1.0
        cost = np.zeros(ncol)
        cost[-1] = 1.0
        row_lo = np.concatenate([np.full(rr + npool, -np.inf), [1.0]])
        row_hi = np.concatenate([rows.bound, rows.pool_bound, [1.0]])
        col_lo = np.concatenate([np.zeros(k + nb), [-np.inf]])
        col_hi = np.full(ncol, np.inf)
        res = solve_lp(cost, sparse.csc_matrix(dense), row_lo, row_hi, col_lo, col_hi)
        if not res.ok:
            return Reach(None, last, plans=len(uses))
        theta = float(res.x[-1])
        if theta < -MARGIN:
            weights = np.maximum(res.x[:k], 0.0)
            weights /= weights.sum()
            x = np.zeros((ng, tt))
            for w, (u, v) in zip(weights.tolist(), segs, strict=True):
                if w <= 0:
                    continue
                xv, xu = _segment_x(stage, u, v, idx, lam_eval[idx])
                real = u[idx] > 0
                x[idx, v[idx]] += w * xv
                x[idx[real], u[idx[real]] - 1] += w * xu[real]
            return Reach(True, np.zeros(rr), np.clip(x, 0.0, 1.0), plans=len(uses))
        p = np.maximum(-res.row_dual[:rr], 0.0)
        if not p.any():
            break
        last = p
        if plan(p):
            return Reach(False, p, plans=len(uses))
    return Reach(None, last, plans=len(uses))
