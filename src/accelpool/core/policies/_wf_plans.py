"""Each job's cheapest plan at row prices (the notation: _waterfill.py): the hull segment (u, v) that reaches
its level at the least cost per device, the runner-up's cost (_plans: a stage's start and its balanced
restarts), and the cost alone (_min_cost: weak duality, _wf_dual, and the fixed jobs' check, _wf_stage._wrong).

Both run over one list of every job's segments with a_u < a_v (``Segments``, built once per stage.a): a
segment can hold a level only when a_u < lam <= a_v (idle u) or a_u < lam < a_v, so the others never count.
Per call only the segments that hold each job's level are gathered (about a fifth of the list at 10,000 x 8)
and minimized per job, where the dense form (every job x (1 + types) x types, masked) computed all of them:
random 10,000 x 8, seed 2, on the calls one allocation makes, _plans 4.8 -> 1.1 ms and _min_cost 5.8 -> 2.1
ms a call (docs/allocate.md, twenty-third session). The results are the dense form's bit for bit, the same
plan chosen among ties (tests/core/test_wf_plans.py keeps the dense form as the reference).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from accelpool.core.allocation import BoolArray, FloatArray, IntArray

if TYPE_CHECKING:
    from accelpool.core.policies._wf_stage import _Stage

HUGE_PRICE = 1e300
"""A non-finite price (only a nonsense warm hint's) reads as this in _plans: its plans are only a start."""


class Segments:
    """Every job's segments (u, v) with a_u < a_v, in (job, u, v) order: u = 0 is idle, u = t + 1 type t."""

    __slots__ = ("a_u", "a_v", "count", "flat", "flat_u", "flat_v", "idle", "j", "width")

    def __init__(self, a: FloatArray, a_from: FloatArray, from_ok: BoolArray, usable: BoolArray) -> None:
        ng, tt = a.shape
        width = a[:, None, :] - a_from[:, :, None]
        ok = from_ok[:, :, None] & usable[:, None, :] & (width > 0)
        # contiguous copies: np.nonzero's are strided views, and gathers by them ran ~10x slower
        j, u, v = (np.ascontiguousarray(w) for w in np.nonzero(ok))
        self.j: IntArray = j
        self.width: FloatArray = width[j, u, v]
        self.a_u: FloatArray = a_from[j, u]
        self.idle: BoolArray = u == 0
        self.flat: IntArray = u * tt + v  # the segment's position in a job's (1 + types) x types block
        self.flat_u: IntArray = j * (tt + 1) + u  # into the prices with a 0 column for idle in front
        self.flat_v: IntArray = j * tt + v
        self.count: IntArray = np.bincount(j, minlength=ng)
        self.a_v: FloatArray = a[j, v]

    def holding(self, lam: FloatArray) -> tuple[IntArray, FloatArray]:
        """The segments that can hold each job's level lam[j] (indices into the list) and that level."""
        lv = np.repeat(lam, self.count)  # j is sorted: a repeat, not a gather
        a_v = self.a_v
        keep = np.flatnonzero((self.a_u < lv) & ((a_v > lv) | (self.idle & (a_v >= lv))))
        return keep, lv


def _costs(
    seg: Segments, keep: IntArray, lv: FloatArray, pi: FloatArray
) -> tuple[IntArray, FloatArray, FloatArray, IntArray]:
    """Job, cost, fraction of the way along the segment, and each job's first entry, for the segments
    ``keep``: cost = pi_u + (pi_v - pi_u) (lam - a_u) / width (pi_u = 0 for idle)."""
    ng = len(seg.count)
    jk = np.take(seg.j, keep)
    pi_from = np.concatenate([np.zeros((ng, 1)), pi], axis=1).ravel()
    pu = np.take(pi_from, np.take(seg.flat_u, keep))
    pv = np.take(pi.ravel(), np.take(seg.flat_v, keep))
    with np.errstate(all="ignore"):
        frac = (np.take(lv, keep) - np.take(seg.a_u, keep)) / np.take(seg.width, keep)
        cost = pu + (pv - pu) * frac
    starts = np.flatnonzero(np.r_[True, jk[1:] != jk[:-1]])  # jk is sorted: each job's run
    return jk, cost, frac, starts


def _min_cost(stage: _Stage, pi: FloatArray, lam: FloatArray) -> FloatArray:
    """Cost per device of the cheapest plan reaching lam[j] at prices pi (inf above the ceiling): _plans'
    cost alone, without the runner-up and the tie-break (bit for bit the same arithmetic)."""
    ng = stage.a.shape[0]
    seg = stage.segments()
    keep, lv = seg.holding(lam)
    out = np.full(ng, np.inf)
    if not len(keep):
        return out
    jk, cost, _, starts = _costs(seg, keep, lv, pi)
    out[jk[starts]] = np.minimum.reduceat(cost, starts)
    return out


def _plans(
    stage: _Stage, pi: FloatArray, lam: FloatArray
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Cheapest plan reaching lam[j] at prices pi: segment u (0 idle, t+1 type t), v, its cost, runner-up cost.

    Cost is per device of the job (pi . x). Jobs with lam above their ceiling get cost inf (and u = v = 0).
    Ties (free types cost 0) go to the plan that takes the least time, the fastest type; among exact ties,
    the first segment in (u, v) order.
    """
    ng, tt = stage.a.shape
    if not np.isfinite(pi).all():
        pi = np.nan_to_num(pi, nan=0.0, posinf=HUGE_PRICE, neginf=0.0)
    pick = np.zeros(ng, dtype=np.int64)
    best = np.full(ng, np.inf)
    second = np.full(ng, np.inf)
    seg = stage.segments()
    keep, lv = seg.holding(lam)
    if len(keep):
        jk, cost, frac, starts = _costs(seg, keep, lv, pi)
        busy = np.where(np.take(seg.idle, keep), frac, 1.0)  # the share of time the plan runs
        tie = 1e-9 * max(float(pi.max(initial=0.0)), 1e-12)
        key = cost + tie * busy
        lowest = np.minimum.reduceat(key, starts)
        at = np.flatnonzero(key == np.repeat(lowest, np.diff(np.r_[starts, len(jk)])))
        ja = jk[at]
        at = at[np.r_[True, ja[1:] != ja[:-1]]]  # each job's first at its lowest key
        job = jk[starts]
        pick[job] = np.take(seg.flat, np.take(keep, at))
        best[job] = cost[at]
        cost[at] = np.inf
        second[job] = np.minimum.reduceat(cost, starts)
    second = np.where((best <= 0) & (second <= 0), np.inf, second)  # all free: nothing to decide
    return pick // tt, pick % tt, best, second
