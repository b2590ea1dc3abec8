"""Fast weighted max-min water-filling over resource rows, shared by every max-min style policy.

Notation (a stage of the water-filling; see _seam.py for rows r, pools q and borrow b_r):

    a[j, t]   normalized work per unit of time of job j on type t (>= 0; 0 where j may not use t)
    S_j       devices the job (group of identical jobs) holds on a type while it runs: m_j * scale_j
    active    jobs whose level is still being raised; frozen jobs keep level ell_j from earlier stages

    maximize  L
    s.t.      sum_t a[j,t] x[j,t] >= L                 j active       (dual y_j >= 0)
              sum_t a[j,t] x[j,t] >= ell_j             j frozen
              sum_t x[j,t] <= 1                        every j         (fraction of wall time)
              sum_{j in M_r} S_j x[j,t_r] - b_r <= bound_r    every row r   (dual price p_r >= 0)
              sum_{r of q} b_r <= pool_bound_q         every pool q
    Water-filling: solve, freeze the active jobs with y_j > 0 (they cannot rise without lowering
    another) or at their own ceiling (max_t a[j,t]), repeat until no job is active.

Speed. Only the R rows couple jobs. With row prices p, the cheapest way for job j to reach level l on
one type costs S_j * pi[j,t] / a[j,t] * l, pi[j,t] = sum of p_r over the rows j counts in on t. Most
jobs have one clearly cheapest type at the optimal prices, so they are *fixed* to it and enter the LP
only as aggregates (column generation over a restricted master):

    sum_{ambiguous j in M_r} S_j x[j,t_r] + L * K_r - b_r <= bound_r - F_r
    K_r = sum_{fixed active j in M_r, t0(j)=t_r} S_j / a[j,t0(j)],  F_r = same over frozen j with ell_j
    L <= min_{fixed active j} a[j,t0(j)]   (a fixed job still fits in its wall time)

After each solve the new prices check every fixed job (is t0 still its cheapest type, and is it
not at its time limit?). Jobs that fail become ambiguous and the master is solved again; when none
fails the restricted optimum is the optimum of the full LP (its duals price out every fixed job).
Start prices come from the same LP on a deterministic sample of jobs with rows scaled to the sample.
Identical jobs (same row a, scale and rows) are merged first and share one allocation.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from accelpool.core.allocation import BoolArray, FloatArray, IntArray
from accelpool.core.policies._seam import Rows, solve_lp

FULL_LP_GROUPS = 64
"""Stages with at most this many (merged) jobs go to HiGHS whole: setup costs more than it saves."""
SAMPLE_GROUPS = 300
SAMPLE_ABOVE = 3000
"""Start prices come from a sampled LP only above this many groups; below, price updates alone suffice."""
MARGIN = 0.01
"""A job is ambiguous when its second-cheapest type costs within 1% of its cheapest."""
MAX_ROUNDS = 40
MAX_STAGES = 400


class _Stage:
    """One stage's data: merged jobs, their state, and the rows."""

    def __init__(self, a: FloatArray, size: FloatArray, rows: Rows, member: BoolArray) -> None:
        self.a = a
        self.size = size
        self.rows = rows
        self.member = member  # (R, groups)
        self.member_f = member.astype(np.float64)
        self.onehot = (rows.type_of[:, None] == np.arange(a.shape[1])[None, :]).astype(np.float64)
        self.ceiling = a.max(axis=1)

    def effective_price(self, price: FloatArray) -> FloatArray:
        pi: FloatArray = self.member_f.T @ (price[:, None] * self.onehot)
        return pi

    def row_sum(self, t0: IntArray, per: FloatArray) -> FloatArray:
        """sum over groups j in M_r with t0(j) = t_r of per[j], for every row r."""
        on = self.member_f * (t0[None, :] == self.rows.type_of[:, None])
        out: FloatArray = on @ per
        return out


