"""The ceiling searches of the max-min water-filling (see _waterfill.py, "Ceilings"): freeze in one go
every active job whose ceiling the next stages would reach anyway.

_pin freezes jobs at their ceilings; _dual_index bounds the search from above by weak duality at given
row prices; _skip_ceilings probes the sorted ceilings (each probe one stage LP, _wf_stage._stage) and
returns the last fitting probe's prices and, when it is the next stage's LP, its result. Moved out of
_waterfill.py unchanged (module size); ``hint`` and ``record`` are the warm start across rounds
(_wf_warm.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from accelpool.core.allocation import BoolArray, FloatArray
from accelpool.core.policies._wf_dual import _over_budget, _refutes
from accelpool.core.policies._wf_overload import _pins_overload
from accelpool.core.policies._wf_stage import OutOfWork, _Result, _Stage, _stage
from accelpool.core.policies._wf_warm import Hint, WarmRecord, _hinted


def _pin(stage: _Stage, which: BoolArray, active: BoolArray, ell: FloatArray, pinned: BoolArray) -> None:
    """Freeze ``which`` at their ceilings (in place); those with one best type become constants."""
    ell[which] = stage.ceiling[which] * np.where(stage.unique_best[which], 1.0, 1 - 1e-9)
    active &= ~which
    pinned |= which & stage.unique_best


def _dual_index(
    stage: _Stage, active: BoolArray, ell: FloatArray, price: FloatArray, levels: FloatArray, lo: int, hi: int
) -> int:
    """The largest k in [lo, hi] with k == lo or levels[k] passing the weak-duality test below (levels
    sorted): an upper bound on the index of the level every active job can reach, each capped at its
    ceiling.

    The test is _wf_dual._refutes at row prices p with every active j at min(L, c_j) and every frozen j
    at its ell_j. The cost grows with L, so the test is monotone in k and a bisection over the indices
    finds the answer. Zero prices bound nothing (returns ``hi``).
    """
    if not (price > 0).any():
        return hi
    pi = stage.effective_price(np.maximum(price, 0.0))

    def fits(level: float) -> bool:
        return not _refutes(stage, active, ell, price, np.minimum(level, stage.ceiling), pi)

    # after a stage the next ceiling is often already out of reach: one test instead of a bisection
    if lo < hi and not fits(float(levels[lo + 1]) * (1 - 1e-7)):
        return lo
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(float(levels[mid]) * (1 - 1e-7)) else (lo, mid - 1)
    return lo


def _pins_index(
    stage: _Stage, active: BoolArray, pinned: BoolArray, ceilings: FloatArray, lo: int, hi: int
) -> int:
    """The largest k in [lo, hi] with k == lo or the pins at ceilings[k] (every active job with one best
    type and ceiling <= ceilings[k], on top of ``pinned``) not overloading a row (_pins_overload).

    Pinning more jobs only adds to a row's use, so the test is monotone in k and a bisection finds the
    answer; a probe above it would be refused by _stage without a master. One test when the top fits."""
    cand = active & stage.unique_best

    def fits(k: int) -> bool:
        return not _pins_overload(stage, pinned | (cand & (stage.ceiling <= ceilings[k])))

    if lo >= hi or fits(hi):
        return hi
    hi -= 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def _skip_ceilings(
    stage: _Stage,
    active: BoolArray,
    ell: FloatArray,
    pinned: BoolArray,
    price: FloatArray | None,
    budget: list[int],
    x_prev: FloatArray | None = None,
    eps: float = 0.0,
    hint: Sequence[Hint] = (),
    record: WarmRecord | None = None,
) -> tuple[FloatArray | None, _Result | None, FloatArray | None]:
    """Freeze, in one go, every active job whose ceiling the next stages would reach anyway.

    Search the sorted ceilings c_0 < ... < c_{m-1} of the active jobs for the largest k* such that
    pinning every job with ceiling <= c_k at its ceiling still lets all other active jobs reach c_k.
    A probe at k solves that stage LP: level L_k, prices p_k. L_k does not grow with k (more pins, less
    room) while c_k grows, so feasibility is monotone, and each probe narrows the bracket by more than
    its own answer:
        feasible (L_k >= c_k):    k* >= k
        infeasible:               k* < k, and k* >= the largest k' with c_k' <= L_k (L_k' >= L_k >= c_k')
        any probe:                k* <= _dual_index(p_k) (weak duality at the probe's prices)
    The next probe is the top of the bracket (usually the answer), or its middle after a miss there.
    Returns the prices of the last feasible probe and, when that probe is at the final k*, its whole
    result: it is the next stage's LP (the same pins, the same active jobs), so the caller reuses it.
    ``hint`` (an earlier round's, _wf_warm.py): its proofs narrow the bracket first, and a probe at c_k
    starts from its probe at c_k, where it has one.
    """
    ceilings = np.unique(stage.ceiling[active])
    m = len(ceilings)
    lo, hi = -1, m - 1

    def index(level: float) -> int:
        return int(np.searchsorted(ceilings, level * (1 + 1e-7), side="right")) - 1

    def narrow(p: FloatArray | None) -> None:
        nonlocal hi
        if p is not None and p.any():
            was, hi = hi, _dual_index(stage, active, ell, p, ceilings, lo, hi)
            if record is not None and hi < was:
                record.entries.append((float(ceilings[hi + 1]), p, False))  # a proof a next round may reuse

    hi = _pins_index(stage, active, pinned, ceilings, lo, hi)  # no LP: pins that overload a row cannot fit
    narrow(price)
    for _, p, solved in hint:
        if not solved:
            narrow(p)  # weak duality at any prices is a proof: the last round's proofs often still are
    if stage.scarce is not None and (price is None or not price.any()):
        narrow(stage.scarce[1])  # any prices bound; the sample's scarcity prices often bound well
    best_price = price
    x_fit: FloatArray | None = None
    # probes start from the latest prices that are not all 0 (None: whole LPs, or the stage's scarcity)
    guide = price if price is not None and price.any() and stage.scarce is not None else None
    best: tuple[int, _Result] | None = None
    missed = False
    while lo < hi and budget[0] > 0:
        budget[0] -= 1
        k = (lo + hi + 1) // 2 if missed else hi
        pin = active & (stage.ceiling <= ceilings[k])
        rest = active & ~pin
        trial_ell, trial_active, trial_pinned = ell.copy(), active.copy(), pinned.copy()
        _pin(stage, pin, trial_active, trial_ell, trial_pinned)
        start = _hinted(hint, float(ceilings[k]))
        if start is not None and _over_budget(stage, rest, trial_ell, start, float(ceilings[k])):
            hi, missed = k - 1, True  # the last round's prices still prove c_k out of reach: no master
            if record is not None:
                record.entries.append((float(ceilings[k]), start, False))
            continue
        try:
            # a probe at the top of the bracket, if it fits, ends the search and is the next stage: solved
            # as one (within eps); a probe below it only decides fit or not (eps: at ceilings[k] (1 - eps))
            result = _stage(
                stage,
                rest,
                trial_ell,
                trial_pinned,
                guide if start is None else start,
                float(ceilings[k]),
                x_prev,
                eps=eps,
                target=float(ceilings[k]) if stage.ipm else None,
                settle=k == hi,
            )
            level, trial_price = result[0], result[2]
            if record is not None and trial_price.any():
                record.entries.append((float(ceilings[k]), trial_price, False))
            refused = rest.any() and level < ceilings[k] * (1 - max(eps, 1e-7))
            if stage.scarce is not None and trial_price.any() and not (hint and refused):
                guide = trial_price  # warm: not a refused probe's (_wf_warm.py, Hint)
        except RuntimeError:
            hi, missed = k - 1, True
            continue
        except OutOfWork:
            break  # the pins proven so far (lo) stand
        fit = not rest.any() or level >= ceilings[k] * (1 - max(eps, 1e-7))
        if fit or (level > 0 and (stage.fallback is None or level > stage.fallback[0])):
            # a feasible allocation, every active job at level or more: an OutOfWork stop keeps it (_fill)
            stage.fallback = (level, result[1])
        if fit:
            lo, best_price, missed = k, trial_price, False
            best = (k, result) if k == hi else None  # only a probe at the top is settled (_stage)
            x_prev = x_fit = result[1]
        else:
            hi, missed = k - 1, True
            lo = max(lo, min(index(level), hi))
        narrow(trial_price)
    if lo >= 0:
        _pin(stage, active & (stage.ceiling <= ceilings[lo]), active, ell, pinned)
    return best_price, (best[1] if best is not None and best[0] == lo else None), x_fit
