"""One water-filling stage solved exactly by column generation over hull segments (the notation and the
method: _waterfill.py). Split from _waterfill.py, which drives the stages, the ceiling searches and the
sampled prices; the restricted master LP is _wf_master.Master (one HiGHS model per stage, its basis reused
from round to round)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from accelpool.core.allocation import BoolArray, FloatArray, IntArray
from accelpool.core.policies import _wf_rowsum
from accelpool.core.policies._seam import Rows
from accelpool.core.policies._wf_dual import _over_budget
from accelpool.core.policies._wf_master import Master, NoSolution
from accelpool.core.policies._wf_overload import _fits_rows, _pins_overload
from accelpool.core.policies._wf_plans import Segments, _min_cost, _plans

FULL_LP_GROUPS = 64
"""Stages with at most this many (merged) jobs go to HiGHS whole: setup costs more than it saves."""
MARGIN = 0.01
"""A job is ambiguous when its second-cheapest plan costs within 1% of its cheapest, or its level is
within 1% of an end of its segment."""
MAX_ROUNDS = 40
SMOOTH = 0.98
"""Smoothed pricing (Wentges): after a master whose fixed jobs are not all priced out, the jobs added are
those wrong at 0.98 x the last guide prices + 0.02 x the master's (both normalized to sum 1); the master's
own prices decide only when those find none (and become the guide). A restricted master's prices are
extreme (one row priced, the others 0), and adding every job wrong at them made most masters whole
(bench_round's problem: 36 -> 2,487 -> 2,873 ambiguous jobs; smoothed: 36 -> 513 -> 564). The guide's
weight falls each round (0.98, 0.92, 0.68, then 0: plain pricing), so a poor guide does not add a few
jobs per round for dozens of rounds. Exactness still rests on the master's own prices only."""
TOL = 1e-9
BALANCE_ABOVE = 4000
BALANCE_SHARE = 0.7
BALANCE_FLOOR = 500
BALANCE_WRONG = 0.1
BALANCE_TIMES = 2
"""Balanced restarts (_wf_balance._balance): a stage or probe with more rising jobs than BALANCE_ABOVE, or
than BALANCE_SHARE of the groups when that is fewer (but never BALANCE_FLOOR or fewer), whose
master is about to grow by more than BALANCE_WRONG of the unpinned ones (wrong at its prices, or, infeasible,
what _ray_grow adds) starts its fixed plans again from balanced prices, at most BALANCE_TIMES times (the
master keeps its jobs). Set on issue 13's tuning seed 0 at 10,000 x 8 (docs/allocate.md, "Balanced
restarts"; below 4,000 they cost more than they saved, and counted over frozen jobs ran in scarce's tails).
BALANCE_SHARE since the twenty-third session, whose cheaper _wf_plans made the rounds cheap enough for stages
where most of 1,000-5,000 groups rise (set on seed 0 at 1,000-10,000 x 8: 0.7 against 0.5, which slowed
generational 5,000; gang 2,000 seed 1, held out, 1.07 -> 0.25 s CPU; docs/allocate.md)."""
SMOOTH_DECAY = 4.0
"""The guide's weight after round k is 1 - (1 - SMOOTH) * SMOOTH_DECAY**k (0 once negative)."""
_Result = tuple[float, FloatArray, FloatArray, BoolArray]
"""One stage's level L, x, row prices and the jobs to freeze (what _stage returns)."""


class OutOfWork(Exception):
    """The water-filling's work budget is spent (_Stage.work_limit): the caller stops where it stands."""


class _Stage:
    """One problem's data: merged jobs and the rows (shared by all stages)."""

    def __init__(
        self, a: FloatArray, size: FloatArray, rows: Rows, member: BoolArray, ipm: bool = False
    ) -> None:
        ng, tt = a.shape
        self.ipm = ipm
        self.scarce: tuple[float, FloatArray] | None = None
        """Level and row prices where capacity binds (see _scout): where a stage has no prices or only
        zeros, its master starts from these (and from this level, when above the level it was given)."""
        self.work = 0.0
        """Jobs held by this problem's master solves so far, summed over solves, large masters counted more
        (_wf_master.Master.solve, work_of)."""
        self.work_limit = np.inf
        """A _stage that starts with ``work`` above this, or a master solve that would take it above
        (_wf_master.Master.solve, checked before the solve), raises OutOfWork (_waterfill's WORK_PER_GROUP)."""
        self.fallback: tuple[float, FloatArray] | None = None  # highest level placing every job, its x
        self.size = size
        self.rows = rows
        self.member = member  # (R, groups)
        self.member_f = member.astype(np.float64)
        self.onehot = rows.cover(tt).astype(np.float64)  # row r counts column t (several: a type's sites)
        self._price_sum: _wf_rowsum.PriceSum | None = None  # built at first use (_sparse)
        self._row_total: _wf_rowsum.RowTotal | None = None
        self._set_a(a)

    def _set_a(self, a: FloatArray) -> None:
        ng, tt = a.shape
        self.a = a
        self.ceiling = a.max(axis=1) if tt else np.zeros(ng)
        self.best = np.argmax(a, axis=1) if tt else np.zeros(ng, dtype=np.int64)
        self.unique_best = (a >= self.ceiling[:, None] * (1 - 1e-12)).sum(axis=1) == 1
        self.usable = a > 0
        self.a_from = np.concatenate([np.zeros((ng, 1)), a], axis=1)  # u = 0 is idle, u = t + 1 is t
        self.from_ok = np.concatenate([np.ones((ng, 1), dtype=bool), self.usable], axis=1)
        self._segments: Segments | None = None

    def segments(self) -> Segments:
        """Every group's segments with a_u < a_v (_wf_plans.Segments), built at first use per stage.a."""
        if self._segments is None:
            self._segments = Segments(self.a, self.a_from, self.from_ok, self.usable)
        return self._segments

    def forbid(self, pairs: BoolArray) -> None:
        """Drop the (group, type) ``pairs`` for the rest of the water-filling (a[j,t] set to 0: not usable;
        ceilings, best types and segments follow). Only for pairs no later stage may use (_prune)."""
        self._set_a(np.where(pairs, 0.0, self.a))

    def effective_price(self, price: FloatArray) -> FloatArray:
        """pi[j, c] = sum of price[r] over the rows r holding j and counting column c (row order)."""
        if self._sparse() and self.a.shape[1] > 1 and np.isfinite(price).all():
            # (one column: numpy's product is OpenBLAS's matrix-vector one, which sums in another order)
            if self._price_sum is None:
                self._price_sum = _wf_rowsum.PriceSum(self.member, self.onehot > 0)
            return self._price_sum(price)  # the same bits (_wf_rowsum)
        pi: FloatArray = self.member_f.T @ (price[:, None] * self.onehot)
        return pi

    def _sparse(self) -> bool:
        """Whether the row sums go through _wf_rowsum (many groups and rules' rows; the same bits)."""
        return bool(self.a.shape[0] >= _wf_rowsum.MIN_GROUPS and self.rows.n_rows > 2 * self.a.shape[1])

    def row_total(self, per: FloatArray) -> FloatArray:
        """sum over groups j in M_r of per[j, t_r], for every row r."""
        if self.rows.span is None and self._sparse() and np.isfinite(per).all():
            if self._row_total is None:
                self._row_total = _wf_rowsum.RowTotal(self.member, self.rows.type_of, self.a.shape[1])
            return self._row_total(per, self.rows.n_rows)  # the same bits (_wf_rowsum)
        if self.rows.span is None:  # one column per row: a gather, exact (a product with the one-hot
            # matrix rounds differently, ~1e-13, and those ties sent restricted 10,000 x 8 from 10.8 to 22 s CPU)
            out: FloatArray = (self.member_f * per[:, self.rows.type_of].T).sum(axis=1)
        else:
            out = (self.member_f * (per @ self.onehot.T).T).sum(axis=1)
        return out


def _segment_x(
    stage: _Stage, u: IntArray, v: IntArray, idx: IntArray, lam: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """x[j,v] and x[j,u] of groups idx on their segments at level lam (x_u is 0 for idle u)."""
    av = stage.a[idx, v[idx]]
    au = stage.a_from[idx, u[idx]]
    with np.errstate(divide="ignore", invalid="ignore"):
        xv = np.where(av > au, (lam - au) / (av - au), 0.0)
    xu = np.where(u[idx] > 0, 1.0 - xv, 0.0)
    return xv, xu


def _aggregates(
    stage: _Stage, active: BoolArray, ell: FloatArray, amb: BoolArray, u: IntArray, v: IntArray
) -> tuple[FloatArray, FloatArray]:
    """K_r and F_r: the fixed jobs' use of each row, K_r L + F_r (fixed active jobs on their segments at L,
    fixed frozen ones at ell_j). No bounds on L from the segments: the aggregates extrapolate, and every
    fixed job whose segment does not hold the solved L is marked at once (one job per round otherwise)."""
    a, size = stage.a, stage.size
    ng, tt = a.shape
    fixed = ~amb
    fa_idx = np.nonzero(fixed & active)[0]
    ff_idx = np.nonzero(fixed & ~active)[0]
    # fixed active jobs: x[j,v] = (L - a_u)/d, x[j,u] = (a_v - L)/d, d = a_v - a_u
    slope = np.zeros((ng, tt))
    const = np.zeros((ng, tt))
    av = a[fa_idx, v[fa_idx]]
    au = stage.a_from[fa_idx, u[fa_idx]]
    d = av - au
    real_u = u[fa_idx] > 0
    slope[fa_idx, v[fa_idx]] += size[fa_idx] / d
    const[fa_idx, v[fa_idx]] += size[fa_idx] * (-au / d)
    ur = fa_idx[real_u]
    slope[ur, u[ur] - 1] -= size[ur] / d[real_u]
    const[ur, u[ur] - 1] += size[ur] * av[real_u] / d[real_u]
    xv, xu = _segment_x(stage, u, v, ff_idx, ell[ff_idx])
    const[ff_idx, v[ff_idx]] += size[ff_idx] * xv
    fr = ff_idx[u[ff_idx] > 0]
    const[fr, u[fr] - 1] += size[fr] * xu[u[ff_idx] > 0]
    return stage.row_total(slope), stage.row_total(const)


def _fixed_x(
    stage: _Stage,
    active: BoolArray,
    ell: FloatArray,
    amb: BoolArray,
    u: IntArray,
    v: IntArray,
    level: float,
    x: FloatArray,
) -> None:
    """Write the fixed jobs' x (on their segments at L, or at ell_j when frozen) into x, in place."""
    fix_idx = np.nonzero(~amb)[0]
    lam = np.where(active[fix_idx], level, ell[fix_idx])
    xv, xu = _segment_x(stage, u, v, fix_idx, lam)
    x[fix_idx, v[fix_idx]] = np.clip(xv, 0.0, 1.0)
    real = u[fix_idx] > 0
    x[fix_idx[real], u[fix_idx[real]] - 1] = np.clip(xu[real], 0.0, 1.0)


def _previous_segments(stage: _Stage, x_prev: FloatArray) -> tuple[BoolArray, IntArray, IntArray]:
    """The segment each job ran on in the previous stage's x (ok False: more than two types)."""
    ng, tt = x_prev.shape
    on = x_prev > 1e-9
    count = on.sum(axis=1)
    a_on = np.where(on, stage.a, np.inf)
    lo_t = np.argmin(a_on, axis=1)
    hi_t = np.argmax(np.where(on, stage.a, -np.inf), axis=1)
    two = count == 2
    full = x_prev.sum(axis=1) >= 1 - 1e-9
    u = np.where(two, lo_t + 1, 0)
    v = np.where(count >= 1, hi_t, stage.best)
    ok = (count <= 1) | (two & full & (stage.a[np.arange(ng), lo_t] < stage.a[np.arange(ng), hi_t]))
    return ok, u.astype(np.int64), v.astype(np.int64)


def _held_segments(
    stage: _Stage, ell: FloatArray, x_prev: FloatArray
) -> tuple[BoolArray, IntArray, IntArray]:
    """The segment each job ran on in ``x_prev`` (_previous_segments) and whether it holds the job's frozen
    level ell_j (ok False: more than two types, or ell_j off the segment)."""
    ng = stage.a.shape[0]
    idx = np.arange(ng)
    ok, pu, pv = _previous_segments(stage, x_prev)
    a_v = stage.a[idx, pv]
    a_u = stage.a_from[idx, pu]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(a_v > a_u, (ell - a_u) / (a_v - a_u), np.inf)
    held: BoolArray = ok & (frac >= 0) & (frac <= 1)
    return held, pu, pv


def _classify(
    stage: _Stage,
    active: BoolArray,
    ell: FloatArray,
    pinned: BoolArray,
    price: FloatArray,
    guess: float,
    x_prev: FloatArray | None,
    hold: bool = False,
) -> tuple[BoolArray, IntArray, IntArray]:
    """Segments at ``price`` and the jobs too close to call (ambiguous) at level ``guess``.

    A job keeps the segment it ran on in the previous stage while that is still a cheapest plan (so
    ties among free types keep a feasible choice); otherwise it takes the cheapest plan, unless the
    runner-up is within MARGIN. ``hold`` (a start from the sample's scarcity prices, not from the last
    stage's): a frozen job keeps it at any prices (its level has not moved, and the previous allocation
    held every row). Moved to their cheapest plans at the scarcity prices (after a stage capped by a
    ceiling) the frozen jobs overloaded rows at every L, and the Farkas rays grew the master to most of
    them (bench_round under rules, step 2, 57 jobs rising: 26 -> 2,013 -> 2,889 jobs, the whole work
    budget, 2.9 s CPU; held: 3 masters, at most 134 jobs, 0.1 s). From the last stage's prices holding
    them cost more (ruled 10,000 x 8, seed 2: the fourth stage 1.9 -> 5.6 s). A start only: the
    master's prices still check every fixed job.
    """
    ng = stage.a.shape[0]
    idx = np.arange(ng)
    lam = np.where(active, guess, ell)
    pi = stage.effective_price(price)
    u, v, cost, second = _plans(stage, pi, lam)
    amb = (second <= cost * (1 + MARGIN) + 1e-15) | ~np.isfinite(cost)
    if x_prev is not None:
        ok, pu_, pv_ = _previous_segments(stage, x_prev)
        a_v = stage.a[idx, pv_]
        a_u = stage.a_from[idx, pu_]
        p_u = np.where(pu_ > 0, pi[idx, np.maximum(pu_ - 1, 0)], 0.0)
        p_v = pi[idx, pv_]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(a_v > a_u, (lam - a_u) / (a_v - a_u), np.inf)
            mine = p_u + (p_v - p_u) * frac  # 0 * inf is nan where frac is inf: filtered by frac <= 1
        scale_p = max(float(price.max(initial=0.0)), 1e-12)
        cheapest = mine <= cost * (1 + 1e-9) + 1e-12 * scale_p
        keep = ok & (frac >= 0) & (frac <= 1) & (cheapest | (hold & ~active))
        u = np.where(keep, pu_, u)
        v = np.where(keep, pv_, v)
        # a job the previous master split (over three types, or two types part-time) is not a segment:
        # fixed to a cheapest plan it broke the fit those splits made (restricted 10,000 x 8, seed 1:
        # the next stage's first master fell below the last level and grew to 2,858 jobs); it stays
        # in the master
        amb = np.where(keep, False, amb | ~ok)
    a_v = stage.a[idx, v]
    a_u = stage.a_from[idx, u]
    near_end = active & (
        ((a_v <= guess * (1 + MARGIN)) & (a_v < stage.ceiling)) | (a_u >= guess * (1 - MARGIN))
    )
    amb = ~pinned & (amb | near_end)
    return amb, u, v


def _wrong(
    stage: _Stage,
    fixed: BoolArray,
    active: BoolArray,
    ell: FloatArray,
    u: IntArray,
    v: IntArray,
    level: float,
    p: FloatArray,
) -> tuple[BoolArray, FloatArray, FloatArray]:
    """Fixed jobs whose segment is not a cheapest plan at row prices p (at L ~ 0, where every plan costs ~0:
    leaves idle at a dearer slope than the cheapest), or does not hold their level. Returns that mask and
    each job's segment-end prices (pi[j,u], pi[j,v])."""
    ng = stage.a.shape[0]
    idx = np.arange(ng)
    pi = stage.effective_price(p)
    pu = np.where(u > 0, pi[idx, np.maximum(u - 1, 0)], 0.0)
    pv = pi[idx, v]
    if not fixed.any():
        return fixed, pu, pv
    lam = np.where(active, level, ell)
    best = _min_cost(stage, pi, lam)
    a_v = stage.a[idx, v]
    a_u = stage.a_from[idx, u]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(a_v > a_u, (lam - a_u) / (a_v - a_u), 0.0)
    mine = pu + (pv - pu) * frac
    scale_p = max(float(p.max(initial=0.0)), 1e-12)
    wrong = fixed & (
        (mine > best * (1 + 1e-9) + 1e-12 * scale_p)
        | (lam < a_u * (1 - 1e-9))
        | (lam > a_v * (1 + 1e-9))
        | (active & (a_v <= level * (1 + TOL)) & (a_v < stage.ceiling * (1 - 1e-12)))
        | (active & (u > 0) & (a_u >= level * (1 - TOL)))
    )
    low = np.nonzero(fixed & active & (u == 0) & (a_v > 0) & (lam <= 1e-9 * a_v))[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        least = np.where(stage.usable[low], pi[low] / stage.a[low], np.inf).min(axis=1, initial=np.inf)
    wrong[low] |= pv[low] > least * a_v[low] * (1 + 1e-9) + 1e-12 * scale_p
    return wrong, pu, pv


def _stage(
    stage: _Stage,
    active: BoolArray,
    ell: FloatArray,
    pinned: BoolArray,
    price: FloatArray | None,
    level_guess: float,
    x_prev: FloatArray | None = None,
    *,
    eps: float = 0.0,
    target: float | None = None,
    settle: bool = True,
    enter: Callable[[BoolArray, IntArray, IntArray, float], BoolArray] | None = None,
) -> tuple[float, FloatArray, FloatArray, BoolArray]:
    """Solve one water-filling stage. Returns L, x, prices, and the jobs to freeze.

    Without ``target`` the stage is exact: it ends when the master's own duals price out every fixed job (or
    at its ceiling, _capped). ``target`` (a ceiling-search probe's level): stop as soon as weak duality proves
    ``target`` out of reach (returns the last fitting master's level, or 0, below target (1 - eps), and the
    proving prices), and, unless ``settle``, as soon as a fitting master reaches target (1 - eps) (the
    allocation is the proof; its level and freeze set are then not a stage's). ``enter`` (ambiguous, u,
    v, guess -> jobs): more jobs the first master takes (_wf_local._probe)."""
    ng = stage.a.shape[0]
    if stage.work > stage.work_limit:
        raise OutOfWork
    if _pins_overload(stage, pinned):
        raise RuntimeError("the max-min LP has no solution (the pinned jobs alone overload a row)")
    scarce = stage.scarce if price is None or not price.any() else None
    if scarce is not None:
        # a stage's level is at most the smallest ceiling of its active jobs
        level_guess = min(max(level_guess, scarce[0]), float(stage.ceiling[active].min(initial=np.inf)))
        price = scarce[1]

    def start(
        price: FloatArray | None, guess: float, hold: bool = False
    ) -> tuple[BoolArray, IntArray, IntArray]:
        if price is not None and ng - int(pinned.sum()) > FULL_LP_GROUPS:
            amb, u, v = _classify(stage, active, ell, pinned, price, guess, x_prev, hold)
            return amb, np.where(pinned, 0, u), np.where(pinned, stage.best, v)
        return ~pinned, np.zeros(ng, dtype=np.int64), stage.best.copy()

    amb, u, v = start(price, level_guess, scarce is not None)
    if enter is not None:
        amb |= enter(amb, u, v, level_guess) & ~pinned
    master = Master(stage, active, ell)
    held: tuple[BoolArray, IntArray, IntArray] | None = None  # _held_segments, at the first infeasible master
    center = price / price.sum() if price is not None and price.any() and SMOOTH > 0 else None
    free = ng - int(pinned.sum())
    above = min(BALANCE_ABOVE, max(BALANCE_SHARE * ng, BALANCE_FLOOR))
    balance = BALANCE_TIMES if stage.ipm and int(active.sum()) > above else 0
    last: list[FloatArray] = []

    def rebalance(p: FloatArray, x: FloatArray, fallback: float) -> _Result | None:
        # the start plans were far off (a master about to grow by over BALANCE_WRONG of the jobs):
        # start the fixed plans again from balanced prices (_balance; BALANCE_TIMES); the master keeps
        # its jobs. A probe is refused at once when those prices prove its target out of reach
        from accelpool.core.policies import _wf_balance  # it imports this module

        nonlocal balance, level_guess, amb, u, v, center
        balance -= 1
        from_p = (
            last[-1] if last else price if price is not None and price.any() else (p if p.any() else None)
        )
        bp, blevel = _wf_balance._balance(
            stage, active, ell, from_p, target if target is not None else level_guess, target is None
        )
        last.append(bp)
        if target is not None and _over_budget(stage, active, ell, bp, target):
            return fallback, x, bp, np.zeros(ng, dtype=bool)  # the level that fits (or 0), as below
        if target is None:
            level_guess = blevel
        amb2, u, v = start(bp, level_guess)
        amb |= amb2
        if center is not None:
            center = bp / bp.sum()
        return None

    for rnd in range(MAX_ROUNDS):
        ok, level, x, p, y = master.solve(amb, u, v)  # OutOfWork before a solve past the budget
        if not ok:
            for sign in (1.0, -1.0):
                if _over_budget(stage, active, ell, sign * p, 0.0):
                    raise NoSolution(
                        "the max-min LP has no solution (a Farkas ray of the master proves it)", sign * p
                    )
            if amb[~pinned].all():
                raise NoSolution("the max-min LP has no solution (rows contradict the frozen levels)", p)
            touched = _ray_grow(stage, ~amb & ~pinned, active, ell, u, v, level_guess, p)
            if x_prev is not None:
                # frozen jobs the ray names, moved off the segments that held their levels in the last
                # allocation, go back to them: no job joins the master this round (docs/allocate.md, 24th session)
                held = held if held is not None else _held_segments(stage, ell, x_prev)
                back = touched & ~active & held[0] & ((u != held[1]) | (v != held[2]))
                if back.any():
                    u, v = np.where(back, held[1], u), np.where(back, held[2], v)
                    continue
            if balance and int(touched.sum()) > BALANCE_WRONG * free:
                done = rebalance(np.zeros(len(p)), x, 0.0)
                if done is not None:
                    return done
                continue
            amb |= touched if touched.any() else ~pinned
            continue
        fixed = ~amb & ~pinned
        wrong, pu, pv = _wrong(stage, fixed, active, ell, u, v, level, p)
        if not wrong.any():
            return level, x, p, _bottleneck(stage, fixed, active, u, v, pu, pv, y, level)
        capped = _capped(stage, active, ell, amb, u, v, level, x)
        if capped is not None:
            return capped
        sep = None
        if center is not None:
            # smoothed pricing (SMOOTH)
            norm = p / p.sum() if p.any() else p
            alpha = max(0.0, 1 - (1 - SMOOTH) * SMOOTH_DECAY**rnd)
            sep = alpha * center + (1 - alpha) * norm
        if target is not None:
            fits = _holds(stage, fixed, active, ell, u, v, level)
            if fits and not settle and level >= target * (1 - eps):
                return level, x, p, np.zeros(ng, dtype=bool)
            for q in (p, sep):
                if q is not None and _over_budget(stage, active, ell, q, target):
                    return (level if fits else 0.0), x, q, np.zeros(ng, dtype=bool)
        if sep is not None:
            wrong_sep, _, _ = _wrong(stage, fixed, active, ell, u, v, level, sep)
            if wrong_sep.any():
                wrong, center = wrong_sep, sep
            else:
                center = p / p.sum() if p.any() else p
        if balance and int(wrong.sum()) > BALANCE_WRONG * free:
            done = rebalance(p, x, level if target is not None and fits else 0.0)
            if done is not None:
                return done
            continue
        amb |= wrong
    amb = ~pinned
    ok, level, x, p, y = master.solve(amb, u, v)
    if not ok:
        raise RuntimeError("the max-min LP has no solution (rows contradict the frozen levels)")
    bottleneck = active & ((y > TOL) | (stage.ceiling <= level * (1 + TOL)))
    return level, x, p, bottleneck


def _ray_grow(
    stage: _Stage,
    fixed: BoolArray,
    active: BoolArray,
    ell: FloatArray,
    u: IntArray,
    v: IntArray,
    guess: float,
    ray: FloatArray,
) -> BoolArray:
    """The fixed jobs an infeasible master grows by: the fixed jobs on the ray's rows (they cannot hold
    the fixed plans at any L) if at most FULL_LP_GROUPS; else Farkas pricing, a heuristic (L is free in
    the master): those whose plan is not a cheapest at the ray's row part as prices (either sign, the
    first that names any; at ``guess`` if active), else the rows' jobs; empty: the caller grows to all
    (docs/allocate.md, the thirteenth session's spike fix, has the figures)."""
    hot = np.abs(ray) > 1e-9 * max(float(np.abs(ray).max(initial=0.0)), 1e-300)
    on_rows = _on_rows(stage, fixed, u, v, hot)
    if int(on_rows.sum()) > FULL_LP_GROUPS:
        for q in (np.maximum(-ray, 0.0), np.maximum(ray, 0.0)):
            wrong = _wrong(stage, fixed, active, ell, u, v, guess, q)[0]
            if wrong.any():
                return wrong
    return on_rows


def _bottleneck(
    stage: _Stage,
    fixed: BoolArray,
    active: BoolArray,
    u: IntArray,
    v: IntArray,
    pu: FloatArray,
    pv: FloatArray,
    y: FloatArray,
    level: float,
) -> BoolArray:
    """The active jobs to freeze: a positive level dual (the master's y, or for a fixed job its segment's
    marginal price S_j (pi_v - pi_u) / (a_v - a_u)), or at their ceiling."""
    idx = np.arange(stage.a.shape[0])
    y_fixed = np.zeros(len(idx))
    if fixed.any():
        a_v = stage.a[idx, v]
        a_u = stage.a_from[idx, u]
        with np.errstate(divide="ignore", invalid="ignore"):
            y_fixed = np.where(fixed & active, stage.size * (pv - pu) / (a_v - a_u), 0.0)
    out: BoolArray = active & ((y > TOL) | (y_fixed > TOL) | (stage.ceiling <= level * (1 + TOL)))
    return out


def _capped(
    stage: _Stage,
    active: BoolArray,
    ell: FloatArray,
    amb: BoolArray,
    u: IntArray,
    v: IntArray,
    level: float,
    x: FloatArray,
) -> _Result | None:
    """The stage's optimum when the master reached the smallest ceiling c of the active jobs (no job
    rises above its ceiling, so L <= c) and its allocation, the fixed jobs moved to c on their segments,
    still fits every row: L = c, row prices 0, the jobs at c frozen (the exact LP's answer). None
    otherwise. Without it a stage capped by a ceiling grew its master to every job whose extrapolated
    segment overshot c (restricted 10,000 x 8, seed 0: stage 1, 3 -> 4,964 jobs, to end at c = 0.5)."""
    cap = float(stage.ceiling[active].min(initial=np.inf))
    if not np.isfinite(cap) or level < cap * (1 - 1e-9):
        return None
    fixed = ~amb
    if not _holds(stage, fixed, active, ell, u, v, cap):
        return None
    out = x.copy()
    _fixed_x(stage, active, ell, amb, u, v, cap, out)
    if not _fits_rows(stage, out):
        return None
    return cap, out, np.zeros(stage.rows.n_rows), active & (stage.ceiling <= cap * (1 + TOL))


def _on_rows(stage: _Stage, which: BoolArray, u: IntArray, v: IntArray, hot: BoolArray) -> BoolArray:
    """Jobs ``which`` whose segment (types u - 1 and v) counts in one of the rows ``hot``."""
    if not hot.any() or not which.any():
        return np.zeros(len(which), dtype=bool)
    ng, tt = stage.a.shape
    idx = np.nonzero(which)[0]
    use = np.zeros((ng, tt))
    use[idx, v[idx]] = 1.0
    real = idx[u[idx] > 0]
    use[real, u[real] - 1] = 1.0
    per_row = stage.member_f[hot] * (use @ stage.onehot[hot].T).T
    out: BoolArray = which & (per_row > 0).any(axis=0)
    return out


def _holds(
    stage: _Stage,
    fixed: BoolArray,
    active: BoolArray,
    ell: FloatArray,
    u: IntArray,
    v: IntArray,
    level: float,
) -> bool:
    """Whether every fixed job's level (L active, ell_j frozen) lies on its segment: then the master's
    x (the fixed jobs on their segments) is an allocation, and its rows hold (the aggregates are exact)."""
    idx = np.nonzero(fixed)[0]
    lam = np.where(active[idx], level, ell[idx])
    a_v = stage.a[idx, v[idx]]
    a_u = stage.a_from[idx, u[idx]]
    return bool(((lam >= a_u * (1 - 1e-9)) & (lam <= a_v * (1 + 1e-9))).all())