def _cost_ratio(stage: _Stage, price: FloatArray, tie_break: bool) -> FloatArray:
    pi = stage.effective_price(price)
    if tie_break:
        pi = pi + 1e-7 * max(float(price.max(initial=0.0)), 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(stage.a > 0, pi / np.where(stage.a > 0, stage.a, 1.0), np.inf)
    return np.asarray(ratio, dtype=np.float64)


def _solve_master(
    stage: _Stage,
    active: BoolArray,
    ell: FloatArray,
    amb: BoolArray,
    t0: IntArray,
) -> tuple[bool, float, FloatArray, FloatArray, FloatArray]:
    """Restricted master LP. Returns ok, L, x (groups x types), row prices p, level duals y."""
    a, size, rows = stage.a, stage.size, stage.rows
    ng, tt = a.shape
    rr = rows.n_rows
    amb_idx = np.nonzero(amb)[0]
    pj, pt = np.nonzero(a[amb_idx] > 0)
    pj_g = amb_idx[pj]
    k = len(pj)
    na = len(amb_idx)
    fixed = ~amb
    fa = fixed & active
    ff = fixed & ~active
    a0 = a[np.arange(ng), t0]
    with np.errstate(divide="ignore", invalid="ignore"):
        per_level = np.where(fixed, size / np.where(a0 > 0, a0, 1.0), 0.0)
    kk = stage.row_sum(t0, np.where(fa, per_level, 0.0))
    ffix = stage.row_sum(t0, np.where(ff, per_level * ell, 0.0))
    borrow = np.nonzero(rows.pool_of >= 0)[0]
    nb = len(borrow)
    # columns: 0 = L, 1..k = x pairs, then b
    col_l, col_x, col_b = 0, 1, 1 + k
    ncol = 1 + k + nb
    # rows: level (na), time (na), rule rows (rr), pools
    local = np.full(ng, -1)
    local[amb_idx] = np.arange(na)
    r_level = local[pj_g]
    act_amb = active[amb_idx]
    rows_i = [r_level, np.nonzero(act_amb)[0], na + local[pj_g]]
    cols_i = [col_x + np.arange(k), np.full(int(act_amb.sum()), col_l), col_x + np.arange(k)]
    vals_i = [a[pj_g, pt], -np.ones(int(act_amb.sum())), np.ones(k)]
    base = 2 * na
    in_row = stage.member[:, pj_g] & (rows.type_of[:, None] == pt[None, :])
    rrow, rpair = np.nonzero(in_row)
    rows_i += [base + rrow, base + np.nonzero(kk > 0)[0], base + borrow]
    cols_i += [col_x + rpair, np.full(int((kk > 0).sum()), col_l), col_b + np.arange(nb)]
    vals_i += [size[pj_g[rpair]], kk[kk > 0], -np.ones(nb)]
    pbase = base + rr
    rows_i.append(pbase + rows.pool_of[borrow])
    cols_i.append(col_b + np.arange(nb))
    vals_i.append(np.ones(nb))
    nrow = pbase + len(rows.pool_bound)
    amat = sparse.csc_matrix(
        (np.concatenate(vals_i), (np.concatenate(rows_i), np.concatenate(cols_i))), shape=(nrow, ncol)
    )
    lo = np.concatenate(
        [np.where(act_amb, 0.0, ell[amb_idx]), np.full(na + rr + len(rows.pool_bound), -np.inf)]
    )
    hi = np.concatenate([np.full(na, np.inf), np.ones(na), rows.bound - ffix, rows.pool_bound])
    lmax = float(a0[fa].min()) if fa.any() else np.inf
    lmax = min(lmax, float(stage.ceiling[active].max(initial=0.0)))
    cost = np.zeros(ncol)
    cost[col_l] = -1.0
    col_lo = np.zeros(ncol)
    col_hi = np.concatenate([[lmax], np.ones(k), np.full(nb, np.inf)])
    res = solve_lp(cost, amat, lo, hi, col_lo, col_hi)
    if not res.ok:
        return False, 0.0, np.zeros((ng, tt)), np.zeros(rr), np.zeros(ng)
    level = float(res.x[col_l])
    x = np.zeros((ng, tt))
    x[pj_g, pt] = np.clip(res.x[col_x : col_x + k], 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.where(active, level, ell)
        x[np.nonzero(fixed)[0], t0[fixed]] = np.clip(need[fixed] / a0[fixed], 0.0, 1.0)
    price = np.maximum(-res.row_dual[base : base + rr], 0.0)
    y = np.zeros(ng)
    y[amb_idx] = np.maximum(res.row_dual[:na], 0.0)
    return True, level, x, price, y


def _stage(
    stage: _Stage, active: BoolArray, ell: FloatArray, price: FloatArray | None, level_guess: float
) -> tuple[float, FloatArray, FloatArray, BoolArray]:
    """Solve one water-filling stage exactly. Returns L, x, prices, and the jobs to freeze."""
    ng = stage.a.shape[0]
    t0 = np.argmax(stage.a, axis=1)
    amb = np.ones(ng, dtype=bool)
    if price is not None and ng > FULL_LP_GROUPS:
        ratio = _cost_ratio(stage, price, tie_break=True)
        order = np.argsort(ratio, axis=1)
        t0 = order[:, 0]
        best = ratio[np.arange(ng), t0]
        second = ratio[np.arange(ng), order[:, 1]] if ratio.shape[1] > 1 else np.full(ng, np.inf)
        a0 = stage.a[np.arange(ng), t0]
        need = np.where(active, level_guess, ell)
        amb = (second <= best * (1 + MARGIN)) | (a0 < need * (1 + MARGIN)) | ~np.isfinite(best)
    for _ in range(MAX_ROUNDS):
        ok, level, x, p, y = _solve_master(stage, active, ell, amb, t0)
        if not ok:
            if amb.all():
                raise RuntimeError("the max-min LP has no solution (rows contradict the frozen levels)")
            amb[:] = True
            continue
        fixed = ~amb
        ratio = _cost_ratio(stage, p, tie_break=False)
        best = ratio.min(axis=1)
        mine = ratio[np.arange(ng), t0]
        a0 = stage.a[np.arange(ng), t0]
        wrong = fixed & ((mine > best * (1 + 1e-9) + 1e-12) | (active & (a0 <= level * (1 + 1e-9))))
        if not wrong.any():
            y_fixed = np.where(fixed & active, stage.size * mine, 0.0)
            bottleneck = active & ((y > 1e-9) | (y_fixed > 1e-9) | (stage.ceiling <= level * (1 + 1e-9)))
            return level, x, p, bottleneck
        amb |= wrong
    amb[:] = True
    ok, level, x, p, y = _solve_master(stage, active, ell, amb, t0)
    bottleneck = active & ((y > 1e-9) | (stage.ceiling <= level * (1 + 1e-9)))
    return level, x, p, bottleneck


def _sample_prices(stage: _Stage, active: BoolArray, ell: FloatArray) -> tuple[FloatArray, float]:
    """Row prices and level from the same stage LP on a deterministic sample of the jobs."""
    ng = stage.a.shape[0]
    rng = np.random.default_rng(12345)
    pick = np.sort(rng.choice(ng, size=SAMPLE_GROUPS, replace=False))
    rows = stage.rows
    share = np.ones(rows.n_rows)
    for r in range(rows.n_rows):
        total = (stage.size * stage.member[r]).sum()
        part = (stage.size[pick] * stage.member[r, pick]).sum()
        share[r] = part / total if total > 0 else 1.0
    frac = float(stage.size[pick].sum() / stage.size.sum())
    small_rows = Rows(
        type_of=rows.type_of,
        member=rows.member,  # unused by the master (it reads stage.member)
        bound=rows.bound * share,
        pool_of=rows.pool_of,
        kind=rows.kind,
        pool_bound=rows.pool_bound * frac,
    )
    small = _Stage(stage.a[pick], stage.size[pick], small_rows, stage.member[:, pick])
    level, _, price, _ = _stage(small, active[pick], ell[pick], None, 0.0)
    return price, level


def _refine_prices(stage: _Stage, price: FloatArray, iters: int = 12) -> tuple[FloatArray, float]:
    """Improve sample prices on all jobs by multiplicative price updates (tatonnement), keeping the best.

    With every job on its cheapest type, L * D_r(p) devices are asked of row r, where
    D_r = sum_{j in M_r, t0(j) = t_r} S_j / a[j,t0(j)]. Rows asked beyond their bound get dearer. Weak
    duality gives the bound L* <= sum_r bound_r p_r / sum_j S_j min_t pi[j,t]/a[j,t]; the prices with
    the lowest bound are kept (quota rows count their pool as bound: a relaxation).
    """
    rows = stage.rows
    pool = np.append(rows.pool_bound, 0.0)
    bound = rows.bound + np.where(rows.pool_of >= 0, pool[rows.pool_of], 0.0)
    bound = np.maximum(bound, 1e-9)
    positive = price[price > 0]
    p = np.maximum(price, 1e-3 * (positive.mean() if len(positive) else 1.0))
    best_p, best_ub = price, np.inf
    ng = stage.a.shape[0]
    for k in range(iters):
        ratio = _cost_ratio(stage, p, tie_break=False)
        t0 = np.argmin(ratio, axis=1)
        mine = ratio[np.arange(ng), t0]
        h = float((stage.size * mine).sum())
        ub = float((bound * p).sum()) / h if h > 0 else np.inf
        if ub < best_ub:
            best_ub, best_p = ub, p.copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            per = np.where(np.isfinite(mine), stage.size / stage.a[np.arange(ng), t0], 0.0)
        demand = stage.row_sum(t0, per)
        util = demand / bound
        mean = float((util * bound * p).sum() / max((bound * p).sum(), 1e-300))
        step = 0.5 / np.sqrt(k + 1.0)
        p = p * np.exp(step * np.clip(util / max(mean, 1e-300) - 1.0, -2.0, 2.0))
    return best_p, best_ub


def _skip_ceilings(
    stage: _Stage, active: BoolArray, ell: FloatArray, price: FloatArray | None, level: float
) -> FloatArray | None:
    """Freeze, in one go, every active job whose ceiling the next stages would reach anyway.

    A stage that stops at the lowest active ceiling freezes only the jobs with that ceiling; with many
    distinct ceilings (finish-time fairness) that is one LP per ceiling. Instead, binary-search the
    sorted ceilings c_1 < ... < c_m of the active jobs for the largest k such that pinning every job with
    ceiling <= c_k at its ceiling still lets all other active jobs reach c_k (feasibility is monotone in
    k: a smaller k relaxes every constraint). Those jobs are frozen at their ceilings (``active`` and
    ``ell`` updated in place); the water-filling then continues exactly as the one-by-one stages would.
    """
    ceilings = np.unique(stage.ceiling[active])
    lo, hi = -1, len(ceilings) - 1
    best_price = price
    while lo < hi:
        mid = (lo + hi + 1) // 2
        pin = active & (stage.ceiling <= ceilings[mid])
        rest = active & ~pin
        trial_ell = np.where(pin, stage.ceiling * (1 - 1e-9), ell)
        try:
            trial_level, _, trial_price, _ = _stage(stage, rest, trial_ell, price, float(ceilings[mid]))
        except RuntimeError:
            hi = mid - 1
            continue
        if not rest.any() or trial_level >= ceilings[mid] * (1 - 1e-7):
            lo, best_price = mid, trial_price
        else:
            hi = mid - 1
    if lo >= 0:
        pin = active & (stage.ceiling <= ceilings[lo])
        ell[pin] = stage.ceiling[pin] * (1 - 1e-9)
        active &= ~pin
    del level
    return best_price


def max_min_waterfill(
    a: FloatArray, scale: FloatArray, rows: Rows, usable: BoolArray
) -> tuple[FloatArray, FloatArray]:
    """Weighted max-min of sum_t a[j,t] x[j,t] with water-filling. Returns x (jobs x types) and levels."""
    n, tt = a.shape
    x_out = np.zeros((n, tt))
    levels = np.zeros(n)
    runnable = np.nonzero(usable.any(axis=1))[0]
    if len(runnable) == 0 or tt == 0:
        return x_out, levels
    a_r = np.where(usable[runnable], a[runnable], 0.0)
    key = np.concatenate([a_r, scale[runnable, None], rows.member[:, runnable].T.astype(np.float64)], axis=1)
    uniq, first, inverse, counts = np.unique(
        key, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    inverse = inverse.reshape(-1)
    sizes = scale[runnable][first] * counts
    stage = _Stage(a_r[first], sizes.astype(np.float64), rows, rows.member[:, runnable[first]])
    ng = len(first)
    active = np.ones(ng, dtype=bool)
    ell = np.zeros(ng)
    price: FloatArray | None = None
    level = 0.0
    if ng > SAMPLE_ABOVE:
        price, level = _sample_prices(stage, active, ell)
        price, _ = _refine_prices(stage, price)
    elif ng > FULL_LP_GROUPS:
        start = np.array([1.0 if k == "capacity" else 0.0 for k in rows.kind])
        price, level = _refine_prices(stage, start)
    x = np.zeros((ng, tt))
    for _ in range(MAX_STAGES):
        try:
            level, x, price, freeze = _stage(stage, active, ell, price, level)
        except RuntimeError:
            # frozen levels a hair too high for HiGHS's tolerances: relax them by 1e-6 and retry once
            ell *= 1 - 1e-6
            level, x, price, freeze = _stage(stage, active, ell, None, level)
        if not freeze.any():
            freeze = active.copy()
        ell[freeze] = level
        active &= ~freeze
        if not active.any():
            break
        at_ceiling = freeze & (stage.ceiling <= level * (1 + 1e-9))
        if (
            at_ceiling.any()
            and not (freeze & ~at_ceiling).any()
            and np.unique(stage.ceiling[active]).size > 16
        ):
            price = _skip_ceilings(stage, active, ell, price, level)
    x_out[runnable] = x[inverse]
    levels[runnable] = (a_r * x_out[runnable]).sum(axis=1)
    del uniq
    return x_out, levels
