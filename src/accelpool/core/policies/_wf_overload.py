"""Whether devices in use fit the rows of a max-min water-filling stage (_wf_stage._Stage): an allocation
(_fits_rows), per-row use (_over_rows, a pool's rows borrowing from it), or the jobs pinned at their
ceilings alone (_pins_overload, the ceiling searches' refusal without an LP), or a restricted master's fixed
jobs with its frozen ambiguous ones at their least use (_master_overload, a master refused without HiGHS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from accelpool.core.allocation import BoolArray, FloatArray

if TYPE_CHECKING:
    from accelpool.core.policies._wf_stage import _Stage


def _fits_rows(stage: _Stage, x: FloatArray) -> bool:
    """Whether allocation x (groups x types) keeps every row within its bound, borrowing from its pool."""
    return not _over_rows(stage, stage.row_total(stage.size[:, None] * x), 1e-9)


def _over_rows(stage: _Stage, use: FloatArray, tol: float) -> bool:
    """Whether devices ``use`` per row exceed a row's bound by more than ``tol`` (relative) where the row
    has no pool, or a pool's rows together exceed their bounds by more than the pool lends."""
    rows = stage.rows
    excess = np.maximum(use - rows.bound, 0.0)
    alone = rows.pool_of < 0
    if (excess[alone] > tol * np.maximum(rows.bound[alone], 1.0)).any():
        return True
    for q in range(len(rows.pool_bound)):
        in_q = rows.pool_of == q
        if float(excess[in_q].sum()) > rows.pool_bound[q] + tol * max(float(rows.pool_bound[q]), 1.0):
            return True
    return False


def _pins_overload(stage: _Stage, pinned: BoolArray) -> bool:
    """Whether the jobs pinned at their ceilings (constants: all the time on their one best type) alone
    use more than a row and its pool allow: then no stage LP with those pins has a solution, and a
    ceiling search's probe is refused at once instead of by a master grown to every job (other jobs
    only add to a row's use). Necessary for feasibility, not sufficient."""
    if not pinned.any():
        return False
    ng, tt = stage.a.shape
    per = np.zeros((ng, tt))
    idx = np.nonzero(pinned)[0]
    per[idx, stage.best[idx]] = stage.size[idx]
    return _over_rows(stage, stage.row_total(per), 1e-7)


def _least_use(stage: _Stage, lam: FloatArray) -> FloatArray:
    """The least time share of each type t with which job j reaches lam[j] (groups x types; inf above its
    ceiling): 0 where its other types alone reach lam, else all the rest of the time on the best of them and
    the share (lam - c) / (a_t - c) on t, c that other type's level."""
    a = stage.a
    ng, tt = a.shape
    top = stage.ceiling
    is_best = np.arange(tt)[None, :] == stage.best[:, None]
    second = np.where(is_best, -np.inf, a).max(axis=1) if tt > 1 else np.zeros(ng)
    other = np.where(is_best, np.maximum(second, 0.0)[:, None], top[:, None])
    need = lam[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(need <= other, 0.0, (need - other) / (a - other))
    out: FloatArray = np.where(need > a, np.where(need <= other, 0.0, np.inf), share)
    return out


def _master_overload(
    stage: _Stage, active: BoolArray, ell: FloatArray, amb: BoolArray, kk: FloatArray, ffix: FloatArray
) -> FloatArray | None:
    """A row a restricted master cannot fit at any level L >= 0, found without solving it: the fixed jobs
    use K_r L + F_r of row r (_aggregates) and every ambiguous frozen job at least its least use of the row's
    type at its level (_least_use); where K_r >= 0 the least over L is at L = 0, and F_r plus those uses
    above what the row can hold with its whole pool (rows.reach) is a proof. Returns a Farkas ray (-1 on
    the row with the largest excess, as HiGHS's row part reads) or None (no such row: proves nothing)."""
    rows = stage.rows
    if rows.span is not None:
        return None
    # HiGHS holds a level row to within its 1e-7 primal tolerance: the levels asked here are that much lower,
    # so that a master HiGHS would call feasible is never refused (the shares grow by 1 / (a_t - c))
    lam = np.where(amb & ~active, np.maximum(ell * (1 - 1e-7) - 1e-7, 0.0), 0.0)
    if not (lam > 0).any():
        return None
    least = np.minimum(_least_use(stage, lam), 1e30)  # inf (a level above the ceiling) x 0 would be NaN
    use = stage.row_total(stage.size[:, None] * least) + ffix
    reach = rows.reach()
    with np.errstate(invalid="ignore"):
        excess = np.where(kk >= 0, (use - reach) / np.maximum(reach, 1.0), -np.inf)
    r = int(np.argmax(excess))
    if not excess[r] > 1e-6:
        return None
    ray = np.zeros(rows.n_rows)
    ray[r] = -1.0
    return ray
