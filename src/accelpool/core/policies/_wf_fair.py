"""Max-min fairness approximated by alpha-fairness, solved in the rows' price space (issue 13; not wired in).

Notation as in _waterfill.py and _seam.py: a[j, t] per-device level per unit of time, S_j devices a
(merged) group holds while it runs (n_j jobs of scale s_j), rows r with members M_r, columns cover_r,
bound b_r.

    maximize  sum_j n_j U(level_j),   U(l) = -l^(1-alpha) / (alpha - 1)      (alpha-fair)
    s.t.      level_j = sum_t a[j,t] x[j,t],  sum_t x[j,t] <= 1,  use_r <= b_r  (every row)

As alpha grows the alpha-fair allocation tends to the max-min fair (lexicographic) one (Mo and Walrand,
IEEE/ACM Transactions on Networking 8(5), 2000). Its Lagrangian dual is a convex function of the R row
prices p only: at prices p every job alone maximizes U(l) - s_j C_j(l, p), where C_j(l, p) is the cheapest
cost per device of reaching level l, the lower convex hull of the points (0, 0) and (a[j,t], pi[j,t])
(pi[j,t]: the prices of the rows j counts in on t). On hull segment k, slope sigma_k, the best level is
l_k = (s_j sigma_k)^(-1/alpha), so

    level_j(p) = sum_k clip(l_k - A_{k-1}, 0, A_k - A_{k-1})       (A_k: the hull's vertex levels)

one vectorized pass over the jobs (the hull by gift-wrapping, at most T steps of N x T). The dual's
minimum clears the market: use_r(p) = b_r where p_r > 0, use_r <= b_r where p_r = 0. It is found by
Newton's method on the log-prices theta = ln p (the prices of rows whose jobs sit at different levels
differ by factors (L'/L)^alpha, far beyond floating point, so nothing here forms p itself): the Jacobian
d use / d theta is a sum of one rank-1 term per job inside a hull segment (N x R^2).

The primal at the last prices is a plan per job (a hull vertex or a point on a segment); rows still over
their bound (by the Newton tolerance) are scaled down: every x[j,t] is multiplied by the smallest
b_r / use_r over the rows it counts in, so the result fits every row exactly and levels drop by at most
that tolerance. Callers then hand out spare capacity (fill_spare).

What it gives up: the allocation is alpha-fair, not lexicographically max-min: among jobs a max-min
stage would hold at one level L, those whose marginal cost s_j sigma_j is lower get a little more and the
others a little less (levels differ by factors (sigma / sigma')^(1/alpha)), so the smallest level is
below the exact stage-1 level by about ln(sigma_max / sigma_min) / alpha. Quota rows that borrow from a
pool are not handled (``solve`` returns None; the caller uses the exact path).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import minimize

from accelpool.core.allocation import Allocation, AllocationProblem, BoolArray, FloatArray, IntArray
from accelpool.core.policies._seam import (
    Rows,
    build_rows,
    fill_spare,
    finish,
    normalized,
    solve_lp,
    uncontended,
    usable_mask,
)
from accelpool.core.policies._wf_stage import _plans, _Stage
from accelpool.core.policies.max_min_fairness import NAME, _level_coefficients, max_min_fairness

NEG = -1e300
"""Log-price of a row with price 0."""


@dataclass(frozen=True)
class FairConfig:
    """Settings of the alpha-fair engine (passed in; no module switches)."""

    alpha: float = 20.0
    """Fairness exponent: larger is closer to max-min fairness and harder to solve."""
    tol: float = 1e-3
    """Newton stops when every row's use is within tol x bound of its bound (priced rows) or under it."""
    max_iter: int = 60
    fd_step: float = 0.05
    """Finite-difference step in log-price for the aggregate Jacobian."""
    margin: float = 0.02
    restarts: int = 4
    """L-BFGS-B runs, each recentred on the last one's prices."""
    """Jobs whose next cheapest plan costs within this fraction of their cheapest are re-planned by the
    settling LP."""


@dataclass
class _Hull:
    """Every group's lower hull at some prices: segment k runs from vertex u[:, k] to v[:, k]."""

    u: IntArray  # (N, K) column of the segment's start, -1: idle (0, 0)
    v: IntArray  # (N, K) column of the segment's end, -1: no segment
    a_u: FloatArray
    a_v: FloatArray
    sigma: FloatArray  # (N, K) log of the slope (price per unit of level), inf where no segment
    log_dpi: FloatArray  # (N, K) log(pi_v - pi_u)
    psi_u: FloatArray  # (N, K) log pi_u (NEG: idle)


