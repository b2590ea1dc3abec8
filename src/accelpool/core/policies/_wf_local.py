"""Tenant-local rows: stages decided by small local LPs instead of the whole master (issue 13, rules).

Under program rules most rows are *local*: a tenant cap, a program cap (a cap group inside a tenant) counts
the jobs of one tenant only; only capacity, the public reserve and the quota pools couple tenants. Join
jobs that share a local row (rows without a pool over at most LOCAL_SHARE of the groups) into *parts*
(tenants, here). A part's *local water-filling* is the water-filling of its jobs under its local rows
alone (whole HiGHS LPs of a part's jobs, or closed form for a part without local rows: each job at its
ceiling): a sequence of events (level l_i, jobs frozen at l_i).

Every event of every part is a stage of the whole water-filling, as long as the coupling rows let every
part follow its own. Sort the events of all parts by level, l_1 <= ... <= l_m, and let X_k be each part's
last local allocation with every job scaled down to min(its event's level, l_k) (jobs frozen before at
their levels). X_k keeps the local rows (scaling down only frees devices); when it also fits every other
row, events 1..k are exact stages:

    upper bound  the stage LP of event i, restricted to the jobs of its part, is that part's local stage
                 LP (the same frozen jobs, fewer rows): its optimum is at most l_i;
    lower bound  X_k is a point of the stage LP of event i at L = l_i (every job frozen by an event
                 before i at its level, the others at l_i or more);
    dual         the local LP's optimal dual, every other row and job priced 0, is feasible for the
                 whole stage LP with the same objective l_i, so its bottleneck jobs (positive level
                 duals, or at their ceiling) are the stage's, as _waterfill freezes them.

X_k uses less of every row as k falls, so the largest fitting k is found by bisection (one row sum per
test). The local allocations ignore the coupling rows, so X_k often overloads capacity from the first
event on; above the last fitting k the events are searched as _wf_ceilings._skip_ceilings searches
ceilings (the ceilings are this search's events of one-job parts): a probe at k is the stage LP with the
events up to k frozen and every other job at l_k (_wf_stage._stage with a target, started from X_k's
segments); a fitting master proves k (and every event up to its level); a refusal or no solution
bounds k from above. The top is narrowed by weak duality (every job at min(l_k, its event) costs more
than the rows are worth) at the last stage's prices, the sample's, one price on every capacity row, and
each failed probe's Farkas ray (_wf_master.NoSolution; each pool priced at its rows' largest price).
The probe after a ray that moved the top is the new top. The proven events are applied at once (no
stage), and the water-filling goes on from there with its master stages (_waterfill._fill), which
decide where the coupling rows bind; before each, the search runs again (probes only while
LOCAL_ACTIVE of the groups rise). Rows with a pool (quotas) are left to the masters: their borrowing
couples tenants.

A part's local water-filling ends at once when every rising job fits at its ceiling (the rest is one
event per ceiling, no LP): 177 -> 167 local LPs on ruled 2,000 x 8, seed 0.
A part's local water-filling is kept (Split's cache) with the state it was computed from: before a stage,
a part none of whose jobs changed state is not solved again (cpu_small's 100 small problems: 207 of
690 part-calls; docs/allocate.md).

Measured (ruled family, docs/allocate.md): 2,000 x 8, seed 0 (tuning): one search of two probes proves
the events up to 0.9331 (503 of 2,000 groups), then five stages end the water-filling. A probe over at most
PROBE_WHOLE groups not pinned is one whole LP (_probe): grown from its start (the scaled local
allocations, which ignore capacity) its master reached nearly every job anyway.
"""

from __future__ import annotations

from collections.abc import Callable

import highspy._core as _highs
import numpy as np

from accelpool.core.allocation import BoolArray, FloatArray, IntArray
from accelpool.core.policies._wf_dual import _refutes
from accelpool.core.policies._wf_master import NoSolution
from accelpool.core.policies._wf_overload import _over_rows
from accelpool.core.policies._wf_stage import TOL, OutOfWork, _fixed_x, _Result, _Stage, _stage

