"""Water-filling stages decided in the rows' price space (an alternative to _waterfill's masters).

Notation: _waterfill.py (a[j,t], c_j, S_j, rows r, pools q, active jobs, frozen levels ell_j).

Ceilings folded into the stage. A stage asks for the largest L such that every active job reaches
min(L, c_j) and every frozen job its ell_j. Feasibility is monotone in L; jobs with c_j <= L are then at
their ceiling. One such stage replaces "one stage per ceiling + a ceiling search".

Strong duality in R dimensions. Only the rows couple the jobs. At row prices p >= 0 (pool q priced at
mu_q = max of its borrowing rows' prices: the dual of b_r >= 0 and the pool row), job j's cheapest way to
reach level l costs S_j m_j(p, l), a convex piecewise-linear function of l (the lower hull of (0, 0) and
(a[j,t], pi[j,t])), and by LP duality (Farkas) the levels lam are reachable iff for every p >= 0

    C_p(lam) = sum_j S_j m_j(p, lam_j)  <=  B(p) = p . bound + sum_q mu_q pool_bound_q.

So Lambda(p) = the largest L with C_p(min(L, c), ell) <= B(p) is an upper bound on the stage's level for
every p (a proof: weak duality), and the level is min_p Lambda(p). C_p is nondecreasing and piecewise
linear in L, convex between consecutive ceilings (concave kinks at the ceilings): Lambda(p) is found by
Newton steps from above with regula falsi as a safeguard (_lambda; each step one numpy pass).

Lower bounds are allocations: a convex combination of plans (each job on its cheapest hull segment at
some prices, reaching min(L, c_j) / ell_j) reaches the same levels and keeps every job's time <= 1, so a
combination that fits every row is a feasible allocation at level L. The master (_Master) combines the
plans found so far, block by block (the jobs in BLOCKS blocks, each its own convex combination:
Dantzig-Wolfe, disaggregated), minimizing the rows' overload theta; its row duals are the next prices,
smoothed toward the best-bound prices (Wentges). The stage loop:

    hi = Lambda(p0); L = hi (1 - STEP)
    repeat: master over the plans at L -> theta <= 0: lo = L (that combination is x); stop when
                                          hi - lo <= GAP hi; else ask for L = hi - (hi - lo) / 4
                                          (plans re-made at L from the last REMAKE prices)
                                       -> else prices p, the plan at p; if C_p(L) > B(p): hi = Lambda(p)
                                          < L, L moves below hi (plans scaled down to L: still plans)

Both bounds are proofs, so each stage's level is certified within GAP (1e-6) without a master over the
jobs; after MAX_PLANS plans a stage stops with its best bounds (lo a feasible level, possibly further
than GAP below the optimum).

Who freezes. Jobs with c_j <= lo are at their ceiling. Of the others, those whose cheapest plan at the
best-bound prices costs more per unit of level at hi (left slope > 0: they use priced rows) are the
stage's bottleneck and freeze at lo; the prices are first cleaned of entries under CLEAN x the largest
when the cleaned prices still bound the level (_sparsest). This is the LP's y_j > 0 rule read off near-
optimal prices, not an exact dual: where the optimal duals are unique and the bounds close it agrees
with the whole-LP water-filling (tests/core/test_wf_price.py: every job's level within 1e-5), but a
stage whose prices are not yet optimal can freeze a job the exact LP would let rise (never a feasibility
question: every stage's x reaches the frozen levels). After MAX_STAGES stages the jobs still rising keep
the last lo, as in _waterfill.py.

Not the default: see docs/allocate.md, "Stages in price space" (bench/bench_wf_price.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from accelpool.core.allocation import Allocation, AllocationProblem, BoolArray, FloatArray, IntArray
from accelpool.core.policies._lp import solve_lp
from accelpool.core.policies._seam import (
    Rows,
    build_rows,
    fill_spare,
    finish,
    normalized,
    uncontended,
    usable_mask,
)
from accelpool.core.policies._waterfill import MAX_STAGES
from accelpool.core.policies._wf_stage import _Stage

GAP = 1e-6
"""A stage stops when its certified bounds are within this relative gap."""
LAMBDA_TOL = 1e-9
"""Relative width at which _lambda stops (its answer is the bracket's upper end)."""
SMOOTH = 0.7
"""Weight of the best-bound prices in the smoothed query prices."""
STEP = 1e-5
"""First relative step below the upper bound for the level asked of the master."""
REMAKE = 4
"""Plans re-made (from their prices) when the level asked rises."""
TIE = 1e-7
"""Plans are chosen at cost + TIE x their cost at equal prices per device of capacity (1 / bound_r): rows the
duals leave at 0 still break ties (with free types every plan is as cheap as any other, and
fastest-type plans overload rows). Proofs use the exact minimum cost."""
BLOCKS = 128
"""Blocks of jobs in the master (see _Master)."""
CLEAN = 1e-2
"""Prices under this fraction of the largest are tried at 0 before deciding who freezes (_sparsest)."""
GUESS = 0.005
"""A later stage first searches Lambda below the last stage's level x (1 + GUESS) (a proof when C_p > B
there), and from the highest ceiling only when that fails."""
MAX_PLANS = 100
"""Plans per stage before it stops with its best certified bounds."""


class _Pairs:
    """Every segment (u, v) of every job that can be one (a[j,u] < a[j,v], both usable), dense: jobs x K,
    K at most (T+1) T / 2 (the points sorted by a, every pair below another; columns no job needs are
    cut). u = 0 idle, u = t+1 type t; v a type; ``ok`` False pads the rows of jobs with fewer segments."""

    def __init__(self, stage: _Stage) -> None:
        ng, tt = stage.a.shape
        order = np.argsort(stage.a_from, axis=1, kind="stable")  # idle (column 0) first among the zeros
        iu, iv = np.triu_indices(tt + 1, 1)
        uu, ve = order[:, iu], order[:, iv]
        au = np.take_along_axis(stage.a_from, uu, axis=1)
        av = np.take_along_axis(stage.a_from, ve, axis=1)
        ok = (
            np.take_along_axis(stage.from_ok, uu, axis=1)
            & (ve > 0)
            & np.take_along_axis(stage.from_ok, ve, axis=1)
            & (au < av)
        )
        perm = np.argsort(~ok, axis=1, kind="stable")
        width = int(ok.sum(axis=1).max(initial=1))
        perm = perm[:, : max(width, 1)]
        self.ok = np.take_along_axis(ok, perm, axis=1)
        self.uu = np.take_along_axis(uu, perm, axis=1)
        self.vv = np.maximum(np.take_along_axis(ve, perm, axis=1) - 1, 0)
        self.au = np.take_along_axis(au, perm, axis=1)
        self.av = np.take_along_axis(av, perm, axis=1)
        with np.errstate(divide="ignore"):
            self.inv = np.where(self.ok, 1.0 / np.where(self.ok, self.av - self.au, 1.0), 0.0)
        self.ng, self.tt = ng, tt


@dataclass
class _Priced:
    """One price vector's per-segment slopes (reused across levels)."""

    p: FloatArray
    pu: FloatArray
    slope: FloatArray
    budget: float


def _priced(stage: _Stage, pairs: _Pairs, p: FloatArray) -> _Priced:
    pi = stage.effective_price(p)
    ext = np.concatenate([np.zeros((pairs.ng, 1)), pi], axis=1)
    pu = np.take_along_axis(ext, pairs.uu, axis=1)
    slope = (np.take_along_axis(pi, pairs.vv, axis=1) - pu) * pairs.inv
    return _Priced(p, pu, slope, _budget(stage, p))


def _budget(stage: _Stage, p: FloatArray) -> float:
    rows = stage.rows
    value = float((p * rows.bound).sum())
    for q in range(len(rows.pool_bound)):
        in_q = rows.pool_of == q
        if in_q.any():
            value += float(p[in_q].max()) * float(rows.pool_bound[q])
    return value


def _cheapest(
    pairs: _Pairs, pr: _Priced, lam: FloatArray, tie: _Priced | None = None
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Per job: the cheapest cost per device of reaching lam_j, its left slope, and the segment index
    (-1 where lam_j <= 0: nothing needed, cost 0). ``tie``: the segment is chosen at cost + TIE x the
    cost at ``tie``'s prices (the cost returned is still the exact minimum)."""
    lv = lam[:, None]
    valid = pairs.ok & (pairs.au < lv) & (lv <= pairs.av)
    cost = np.where(valid, pr.pu + pr.slope * (lv - pairs.au), np.inf)
    rows = np.arange(pairs.ng)
    if tie is None:
        k = np.argmin(cost, axis=1)
        best = cost[rows, k]
    else:
        best = cost.min(axis=1)
        scale = max(float(np.max(pr.p, initial=0.0)), 1e-300) / max(float(np.max(tie.p, initial=0.0)), 1e-300)
        k = np.argmin(cost + (TIE * scale) * (tie.pu + tie.slope * (lv - pairs.au)), axis=1)
    need = lam > 0
    best = np.where(need, best, 0.0)
    slope = np.where(need, pr.slope[rows, k], 0.0)
    return best, slope, np.where(need, k, -1)


def _targets(active: BoolArray, ceiling: FloatArray, ell: FloatArray, level: float) -> FloatArray:
    out: FloatArray = np.where(active, np.minimum(level, ceiling), ell)
    return out


def _lambda(
    stage: _Stage,
    pairs: _Pairs,
    pr: _Priced,
    active: BoolArray,
    ell: FloatArray,
    start: float,
    rel: float = LAMBDA_TOL,
    first: tuple[float, float] | None = None,
) -> tuple[float, int]:
    """An upper bound on Lambda(p) (the largest L with C_p(L) <= B(p)) below ``start``, within a relative
    ``rel`` (default LAMBDA_TOL) of it, and the number of evaluations. Returns ``start`` when C_p(start) <= B(p) (no bound
    below start). ``first``: C_p(start) - B(p) and the left slope there, when the caller has them.

    C_p(L) is nondecreasing and piecewise linear, convex between consecutive ceilings (a job passing its
    ceiling stops adding slope: a concave kink there). Newton steps from the upper end of a bracket
    (a tangent from above never passes the root where C_p is convex), regula falsi (Illinois) when a step
    leaves the bracket. Every upper end has C_p > B(p): a proof that Lambda(p) is below it."""
    size = stage.size
    evals = 0

    def f(level: float) -> tuple[float, float]:
        nonlocal evals
        evals += 1
        cost, slope, _ = _cheapest(pairs, pr, _targets(active, stage.ceiling, ell, level))
        total = float(size @ cost)
        d = float(size @ np.where(active & (stage.ceiling >= level), slope, 0.0))
        return (total - pr.budget if np.isfinite(total) else np.inf), d

    tol = 1e-12 * max(pr.budget, 1e-300)
    f_hi, d_hi = f(start) if first is None else first
    if f_hi <= tol:
        return start, evals
    hi, lo = start, 0.0
    f_lo = -pr.budget  # a guess (frozen jobs' cost not counted): only steers regula falsi; hi stays a proof
    side = 0
    for _ in range(60):
        if hi - lo <= rel * hi:
            break
        cand = hi - f_hi / d_hi if d_hi > 0 and np.isfinite(f_hi) else -1.0
        if not lo < cand < hi:
            cand = lo + (hi - lo) * (-f_lo) / (f_hi - f_lo) if np.isfinite(f_hi) else 0.5 * (lo + hi)
            if not lo < cand < hi:
                cand = 0.5 * (lo + hi)
        fc, dc = f(cand)
        if fc > tol:
            hi, f_hi, d_hi = cand, fc, dc
            if side == 1:
                f_lo *= 0.5
            side = 1
        else:
            if fc >= -tol:
                return cand * (1 + 1e-12), evals  # at the root (to rounding)
            lo, f_lo = cand, fc
            if side == -1:
                f_hi *= 0.5
            side = -1
    return hi, evals


@dataclass
class PriceStage:
    """A stage's answer: certified bounds lo <= L* <= hi, the allocation x reaching lo (None when no
    combination was found), the last prices, and how many plans it took."""

    lo: float
    hi: float
    x: FloatArray | None
    price: FloatArray
    plans: int
    lambdas: int


class _Master:
    """The Dantzig-Wolfe master over plans at one level, disaggregated: the jobs are split into blocks
    (job j in block j mod BLOCKS), and each block takes its own convex combination of its parts of the
    plans (one convexity row per block). Any such mix is still an allocation reaching the same levels,
    and it has BLOCKS times the freedom of one combination of whole-problem plans (Kelley's tail: on
    issue 13's random family at 2,000 x 8, seed 0, one combination had not closed a 1e-6 gap in 100
    plans; with 128 blocks, 24-33 plans)."""

    def __init__(self, stage: _Stage) -> None:
        rows = stage.rows
        ng = stage.a.shape[0]
        self.rows = rows
        self.stage = stage
        self.scale_r = np.maximum(rows.bound, 1.0)
        self.borrow = np.nonzero(rows.pool_of >= 0)[0]
        self.blocks = max(1, min(BLOCKS, ng))
        self.block_of = np.arange(ng) % self.blocks
        self.onehot = sparse.csr_matrix(
            (np.ones(ng), (np.arange(ng), self.block_of)), shape=(ng, self.blocks)
        )

    def use(self, per: FloatArray) -> FloatArray:
        """Per row and block: sum over the block's jobs j in M_r of per[j, columns of r] (R x blocks)."""
        stage = self.stage
        if stage.rows.span is None:
            vals = stage.member_f * per[:, stage.rows.type_of].T
        else:
            vals = stage.member_f * (per @ stage.onehot.T).T
        out: FloatArray = np.asarray(self.onehot.T @ vals.T).T
        return out

    def solve(self, uses: list[FloatArray]) -> tuple[float, FloatArray, FloatArray] | None:
        """theta, the weights (plans x blocks) and the row prices."""
        rows = self.rows
        rr = rows.n_rows
        nb = len(self.borrow)
        npool = len(rows.pool_bound)
        k, g = len(uses), self.blocks
        ncol = k * g + nb + 1
        nrow = rr + npool + g
        stack = np.stack(uses)  # k x R x g
        # column (i, b) = plan i's part in block b: rows 0..R-1, and block b's convexity row
        rr_idx = np.broadcast_to(np.arange(rr)[None, :, None], (k, rr, g))
        col_idx = np.broadcast_to((np.arange(k)[:, None] * g + np.arange(g)[None, :])[:, None, :], (k, rr, g))
        r_list = [rr_idx.reshape(-1), np.full(k * g, 0) + rr + npool + np.tile(np.arange(g), k)]
        c_list = [col_idx.reshape(-1), np.arange(k * g)]
        v_list = [stack.reshape(-1), np.ones(k * g)]
        for i, r in enumerate(self.borrow.tolist()):
            r_list.append(np.array([r, rr + int(rows.pool_of[r])]))
            c_list.append(np.array([k * g + i, k * g + i]))
            v_list.append(np.array([-1.0, 1.0]))
        r_list.append(np.arange(rr))
        c_list.append(np.full(rr, ncol - 1))
        v_list.append(-self.scale_r)
        mat = sparse.csc_matrix(
            (np.concatenate(v_list), (np.concatenate(r_list), np.concatenate(c_list))), shape=(nrow, ncol)
        )
        cost = np.zeros(ncol)
        cost[-1] = 1.0
        row_lo = np.concatenate([np.full(rr + npool, -np.inf), np.ones(g)])
        row_hi = np.concatenate([rows.bound, rows.pool_bound, np.ones(g)])
        col_lo = np.concatenate([np.zeros(k * g + nb), [-np.inf]])
        col_hi = np.full(ncol, np.inf)
        res = solve_lp(cost, mat, row_lo, row_hi, col_lo, col_hi)
        if not res.ok:
            return None
        w = np.maximum(res.x[: k * g], 0.0).reshape(k, g)
        return float(res.x[-1]), w, np.maximum(-res.row_dual[:rr], 0.0)


def _plan(stage: _Stage, pairs: _Pairs, k: IntArray, lam: FloatArray) -> FloatArray:
    """x of the plan: each job on segment k[j] at level lam[j] (k = -1: nothing)."""
    ng, tt = stage.a.shape
    x = np.zeros((ng, tt))
    idx = np.nonzero(k >= 0)[0]
    kk = k[idx]
    xv = (lam[idx] - pairs.au[idx, kk]) * pairs.inv[idx, kk]
    x[idx, pairs.vv[idx, kk]] = np.clip(xv, 0.0, 1.0)
    uu = pairs.uu[idx, kk]
    real = uu > 0
    x[idx[real], uu[real] - 1] = np.clip(1.0 - xv[real], 0.0, 1.0)
    return x


def price_stage(
    stage: _Stage,
    pairs: _Pairs,
    active: BoolArray,
    ell: FloatArray,
    starts: list[FloatArray],
    gap: float = GAP,
    floor: float = 0.0,
) -> PriceStage:
    """One folded stage (module docstring): certified lo <= L* <= hi with hi - lo <= gap * hi unless
    MAX_PLANS plans run out (then lo and x are the best found; lo = 0 and x None when none fitted).

    The level asked of the master starts a step STEP below hi; a proof (hi falls) keeps the step and
    doubles it (hi creeping down by tiny steps otherwise), a fit (lo rises) asks next for a quarter of
    the remaining gap below hi (plans re-made at that level)."""
    size = stage.size
    scale_r = np.maximum(stage.rows.bound, 1.0)
    cmax = float(stage.ceiling[active].max(initial=0.0))
    hi, lo = cmax, 0.0
    lambdas = 0
    best: FloatArray | None = None
    x_lo: FloatArray | None = None
    for p in starts or [1.0 / scale_r]:
        if p.any():
            pr = _priced(stage, pairs, p)
            guess = floor * (1 + GUESS)
            bound = hi
            if 0 < guess < hi:
                # a later stage's level is seldom far above the last one: search below a guess first
                bound, used = _lambda(stage, pairs, pr, active, ell, guess, 0.1 * gap)
                lambdas += used
            if not 0 < guess < hi or bound >= guess:  # no proof below the guess: from the top
                bound, used = _lambda(stage, pairs, pr, active, ell, hi, 0.1 * gap)
                lambdas += used
            if bound < hi or best is None:
                hi, best = bound, p / float(p @ scale_r)
    assert best is not None
    tie = _priced(stage, pairs, 1.0 / scale_r)
    step = STEP
    level = hi * (1 - step) if hi < cmax else hi
    master = _Master(stage)
    uses: list[FloatArray] = []
    ks: list[IntArray] = []
    lam_of: list[FloatArray] = []
    prices: list[_Priced] = []

    def add(k: IntArray, lam: FloatArray) -> None:
        uses.append(master.use(size[:, None] * _plan(stage, pairs, k, lam)))
        ks.append(k)
        lam_of.append(lam)

    def scaled(i: int, lam: FloatArray) -> FloatArray:
        """Plan i made at a higher level, each job's time scaled by its new target over its old one:
        still a plan (each job reaches its new target, time <= 1), not a cheapest one."""
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(lam_of[i] > 0, lam / lam_of[i], 0.0)
        out: FloatArray = ratio[:, None] * _plan(stage, pairs, ks[i], lam_of[i])
        return out

    def relevel(old: float, new: float) -> None:
        lam = _targets(active, stage.ceiling, ell, new)
        if new <= old:
            for i in range(len(uses)):
                uses[i] = master.use(size[:, None] * scaled(i, lam))
            return
        keep = prices[-REMAKE:]
        uses.clear()
        ks.clear()
        lam_of.clear()
        for pr in keep:
            add(_cheapest(pairs, pr, lam, tie)[2], lam)

    pr0 = _priced(stage, pairs, best)
    prices.append(pr0)
    lam = _targets(active, stage.ceiling, ell, level)
    add(_cheapest(pairs, pr0, lam, tie)[2], lam)
    theta_prev = np.inf
    plans = 1
    while plans < MAX_PLANS:
        got = master.solve(uses)
        if got is None:
            break
        theta, w, p = got
        if theta <= 0:
            lam = _targets(active, stage.ceiling, ell, level)
            x = np.zeros(stage.a.shape)
            for i in np.nonzero((w > 0).any(axis=1))[0].tolist():
                x += w[i, master.block_of][:, None] * scaled(i, lam)
            lo, x_lo = level, np.clip(x, 0.0, 1.0)
            if hi - lo <= gap * hi:
                break
            new = hi - 0.25 * (hi - lo)
            relevel(level, new)
            level, step, theta_prev = new, (hi - new) / hi, np.inf
            continue
        if not p.any():
            break
        # smoothed prices (Wentges): toward the prices of the best bound; plain duals after a step
        # that did not lower the master's theta
        alpha = SMOOTH if theta < theta_prev * (1 - 1e-9) - 1e-15 else 0.0
        theta_prev = theta
        q = alpha * best + (1 - alpha) * p
        pr = _priced(stage, pairs, q)
        prices.append(pr)
        plans += 1
        lam = _targets(active, stage.ceiling, ell, level)
        cost, slope, k = _cheapest(pairs, pr, lam, tie)
        total = float(size @ cost)
        if total > pr.budget * (1 + 1e-12):
            d = float(size @ np.where(active & (stage.ceiling >= level), slope, 0.0))
            first = (total - pr.budget if np.isfinite(total) else np.inf, d)
            bound, used = _lambda(stage, pairs, pr, active, ell, level, 0.1 * gap, first)
            lambdas += used
            if bound < hi:
                hi, best = bound, q
            if hi - lo <= gap * hi:
                break
            step *= 2
            new = max(hi * (1 - step), lo + 0.5 * (hi - lo)) if lo > 0 else hi * (1 - step)
            relevel(level, new)
            level, theta_prev = new, np.inf
            lam = _targets(active, stage.ceiling, ell, level)
            k = _cheapest(pairs, pr, lam, tie)[2]
        add(k, lam)
    return PriceStage(lo, hi, x_lo, best, plans, lambdas)


def _sparsest(
    stage: _Stage, pairs: _Pairs, res: PriceStage, active: BoolArray, ell: FloatArray, gap: float
) -> FloatArray:
    """The prices that decide who freezes: the stage's best-bound prices with every price under
    CLEAN x the largest set to 0, when those still bound the level within 10 gaps of hi (then they are
    as good a dual, and rows the duals price only by a hair, where an exact dual would put 0, freeze
    no job: such hairs froze every job of issue 13's generational family at 2,000 x 8 in 3 stages,
    against 12 for the whole-LP water-filling). Otherwise the best-bound prices."""
    p = res.price
    clean = np.where(p >= CLEAN * float(p.max(initial=0.0)), p, 0.0)
    if not clean.any() or np.array_equal(clean, p):
        return p
    bound, _ = _lambda(
        stage, pairs, _priced(stage, pairs, clean), active, ell, res.hi * (1 + 10 * gap), 0.1 * gap
    )
    return clean if bound <= res.hi * (1 + 10 * gap) * (1 - 1e-12) else p


def waterfill_price(
    stage: _Stage, gap: float = GAP, max_stages: int = MAX_STAGES
) -> tuple[FloatArray, list[PriceStage]]:
    """The water-filling by folded stages (module docstring). Returns x (groups x types) and each stage's
    answer. Every stage's x reaches its certified lo for the active jobs (min(lo, c_j)) and the frozen
    levels, so the returned x is feasible; after ``max_stages`` the jobs still active keep the last lo."""
    ng, _ = stage.a.shape
    pairs = _Pairs(stage)
    active = stage.ceiling > 0
    ell = np.zeros(ng)
    x = np.zeros(stage.a.shape)
    out: list[PriceStage] = []
    starts: list[FloatArray] = []
    tol = 1e-9
    for _ in range(max_stages):
        if not active.any():
            break
        res = price_stage(stage, pairs, active, ell, starts, gap, out[-1].lo if out else 0.0)
        out.append(res)
        if res.x is None:
            break
        x = res.x
        lo = res.lo
        capped = active & (stage.ceiling <= lo * (1 + tol))
        pr = _priced(stage, pairs, _sparsest(stage, pairs, res, active, ell, gap))
        # left slopes at hi: a job whose cost starts to rise between lo and hi is a bottleneck too
        _, slope, _ = _cheapest(pairs, pr, _targets(active, stage.ceiling, ell, res.hi))
        rising = active & ~capped
        freeze = rising & (slope > 0)
        if not freeze.any():
            freeze = rising
        ell = np.where(capped, stage.ceiling, np.where(freeze, lo, ell))
        active = active & ~capped & ~freeze
        starts = [res.price]
    return x, out


def max_min_waterfill_price(
    a: FloatArray, scale: FloatArray, rows: Rows, usable: BoolArray, *, gap: float = GAP
) -> tuple[FloatArray, FloatArray]:
    """_waterfill.max_min_waterfill's contract (x, levels) by folded price-space stages: identical jobs
    merged first (as there), then waterfill_price."""
    n, tt = a.shape
    x_out = np.zeros((n, tt))
    levels = np.zeros(n)
    runnable = np.nonzero(usable.any(axis=1))[0]
    if len(runnable) == 0 or tt == 0:
        return x_out, levels
    a_r = np.where(usable[runnable], a[runnable], 0.0)
    key = np.concatenate([a_r, scale[runnable, None], rows.member[:, runnable].T.astype(np.float64)], axis=1)
    _, first, inverse, counts = np.unique(
        key, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    inverse = inverse.reshape(-1)
    sizes = (scale[runnable][first] * counts).astype(np.float64)
    stage = _Stage(a_r[first], sizes, rows, rows.member[:, runnable[first]])
    x, _ = waterfill_price(stage, gap)
    x_out[runnable] = x[inverse]
    levels[runnable] = (a_r * x_out[runnable]).sum(axis=1)
    return x_out, levels


def max_min_fairness_price(problem: AllocationProblem, *, gap: float = GAP) -> Allocation:
    """max_min_fairness's allocation with the water-filling above instead of _waterfill's (not the
    default: see docs/allocate.md, "Stages in price space"). Same rules, same spare-capacity fill."""
    from accelpool.core.policies.max_min_fairness import NAME, _level_coefficients

    started = time.perf_counter()
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    a = _level_coefficients(problem, usable)
    quick = uncontended(problem, usable, rows, a)
    if quick is not None:
        x = quick
    else:
        x, _ = max_min_waterfill_price(a, problem.scale, rows, usable, gap=gap)
        x = fill_spare(problem, usable, rows, x, a)
    runnable = usable.any(axis=1)
    norm = normalized(problem, usable)
    objective = float((norm * x).sum(axis=1)[runnable].min()) if runnable.any() else 0.0
    return finish(problem, x, rows, NAME, objective, started)