class _Market:
    def __init__(
        self, a: FloatArray, scale: FloatArray, size: FloatArray, rows: Rows, member: BoolArray
    ) -> None:
        n, tt = a.shape
        self.a = a
        self.scale = scale
        self.size = size
        self.rows = rows
        self.bound = rows.bound.astype(np.float64)
        self.cover = rows.cover(tt)
        self.member = member  # (R, N)
        # classes of groups that count in the same rows: pi depends on the class only
        if rows.n_rows:
            _, first, inv = np.unique(member.T, axis=0, return_index=True, return_inverse=True)
            self.klass = inv.reshape(-1)
            self.k_member = member[:, first]  # (R, K)
        else:
            self.klass = np.zeros(n, dtype=np.int64)
            self.k_member = np.zeros((0, 1), dtype=bool)
        # counts[r, j, t]: does group j count in row r on column t
        self.usable = a > 0
        # a row with bound 0 forbids its members on its columns
        for r in np.nonzero(self.bound <= 0)[0].tolist():
            self.usable[np.ix_(member[r], self.cover[r])] = False
        self.a_use = np.where(self.usable, a, 0.0)
        self.log_a = np.log(np.where(self.usable, a, 1.0))
        self.log_scale = np.log(scale)

    def log_pi(self, theta: FloatArray) -> FloatArray:
        """psi[j, t] = log of the summed prices of the rows j counts in on t (NEG when none priced)."""
        n, tt = self.a.shape
        nk = self.k_member.shape[1]
        out = np.full((nk, tt), NEG)
        for c in range(nk):
            for t in range(tt):
                on = self.k_member[:, c] & self.cover[:, t] & (theta > NEG / 2)
                if on.any():
                    th = theta[on]
                    m = th.max()
                    out[c, t] = m + np.log(np.exp(th - m).sum())
        res: FloatArray = out[self.klass]
        return res

    def hull(self, psi: FloatArray) -> _Hull:
        n, tt = self.a.shape
        rows_i = np.arange(n)
        cur_a = np.zeros(n)
        cur_psi = np.full(n, NEG)
        cur_t = np.full(n, -1)
        us, vs, aus, avs, sigs, dps, pus = [], [], [], [], [], [], []
        for _ in range(tt):
            cand = self.usable & (self.a_use > cur_a[:, None] * (1 + 1e-12) + 1e-300)
            has = cand.any(axis=1)
            if not has.any():
                break
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                diff = np.minimum(cur_psi[:, None] - psi, 0.0)
                log_dpi = np.where(psi > cur_psi[:, None], psi + np.log1p(-np.exp(diff)), NEG)
                log_dpi = np.where(np.isfinite(log_dpi), log_dpi, NEG)
                sig = np.where(
                    cand, log_dpi - np.log(np.maximum(self.a_use - cur_a[:, None], 1e-300)), np.inf
                )
            # ties: the larger a (a longer segment at the same slope)
            key = sig - 1e-12 * self.a_use
            t = np.argmin(key, axis=1)
            us.append(np.where(has, cur_t, -1))
            vs.append(np.where(has, t, -1))
            aus.append(cur_a.copy())
            avs.append(np.where(has, self.a_use[rows_i, t], cur_a))
            sigs.append(np.where(has, sig[rows_i, t], np.inf))
            dps.append(np.where(has, log_dpi[rows_i, t], NEG))
            pus.append(cur_psi.copy())
            cur_a = np.where(has, self.a_use[rows_i, t], cur_a)
            cur_psi = np.where(has, psi[rows_i, t], cur_psi)
            cur_t = np.where(has, t, cur_t)
        st = np.stack
        return _Hull(st(us, 1), st(vs, 1), st(aus, 1), st(avs, 1), st(sigs, 1), st(dps, 1), st(pus, 1))

    def respond(
        self, theta: FloatArray, alpha: float
    ) -> tuple[FloatArray, FloatArray, FloatArray, _Hull, IntArray, BoolArray]:
        """Each group's best reply at log-prices theta: x, levels, row use; the hull, the segment each
        group's level lies on and whether it lies strictly inside it."""
        n, tt = self.a.shape
        h = self.hull(self.log_pi(theta))
        with np.errstate(over="ignore", invalid="ignore"):
            target = np.exp(-(self.log_scale[:, None] + h.sigma) / alpha)  # l_k; 0 where no segment
        target = np.where(np.isfinite(h.sigma), target, 0.0)
        target = np.where(h.sigma <= NEG / 2, np.inf, target)
        length = h.a_v - h.a_u
        part = np.clip(target - h.a_u, 0.0, length)
        level = part.sum(axis=1)
        # the segment holding the level: the last with a positive part
        pos = part > 0
        k = np.where(pos.any(axis=1), pos.shape[1] - 1 - np.argmax(pos[:, ::-1], axis=1), 0)
        idx = np.arange(n)
        inside = pos[idx, k] & (part[idx, k] < length[idx, k])
        au, av = h.a_u[idx, k], h.a_v[idx, k]
        u, v = h.u[idx, k], h.v[idx, k]
        with np.errstate(divide="ignore", invalid="ignore"):
            xv = np.where(av > au, (level - au) / (av - au), 0.0)
        xv = np.clip(np.where(pos.any(axis=1), xv, 0.0), 0.0, 1.0)
        x = np.zeros((n, tt))
        ok = v >= 0
        x[idx[ok], v[ok]] = xv[ok]
        real_u = ok & (u >= 0)
        x[idx[real_u], u[real_u]] += 1.0 - xv[real_u]
        return x, level, self.use(x), h, k, inside

    def use(self, x: FloatArray) -> FloatArray:
        dev = x * self.size[:, None]
        out: FloatArray = (self.member * (dev @ self.cover.T.astype(np.float64)).T).sum(axis=1)
        return out