LOCAL_SHARE = 0.25
"""A row without a pool over at most this share of the groups is local (it joins its jobs into a part);
when the largest part holds more than half the groups the rows are not split (nothing is done)."""
LOCAL_PART = 256
"""No split when a part holds more groups than this: on ruled 10,000 x 8 (14 parts of ~500 groups) the
local water-fillings took ~2.5 s and the first probe's master 23 rounds of ~5,300 jobs, 13.4 s (seed 0:
21.4 s CPU in all against 10.7 s for the stages alone, which stop at the work budget there; seed 1: 35.5
against 9.1 s). bench_round's pool under rules (7,550 groups, 40 parts of at most 125) and ruled 2,000 x
8 (parts of at most ~120) gain."""
LOCAL_ACTIVE = 0.25
"""Probes (master LPs) search the events only while at least this share of the groups is still rising;
below, only the proofs by allocation: with few left the stages are small (ruled 2,000 x 8, seed 0: 18
groups rising, a stage 0.05 s) and a probe whose master fails grows to every frozen job (3.5-6 s)."""
PROBE_WHOLE = 2500
"""A probe over at most this many groups not pinned is one whole master LP (_probe): ruled 2,000 x
8, seed 0, its two probes 2.4 -> 1.7-2.0 s CPU; at 1,000 x 8, seed 0, probes that start near their
answer were faster grown (0.07 -> 0.18 s); bench_round's pool under rules (7,550 groups) is faster grown
(its one probe 0.8-1.0 s, whole 3.4-3.8 s)."""
LOCAL_STAGES = 40
"""A part's local water-filling stops after this many LPs (the events found so far still count; its
jobs left rising bound the bisection's top)."""


_Local = tuple[FloatArray, FloatArray, BoolArray, float]
Split = tuple[list[tuple[IntArray, IntArray]], IntArray, dict[int, tuple[bytes, _Local | None]]]
"""The parts (groups, local rows), the groups in no local row, and each part's last local water-filling
with the state it was computed from (local_events)."""


