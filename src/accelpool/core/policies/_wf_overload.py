"""Whether devices in use fit the rows of a max-min water-filling stage (_wf_stage._Stage): an allocation
(_fits_rows), per-row use (_over_rows, a pool's rows borrowing from it), or the jobs pinned at their
ceilings alone (_pins_overload, the ceiling searches' refusal without an LP). Moved out of _wf_stage.py
unchanged (module size)."""

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