def solve(
    a: FloatArray, scale: FloatArray, rows: Rows, usable: BoolArray, config: FairConfig
) -> tuple[FloatArray, dict[str, float]] | None:
    """The alpha-fair allocation x (jobs x types) fitted to every row, and a few statistics; None when the
    problem has quota rows borrowing from a pool (not handled: use the exact path)."""
    n, tt = a.shape
    x_out = np.zeros((n, tt))
    if (rows.pool_of >= 0).any():
        return None
    runnable = np.nonzero(usable.any(axis=1))[0]
    if len(runnable) == 0 or tt == 0:
        return x_out, {"iterations": 0.0}
    a_r = np.where(usable[runnable], a[runnable], 0.0)
    key = np.concatenate([a_r, scale[runnable, None], rows.member[:, runnable].T.astype(np.float64)], axis=1)
    _, first, inverse, counts = np.unique(
        key, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    inverse = inverse.reshape(-1)
    g_scale = scale[runnable][first]
    market = _Market(a_r[first], g_scale, g_scale * counts, rows, rows.member[:, runnable[first]])
    x, stats = _clear(market, config)
    x_out[runnable] = x[inverse]
    return x_out, stats


FLOOR = 10.0
"""A row whose log-price is FLOOR x alpha below the highest is free (its price is e^-(10 alpha) of the
top one: jobs whose level it would limit sit 10 / e-folds... far above the priced ones)."""


def _residual(market: _Market, use: FloatArray, theta: FloatArray, alpha: float) -> FloatArray:
    """Relative excess use per row; a free row (see FLOOR) counts only when over its bound."""
    b = np.maximum(market.bound, 1e-12)
    res = (use - market.bound) / b
    free = theta <= theta.max() - FLOOR * alpha + 1e-9
    out: FloatArray = np.where(free, np.maximum(res, 0.0), res)
    return out


def _dual(
    market: _Market, theta: FloatArray, alpha: float, c: float, base: FloatArray
) -> tuple[float, FloatArray]:
    """The alpha-fair dual at log-prices theta, less a constant, times e^-c, and its gradient in theta.

    D(p) = sum_r p_r b_r + sum_j [n_j U(l_j) - S_j C_j(l_j)], U(l) = -l^(1-alpha)/(alpha-1), convex in p,
    dD/dtheta_r = p_r (b_r - use_r). U(l_j) is taken less U(base_j), a constant per job (neither the
    minimizer nor the gradient changes): U of a job held low by a steep hull is e^(alpha ln(1/l)) times
    the price level, and would swamp every other term."""
    x, level, use, h, k, inside = market.respond(theta, alpha)
    n = len(level)
    idx = np.arange(n)
    ok = h.v[idx, k] >= 0
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        pr = np.exp(np.minimum(theta - c, 700.0))
        lb = (1 - alpha) * np.log(np.maximum(base, 1e-300))
        ll = (1 - alpha) * np.log(np.maximum(level, 1e-300))
        top = np.maximum(lb, ll)
        util = np.exp(np.minimum(top - c, 700.0)) * (np.exp(lb - top) - np.exp(ll - top)) / (alpha - 1)
        util = np.where(np.abs(level - base) <= 1e-11 * base, 0.0, util)
        cost_u = np.exp(np.minimum(h.psi_u[idx, k] - c, 700.0))
        slope = np.exp(np.minimum(h.sigma[idx, k] - c, 700.0))
        cost = np.where(ok, cost_u + (level - h.a_u[idx, k]) * slope, 0.0)
    count = market.size / market.scale
    value = float((pr * market.bound).sum() + (count * np.where(ok, util, 0.0) - market.size * cost).sum())
    grad: FloatArray = pr * (market.bound - use)
    return value, grad


def _prices(market: _Market, config: FairConfig, start: FloatArray | None) -> tuple[FloatArray, int, int]:
    """Minimize the dual over log-prices (L-BFGS-B), restarted around its last point (new constants c
    and base) while rows are still off by more than config.tol. Without ``start``: from one common
    log-price, found by bisection on the total excess. Returns the log-prices, iterations, evaluations."""
    alpha = config.alpha
    nr = market.rows.n_rows
    evals = [0]
    if start is None:
        lo, hi = -alpha * 20.0, alpha * 20.0
        while hi - lo > 1e-3 * alpha:
            mid = 0.5 * (lo + hi)
            evals[0] += 1
            if (market.respond(np.full(nr, mid), alpha)[2] - market.bound).sum() > 0:
                lo = mid
            else:
                hi = mid
        theta = np.full(nr, hi)
    else:
        theta = start.copy()
    scale_f = float(market.bound.sum())
    iters = 0
    for _ in range(config.restarts):
        c = float(theta.max())
        base = market.respond(theta, alpha)[1]

        def fun(th: FloatArray, c: float = c, base: FloatArray = base) -> tuple[float, FloatArray]:
            evals[0] += 1
            value, grad = _dual(market, th, alpha, c, base)
            return value / scale_f, grad / scale_f

        res = minimize(
            fun,
            theta,
            jac=True,
            method="L-BFGS-B",
            bounds=[(c - FLOOR * alpha, c + FLOOR * alpha)] * nr,
            options={"maxiter": config.max_iter, "gtol": 0.0, "ftol": 0.0},
        )
        iters += int(res.nit)
        theta = np.asarray(res.x, dtype=np.float64)
        use = market.respond(theta, alpha)[2]
        resid = float(np.abs(_residual(market, use, theta, alpha)).max())
        if resid <= config.tol:
            break
        # rows far off at prices too small for L-BFGS to notice: a multiplicative step on their own price
        off = np.abs(_residual(market, use, theta, alpha)) > 10 * config.tol
        ratio = np.maximum(use, 1e-9 * market.bound) / np.maximum(market.bound, 1e-12)
        theta = np.where(off, theta + np.clip(np.log(ratio), -1.0, 1.0), theta)
    return theta, iters, evals[0]


def _clear(market: _Market, config: FairConfig) -> tuple[FloatArray, dict[str, float]]:
    """Market-clearing log-prices (_prices), then the plans at those prices fitted to the rows."""
    alpha = config.alpha
    nr = market.rows.n_rows
    x, level, use, h, k, inside = market.respond(np.full(nr, NEG), alpha)
    if nr == 0 or (use <= market.bound * (1 + 1e-12)).all():
        return x, {"iterations": 0.0, "residual": 0.0, "evaluations": 1.0}
    theta, iters, evals = _prices(market, config, None)
    x, level, use, h, k, inside = market.respond(theta, alpha)
    resid = float(np.abs(_residual(market, use, theta, alpha)).max())
    x, gamma, n_tie = _settle(market, theta, x, level, use, config)
    return x, {
        "iterations": float(iters),
        "evaluations": float(evals),
        "residual": resid,
        "gamma": gamma,
        "tied": float(n_tie),
    }


def _settle(
    market: _Market, theta: FloatArray, x: FloatArray, level: FloatArray, use: FloatArray, config: FairConfig
) -> tuple[FloatArray, float, int]:
    """Fit the plans at the last prices to the rows: the jobs whose cheapest plan at their level is
    within config.margin of their next cheapest (ties) are re-planned by one small LP, the others keep
    their plans scaled by a common gamma:

        maximize gamma  s.t.  gamma x0_j (the others),  sum_t a[j,t] x[j,t] >= gamma level_j (ties),
                              sum_t x[j,t] <= 1,  gamma F_r + sum_{ties in M_r} S_j x[j, cover_r] <= b_r
    """
    n, tt = x.shape
    psi = market.log_pi(theta)
    top = psi.max(axis=1, keepdims=True)
    pi = np.where(psi > NEG / 2, np.exp(np.maximum(psi - top, -700.0)), 0.0)
    stage = _Stage(market.a_use, market.size, market.rows, market.member)
    _, _, best, second = _plans(stage, pi, np.minimum(level, stage.ceiling) * (1 - 1e-12))
    tie = np.isfinite(second) & (second <= best * (1 + config.margin) + 1e-300)
    fixed_use = market.use(np.where(tie[:, None], 0.0, x))
    j = np.nonzero(tie)[0]
    cols_j, cols_t = np.nonzero(market.usable[j])
    nx = len(cols_j)
    ntie = len(j)
    g_col = nx
    # rows: time (ntie), level (ntie), resource (R)
    cover = market.cover
    member = market.member
    rr, rc, rv = [], [], []
    rr.append(cols_j)
    rc.append(np.arange(nx))
    rv.append(np.ones(nx))
    rr.append(ntie + cols_j)
    rc.append(np.arange(nx))
    rv.append(market.a_use[j[cols_j], cols_t])
    rr.append(ntie + np.arange(ntie))
    rc.append(np.full(ntie, g_col))
    rv.append(-level[j])
    for r in range(market.rows.n_rows):
        on = member[r, j[cols_j]] & cover[r, cols_t]
        idx = np.nonzero(on)[0]
        rr.append(np.full(len(idx), 2 * ntie + r))
        rc.append(idx)
        rv.append(market.size[j[cols_j[idx]]])
        rr.append(np.array([2 * ntie + r]))
        rc.append(np.array([g_col]))
        rv.append(np.array([fixed_use[r]]))
    nrow = 2 * ntie + market.rows.n_rows
    mat = sparse.csc_matrix(
        (np.concatenate(rv), (np.concatenate(rr), np.concatenate(rc))), shape=(nrow, nx + 1)
    )
    row_lo = np.concatenate([np.full(ntie, -np.inf), np.zeros(ntie), np.full(market.rows.n_rows, -np.inf)])
    row_hi = np.concatenate([np.ones(ntie), np.full(ntie, np.inf), market.bound])
    cost = np.zeros(nx + 1)
    cost[g_col] = -1.0
    res = solve_lp(cost, mat, row_lo, row_hi, np.zeros(nx + 1), np.ones(nx + 1))
    if not res.ok:
        return _fit(market, x, use), float("nan"), ntie
    gamma = float(res.x[g_col])
    out = np.where(tie[:, None], 0.0, x * gamma)
    out[j[cols_j], cols_t] = np.maximum(res.x[:nx], 0.0)
    return _fit(market, out, market.use(out)), gamma, ntie


def _fit(market: _Market, x: FloatArray, use: FloatArray) -> FloatArray:
    """Scale x down on every row over its bound: x[j,t] times the smallest b_r / use_r over j's rows on t."""
    ratio = np.where(use > market.bound, market.bound / np.maximum(use, 1e-300), 1.0)
    if (ratio >= 1.0).all():
        return x
    out = x.copy()
    for r in np.nonzero(ratio < 1.0)[0].tolist():
        block = np.ix_(market.member[r], market.cover[r])
        out[block] *= ratio[r] * (1 - 1e-12)
    return out


def max_min_fairness_alpha(problem: AllocationProblem, config: FairConfig | None = None) -> Allocation:
    """max-min-fairness's allocation with the water-filling replaced by this module's alpha-fair engine
    (then the same spare-capacity fill); problems with quota pools go to the exact path. Not the
    default: see docs/allocate.md, "An alpha-fair engine in price space"."""
    started = time.perf_counter()
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    a = _level_coefficients(problem, usable)
    x = uncontended(problem, usable, rows, a)
    if x is None:
        solved = solve(a, problem.scale, rows, usable, config or FairConfig())
        if solved is None:
            return max_min_fairness(problem)
        x = fill_spare(problem, usable, rows, solved[0], a)
    runnable = usable.any(axis=1)
    norm = normalized(problem, usable)
    objective = float((norm * x).sum(axis=1)[runnable].min()) if runnable.any() else 0.0
    return finish(problem, x, rows, NAME, objective, started)