def parts(stage: _Stage) -> Split | None:
    """The parts with local rows (groups, rows), the groups in no local row and an empty cache of the parts'
    local water-fillings; None when no split pays."""
    rows = stage.rows
    member = stage.member
    ng = member.shape[1]
    counts = member.sum(axis=1)
    local = np.nonzero((rows.pool_of < 0) & (counts > 0) & (counts <= LOCAL_SHARE * ng))[0]
    if len(local) == 0:
        return None
    # each group's part is labelled by its least group: every row takes its groups' least label and every
    # group the least of its rows', until nothing moves (as many passes as the parts' row chains are long)
    row, group = np.nonzero(member[local])  # by row, then group; every local row has a group
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
    label = np.arange(ng)
    while True:
        row_label = np.minimum.reduceat(label[group], starts)
        moved = label.copy()
        np.minimum.at(moved, group, row_label[row])
        if np.array_equal(moved, label):
            break
        label = moved
    in_any = np.zeros(ng, dtype=bool)
    in_any[group] = True
    joined = np.nonzero(in_any)[0]
    by_group = joined[np.argsort(label[joined], kind="stable")]  # by part, then group
    by_row = np.argsort(row_label, kind="stable")  # the local rows by part, then row
    labels, first = np.unique(label[by_group], return_index=True)
    row_first = np.searchsorted(row_label[by_row], labels)
    out: list[tuple[IntArray, IntArray]] = []
    for k, groups in enumerate(np.split(by_group, first[1:])):
        if len(groups) > min(ng // 2, LOCAL_PART):
            return None
        end = row_first[k + 1] if k + 1 < len(labels) else len(by_row)
        out.append((groups, local[by_row[row_first[k] : end]]))
    return out, np.nonzero(~in_any)[0], {}


def _local_fill(
    stage: _Stage, groups: IntArray, rws: IntArray, active: BoolArray, ell: FloatArray, pinned: BoolArray
) -> _Local | None:
    """One part's local water-filling. Returns its last allocation, each group's event level (inf: still
    rising), whether the event pins it at its ceiling, and the last level when some are still rising (its
    later events are unknown: nothing above it is decided; inf when none is); None when an LP fails.

    One whole LP of the part (a part is small: at most LOCAL_PART groups, a few rows), solved again after
    each stage from its last basis by primal simplex (freezing jobs at their levels keeps the last vertex
    feasible), presolve off: the levels of a max-min water-filling do not depend on the LP's vertex or on
    the dual the bottleneck jobs are read from, only its allocation does. Pinned jobs (``pinned``) are
    frozen ones, at their ceilings. On bench_round's rules pool the local water-fillings took 0.37 -> 0.18
    s CPU a round (_stage's masters, a fresh model per stage, before; docs/allocate.md)."""
    a = stage.a[groups]
    n, tt = a.shape
    member = stage.member[rws][:, groups]
    onehot = stage.onehot[rws] > 0
    nr = len(rws)
    ceiling, unique, best = stage.ceiling[groups], stage.unique_best[groups], stage.best[groups]
    size, bound = stage.size[groups], stage.rows.bound[rws]
    act, el = active[groups].copy(), ell[groups].copy()
    event = np.full(n, np.inf)
    at_ceiling = np.zeros(n, dtype=bool)
    x = np.zeros_like(a)
    level = 0.0
    # columns: L, then one per usable (group, type) pair; rows: the part's rows, a level row and a time
    # row per group. Level row j: sum_t a[j,t] x[j,t] - L >= 0 (rising) or >= ell[j] (frozen)
    pj, pt = np.nonzero(a > 0)
    k = len(pj)
    rrow, rpair = np.nonzero(member[:, pj] & onehot[:, pt])
    col = np.concatenate(
        [np.zeros(int(act.sum()), dtype=np.int64), 1 + np.arange(k), 1 + np.arange(k), 1 + rpair]
    )
    row = np.concatenate([nr + np.nonzero(act)[0], nr + pj, nr + n + pj, rrow])
    val = np.concatenate([np.full(int(act.sum()), -1.0), a[pj, pt], np.ones(k), size[pj[rpair]]])
    order = np.lexsort((row, col))
    col, row, val = col[order], row[order], val[order]
    lp = _highs.HighsLp()
    lp.num_col_, lp.num_row_ = 1 + k, nr + 2 * n
    lp.col_cost_ = np.concatenate([[-1.0], np.zeros(k)])
    lp.col_lower_ = np.zeros(1 + k)
    lp.col_upper_ = np.concatenate([[float(ceiling[act].max(initial=0.0))], np.ones(k)])
    lp.row_lower_ = np.concatenate([np.full(nr, -np.inf), np.where(act, 0.0, el), np.full(n, -np.inf)])
    lp.row_upper_ = np.concatenate([bound, np.full(n, np.inf), np.ones(n)])
    lp.a_matrix_.format_ = _highs.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.searchsorted(col, np.arange(2 + k)).astype(np.int32)
    lp.a_matrix_.index_ = row.astype(np.int32)
    lp.a_matrix_.value_ = val.astype(np.float64)
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = 1 + k, nr + 2 * n
    h = _highs._Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("presolve", "off")
    h.passModel(lp)
    for _ in range(LOCAL_STAGES):
        if not act.any():
            break
        if (act | (level > 0)).all() and _fits_at_ceiling(x, act, best, size, member, onehot, bound):
            # every rising job fits at its ceiling at once: the rest of the local water-filling is one
            # event per ceiling (each stage LP's optimum is the least ceiling left, 0 prices its dual)
            event[act], at_ceiling[act] = ceiling[act], True
            x[act] = 0.0
            x[act, best[act]] = 1.0
            act[:] = False
            break
        h.run()
        if h.getModelStatus() != _highs.HighsModelStatus.kOptimal:
            # the warm primal re-solve can stop at Unknown (dual infeasible; a review: 8 of 3,370 calls on
            # random_rules seeds 0-599): solved again from scratch by dual simplex before giving up
            h.clearSolver()
            h.setOptionValue("simplex_strategy", 1)
            h.run()
            if h.getModelStatus() != _highs.HighsModelStatus.kOptimal:
                return None
        sol = h.getSolution()
        values = np.asarray(sol.col_value, dtype=np.float64)
        level = float(values[0])
        x = np.zeros_like(a)
        x[pj, pt] = np.clip(values[1:], 0.0, 1.0)
        y = np.asarray(sol.row_dual, dtype=np.float64)[nr : nr + n]
        top_all = ceiling <= level * (1 + TOL)
        freeze = act & ((y > TOL) | top_all)
        if not freeze.any():
            freeze = act.copy()
        top = freeze & top_all
        event[freeze] = level
        at_ceiling |= top
        el[top] = ceiling[top] * np.where(unique[top], 1.0, 1 - 1e-9)
        el[freeze & ~top] = level
        act &= ~freeze
        for j in np.nonzero(freeze)[0].tolist():
            h.changeCoeff(nr + j, 0, 0.0)
            h.changeRowBounds(nr + j, float(el[j]), np.inf)
        h.setOptionValue("simplex_strategy", 4)
        h.changeColBounds(0, 0.0, float(ceiling[act].max(initial=0.0)))
    return x, event, at_ceiling, (level if act.any() else np.inf)


def _fits_at_ceiling(
    x: FloatArray,
    act: BoolArray,
    best: IntArray,
    size: FloatArray,
    member: BoolArray,
    onehot: BoolArray,
    bound: FloatArray,
) -> bool:
    """Whether x (the part's last local allocation) with every rising job moved to its best type all the
    time still keeps the part's rows (``member``, ``onehot``: theirs; ``bound``)."""
    trial = x.copy()
    trial[act] = 0.0
    trial[act, best[act]] = 1.0
    use = (member * ((size[:, None] * trial) @ onehot.T).T).sum(axis=1)
    return bool((use <= bound * (1 + 1e-9) + 1e-9).all())


def local_events(
    stage: _Stage,
    split: Split,
    active: BoolArray,
    ell: FloatArray,
    pinned: BoolArray,
    x_now: FloatArray | None,
) -> tuple[FloatArray, FloatArray, BoolArray, float] | None:
    """Every part's local water-filling (module docstring). Returns the allocation they make together
    (each group at its event level or above, frozen groups at ell or above), each group's event level
    (inf: none found), whether that event is its ceiling, and the level above which events are not
    known (a part cut off by LOCAL_STAGES); None when the rows do not split."""
    if not active.any():
        return None
    groups_of, alone, cache = split
    ng, tt = stage.a.shape
    x = np.zeros((ng, tt))
    event = np.full(ng, np.inf)
    at_ceiling = np.zeros(ng, dtype=bool)
    limit = np.inf
    # groups in no local row: each at its ceiling on its best type, the event its ceiling
    x[alone, stage.best[alone]] = 1.0
    event[alone] = np.where(active[alone], stage.ceiling[alone], np.inf)
    at_ceiling[alone] = active[alone]
    if x_now is not None:  # frozen groups in no local row keep the last allocation (scaled to ell below)
        still = alone[~active[alone]]
        x[still] = x_now[still]
    for i, (groups, rws) in enumerate(groups_of):
        if not active[groups].any():
            if x_now is None:
                return None
            x[groups] = x_now[groups]  # a part all frozen keeps the last allocation
            continue
        # a part's local water-filling reads only its jobs' state and coefficients (forbid changes a):
        # a part none of whose jobs changed since the last stage has the same events
        key = b"".join(v[groups].tobytes() for v in (active, ell, pinned, stage.a))
        if i not in cache or cache[i][0] != key:
            cache[i] = (key, _local_fill(stage, groups, rws, active, ell, pinned))
        got = cache[i][1]
        if got is None:
            return None
        x[groups], event[groups], at_ceiling[groups], cut = got
        limit = min(limit, cut)
    return x, event, at_ceiling, limit


def skip_local(
    stage: _Stage,
    split: Split,
    x_now: FloatArray | None,
    active: BoolArray,
    ell: FloatArray,
    pinned: BoolArray,
    price: FloatArray | None,
    budget: list[int],
) -> tuple[float, FloatArray, _Result | None, FloatArray | None] | None:
    """Apply, in place on active, ell, pinned, the local events proven to be stages (module docstring).
    Returns the last applied level, an allocation with every job at its level or above, the last probe's
    result when it is the next stage's LP (as _wf_ceilings._skip_ceilings), and the last fitting probe's
    prices; None when none applies."""
    probes = int(active.sum()) >= LOCAL_ACTIVE * len(active)
    got = local_events(stage, split, active, ell, pinned, x_now)
    if got is None:
        return None
    x, event, at_ceiling, limit = got
    level_now = (stage.a * x).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = np.where(level_now[:, None] > 0, x / level_now[:, None], 0.0)
    levels = np.unique(event[active & (event <= limit)])
    if len(levels) == 0:
        return None

    def trial(k: int) -> tuple[BoolArray, FloatArray, BoolArray]:
        freeze = active & (event <= levels[k])
        pin = freeze & at_ceiling
        el = np.where(freeze, event, ell)
        el[pin] = stage.ceiling[pin] * np.where(stage.unique_best[pin], 1.0, 1 - 1e-9)
        return freeze, el, pinned | (pin & stage.unique_best)

    def at(k: int) -> FloatArray:
        lam = np.where(active, np.minimum(event, levels[k]), ell)
        out: FloatArray = unit * lam[:, None]
        return out

    def fits(k: int) -> bool:
        return not _over_rows(stage, stage.row_total(stage.size[:, None] * at(k)), 1e-7)

    def index(level: float) -> int:
        return int(np.searchsorted(levels, level * (1 + 1e-7), side="right")) - 1

    def dual_ok(k: int, p: FloatArray) -> bool:
        return not _refutes(stage, active, ell, p, np.minimum(event, levels[k]))

    lo, hi = -1, len(levels) - 1
    while lo < hi:  # proofs by allocation: the local allocations, scaled down, fit every row
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    # a probe that freezes every job is a feasibility LP over all of them (3.5-4 s at ruled 2,000 x 8,
    # seed 0, when it fails): the last events are left to the stages
    hi = len(levels) - 2 if (event[active] <= levels[-1]).all() else len(levels) - 1

    def narrow(p: FloatArray | None) -> None:
        nonlocal hi
        if p is None or not p.any():
            return
        top, bottom = hi, lo
        while bottom < top:
            mid = (bottom + top + 1) // 2
            bottom, top = (mid, top) if dual_ok(mid, p) else (bottom, mid - 1)
        hi = bottom

    narrow(price)
    if stage.scarce is not None:
        narrow(stage.scarce[1])
    # every type's devices at one price: the device-time the levels need at least, against the pool's
    narrow(np.array([kind == "capacity" for kind in stage.rows.kind], dtype=np.float64))
    x_fit = at(lo) if lo >= 0 else None
    best: tuple[int, _Result] | None = None
    best_price: FloatArray | None = None
    guide = price if price is not None and price.any() and stage.scarce is not None else None
    local_rows = np.zeros(stage.rows.n_rows, dtype=bool)
    for _, rws in split[0]:
        local_rows[rws] = True
    missed = False
    while probes and lo < hi and budget[0] > 0:
        budget[0] -= 1
        k = (lo + hi + 1) // 2 if missed else hi
        freeze, el, pn = trial(k)
        rest = active & ~freeze
        target = float(levels[k])
        try:
            result = _probe(stage, rest, el, pn, guide, target, at(k), k == hi, local_rows)
        except RuntimeError as no:
            hi, missed = k - 1, True
            if isinstance(no, NoSolution):
                before = hi
                narrow(no.price)
                narrow(no.ray_other)
                missed = hi >= before  # a ray that moved the top: probe the new top
            continue
        except OutOfWork:
            break
        level, trial_price = result[0], result[2]
        if stage.scarce is not None and trial_price.any():
            guide = trial_price
        if not rest.any() or level >= target * (1 - 1e-7):
            lo, missed, best_price = k, False, trial_price
            best = (k, result) if k == hi else None
            x_fit = result[1]
        else:
            hi, missed = k - 1, True
            if level > 0 and index(level) > lo:
                # the probe's allocation fits at ``level``: every event up to it is a stage (module docstring)
                lo, best, best_price, x_fit = min(index(level), hi), None, trial_price, result[1]
        narrow(trial_price)
    if lo < 0:
        return None
    freeze, el, pn = trial(lo)
    ell[:] = el
    pinned[:] = pn
    active &= ~freeze
    assert x_fit is not None
    solved = best[1] if best is not None and best[0] == lo else None
    return float(levels[lo]), x_fit, solved, best_price


def _probe(
    stage: _Stage,
    rest: BoolArray,
    ell: FloatArray,
    pinned: BoolArray,
    guide: FloatArray | None,
    target: float,
    x_start: FloatArray,
    settle: bool,
    local_rows: BoolArray | None = None,
) -> _Result:
    """One probe (_wf_stage._stage with a target). Over at most PROBE_WHOLE groups not pinned, one master
    over all of them from the start: neither the guide nor the scarce prices (set aside for the call), so
    _stage starts whole. The probes start far from their answer (the local allocations ignore capacity):
    grown from a few jobs, their masters reached nearly every job anyway (ruled 2,000 x 8, seed 0: 58 ->
    1,403 jobs over nine rounds, 1.8 s; whole, one LP, 1.3 s).

    Grown, the jobs of every local row (``local_rows``) that the start's fixed plans overload at the
    start's level start in the master (_entering): the start's prices (the last stage's, or the
    sample's) leave most local rows at 0, so the fixed plans broke tenant caps the local allocations had
    kept, and each master priced one such cap and took its tenant's jobs, one tenant a round
    (bench_round under rules, step 2's probe: 14 masters, 230 -> 1,589 jobs, 1.8 s CPU)."""
    whole = int((~pinned).sum()) <= PROBE_WHOLE
    scarce = stage.scarce
    if whole:
        stage.scarce, guide = None, None
    try:
        return _stage(
            stage,
            rest,
            ell,
            pinned,
            guide,
            target,
            x_start,
            target=target if stage.ipm else None,
            settle=settle,
            enter=None if whole or local_rows is None else _entering(stage, rest, ell, local_rows),
        )
    finally:
        stage.scarce = scarce


def _entering(
    stage: _Stage, active: BoolArray, ell: FloatArray, local_rows: BoolArray
) -> Callable[[BoolArray, IntArray, IntArray, float], BoolArray]:
    """_stage's ``enter`` for a grown probe: the jobs counted in a local row that the fixed jobs' plans
    alone (active ones at the start's level, frozen ones at ell) overload. Only which jobs the master
    starts with: its own duals still decide the probe."""

    def enter(amb: BoolArray, u: IntArray, v: IntArray, guess: float) -> BoolArray:
        x = np.zeros_like(stage.a)
        _fixed_x(stage, active, ell, amb, u, v, guess, x)
        use = stage.row_total(stage.size[:, None] * x)
        over = local_rows & (use > stage.rows.bound * (1 + 1e-9) + 1e-9)
        out: BoolArray = np.asarray(stage.member[over].any(axis=0), dtype=bool)
        return out

    return enter
