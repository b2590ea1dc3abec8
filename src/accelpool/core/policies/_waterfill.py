"""Fast weighted max-min water-filling over resource rows, shared by every max-min style policy.

Notation (a stage of the water-filling; see _seam.py for rows r, pools q and borrow b_r):

    a[j, t]   normalized work per unit of time of job j on type t (>= 0; 0 where j may not use t)
    c_j       ceiling max_t a[j,t]: the level job j reaches running all the time on its best type
    S_j       devices the job (group of identical jobs) holds on a type while it runs: m_j * scale_j
    active    jobs whose level is still being raised; frozen jobs keep level ell_j from earlier stages

    maximize  L
    s.t.      sum_t a[j,t] x[j,t] >= L                 j active       (dual y_j >= 0)
              sum_t a[j,t] x[j,t] >= ell_j             j frozen
              sum_t x[j,t] <= 1                        every j         (fraction of wall time)
              sum_{j in M_r} S_j x[j,t_r] - b_r <= bound_r    every row r   (dual price p_r >= 0)
              sum_{r of q} b_r <= pool_bound_q         every pool q
    Water-filling: solve, freeze the active jobs with y_j > 0 (they cannot rise without lowering
    another) or at their own ceiling c_j, repeat until no job is active.

Speed: plans on a hull segment. Only the R rows couple jobs. With row prices p, job j pays
pi[j,t] = sum of p_r over the rows it counts in on t, per device. The cheapest way for j alone to reach
level l (minimize S_j pi.x s.t. a.x >= l, sum_t x <= 1) is a vertex of a two-row LP: it runs on at most
two types, on the lower convex hull of the points (0, 0) ("idle") and (a[j,t], pi[j,t]). On that hull
segment (u, v), a[j,u] <= l <= a[j,v],

    x[j,v] = (l - a[j,u]) / (a[j,v] - a[j,u]),   x[j,u] = 1 - x[j,v]   (no x[j,u] when u is idle)

is affine in l. Every job whose segment is clear at the current prices (the second cheapest plan costs
over 1% more, and l is not near a segment end) is *fixed* to its segment and enters the master LP only
through per-row aggregates, linear in L (column generation over a restricted master):

    sum_{ambiguous j in M_r} S_j x[j,t_r] + K_r L - b_r <= bound_r - F_r
    K_r, F_r = sums over fixed jobs of S_j times the slope and constant of x[j,t_r](l)
    max_{fixed active} a[j,u] <= L <= min_{fixed active} a[j,v]

After each solve the new prices check every fixed job (is its segment still the cheapest plan at its
level, and is L inside it?). Jobs that fail become ambiguous and the master is solved again; when none
fails, the master's duals plus y_j = S_j (pi[j,v] - pi[j,u]) / (a[j,v] - a[j,u]) for the fixed jobs are
an optimal dual of the full LP (reduced costs of all their columns >= 0 is exactly "on the lower hull"),
so the restricted optimum is the optimum of the full stage LP. Jobs frozen at their ceiling with one
best type run there all the time: constants, never in the master.

Ceilings. With distinct weights almost every job has its own ceiling, and one stage per ceiling would
be one LP per job. When a stage freezes only jobs at their ceiling (however few distinct ceilings are
left: with weights 1 or 2 and scales 1-8 there are five, and the stage capped by the next one, all row
prices 0, cost a master grown to most jobs before the stage above it solved a second one; searched,
the probe at that ceiling is the stage above: issue 13's restricted family at 10,000 x 8, seed 0,
13.9 -> 5.5 s CPU), the sorted ceilings c_0 < ... < c_m
of the active jobs are searched for the largest k such that pinning every job with ceiling <= c_k there
still lets all other active jobs reach c_k (feasibility is monotone in k); those are frozen at once
(see _wf_ceilings._skip_ceilings: each probe is one stage LP and usually ends the search in a few probes; all
searches of one allocation share MAX_PROBES probes; the last feasible probe's LP is the next stage's,
and its result is reused). Each probe starts from the segments of the last solved stage or feasible
probe (x_prev: a probe's LP differs from it only in pins and level, and with the rows' prices often 0
the old plans are the only tie-break that keeps rows feasible; issue 13's random family at 10,000 x 8,
seed 0: 17 -> 10 s CPU). A probe is refused without a master grown to every job when the pins alone
overload a row (_pins_overload) or when an infeasible master's Farkas ray, as row prices, proves the
whole LP infeasible by weak duality (_wf_dual._over_budget).

A probe only asks a yes/no question, so it stops at the first proof either way (``target``,
_wf_stage._stage): a master whose allocation fits and reaches ceilings[k] (1 - eps) (the allocation is
the proof; ``eps``, the caller's level tolerance, default LEVEL_TOLERANCE of max_min_fairness), or any
round's prices (the master's or the smoothed ones) under which the jobs' cheapest plans at
min(ceilings[k], c_j) cost more than the rows are worth. Only a probe at the top of the bracket, whose
LP is the next stage's when it fits, is solved to the stage's optimum. The search's upper end starts
from weak duality at the sample's scarcity prices when the last stage's prices are all 0 (issue 13's
random family at 10,000 x 8, seed 0: the first search went from four probes with masters of
3,000-5,000 jobs to one). A stage (or probe) whose master reaches the smallest ceiling of its active
jobs ends there when its allocation, the fixed jobs moved to that ceiling, fits (_capped: that is the
LP's optimum, and row prices 0 are its dual), instead of growing its master until the extrapolated
segments agree.

Tail. With per-job speeds nearly every job can end at its own level, one stage each. Two things keep
the stages few. Ceilings (above). And closed types (_prune): after each stage, every type a still
rising job pays for at the stage's optimal prices is closed to it for good (complementary slackness:
no later allocation can use it), so a job held by the types still free to it has a lower ceiling, its
best free type, and the ceiling searches pin such jobs in bulk (on the capacity-bound families of
bench/problems.py the tails of 15-123 one-job stages were mostly such jobs). After MAX_STAGES stages,
or once the masters of the stages after the first have held WORK_PER_GROUP x groups jobs in all (at
least WORK_FLOOR; a master of more than _wf_master.MASTER_COLUMNS columns counts more, work_of), the
water-filling stops: the jobs still active keep the last stage's level (all of them reach it; stopped
by the budget, the highest level reached, a ceiling-search probe's when one after the last stage placed
every job higher, even one that missed its ceiling: _Stage.fallback) and the callers' fill_spare hands
out the capacity left. So the stage-1 level and
every level reached before the stop are exact; above them the allocation is Pareto-efficient but not
lexicographically optimal. ``whole_lp`` runs the same procedure with every LP solved whole and no
closed types (the benchmarks' reference): the same stage-1 level; later stages may freeze other jobs
where an LP has several optimal duals.

Prices that start a master. Above SAMPLE_ABOVE groups, stage 1 starts from the same LP on a
deterministic sample (_sample_stage: rows scaled to the sample, large groups always in it). A stage
capped by a ceiling has all prices 0, which choose nothing; its master (and every ceiling-search probe)
starts instead from *scarcity* prices, the first non-zero prices of the sample's own water-filling
(_scout). Between masters, jobs are added where wrong at smoothed prices (SMOOTH, _wf_stage.py, which
holds one stage's column generation: _stage and its master); a master that is infeasible (its fixed
plans overload a row at every L) adds the fixed jobs on its Farkas ray's rows, or where those are over
FULL_LP_GROUPS the ones whose plan is not a cheapest at the ray's row prices (Farkas pricing,
_wf_stage._ray_grow). None of these
prices certifies anything: every stage ends on the master's own duals (or at its ceiling, _capped).
Above BALANCE_ABOVE rising jobs (or most of the groups: BALANCE_SHARE) a master about to grow by a tenth of them restarts its fixed plans from
*balanced* prices instead (_wf_balance._balance: multiplicative weights on every row over the jobs'
cheapest plans, on a sample, then on all): even a stage's exact prices leave the rows that do not bind
at 0, and the jobs that tie among those free rows, each fixed to its fastest free type, overload one.

Program rules (_wf_local.py). When rows are local to a tenant (caps, program caps: rows without a pool
over a few jobs; only capacity, the reserve and the quota pools couple tenants), every tenant's own
water-filling over its local rows (small whole LPs) gives events (level, jobs frozen) that are the whole
water-filling's stages as long as the coupling rows let every tenant follow its own (parts of at most
_wf_local.LOCAL_PART groups); before each stage
the events that an allocation (the tenants' allocations scaled down, or a probe's master) proves are
applied at once; a stage before which no event was applied runs the ceiling search as without rules
(with the searches left to the events alone, the stages of one ceiling each ran out of MAX_STAGES: the
random rule problems of bench/problems.py random_rules, seeds 6074 and 6089, twelfth session's review). Each
applied event ends on an optimal dual
(its tenant's local dual, every other price 0), so exactness is unchanged in kind.

Tolerance. ``eps`` is used only by the ceiling searches (above): a probe counts as fitting at
ceilings[k] (1 - eps), so jobs pinned at ceilings up to ceilings[k] may end up to eps above the level
the others keep. Every stage level is still its LP's optimum (the stage-1 level exact); with eps 0 the
procedure is exact (probes decided by proofs only). Identical jobs (same row a,
scale and rows) are merged first and share one allocation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from accelpool.core.allocation import BoolArray, FloatArray, IntArray
from accelpool.core.policies import _wf_rowsum
from accelpool.core.policies._seam import Rows
from accelpool.core.policies._wf_ceilings import _pin, _skip_ceilings
from accelpool.core.policies._wf_local import parts, skip_local
from accelpool.core.policies._wf_stage import (
    TOL,
    OutOfWork,
    _Result,
    _Stage,
    _stage,
)
from accelpool.core.policies._wf_warm import Hint, WarmRecord, _after, _next_hinted

SAMPLE_GROUPS = 400
SAMPLE_ABOVE = 2 * SAMPLE_GROUPS
"""Start and scarcity prices come from a sample (_scout) only above this many groups; below, the first
stage is whole and stages with zero prices start from fastest-type plans."""
MAX_STAGES = 12
"""Exact water-filling stages (ceiling searches not counted); see Tail above."""
WORK_PER_GROUP = 2.5
WORK_FLOOR = 25_000
"""The work budget of the stages after the first: their master solves may hold max(WORK_FLOOR,
WORK_PER_GROUP x groups) jobs in all (summed over solves; _Stage.work; a master's jobs times
max(1, (columns / _wf_master.MASTER_COLUMNS) ** 2): a column costs more in large masters), then the
water-filling stops where it stands, as after MAX_STAGES (the last stage's allocation, jobs still
rising keep its level, the callers' fill_spare hands out the rest). Counted, not timed: the same problem always stops at the
same point. Set on issue 13's tuning seed 0 (docs/allocate.md): above every allocation's total at
2,000 x 8 (at most 18,800 jobs, gang) and every family's at 10,000 x 8 before _prune (at most 20,100,
sparse), below what _prune's longer tails took at 10,000 without it (gang 90,000, scarce 59,000,
generational 51,000). A single master solve is not cut short; a master whose jobs would take the total
past the budget is not started (_wf_master.Master.solve): one such master on generational 10,000 x 8,
seed 0, with balanced restarts, held 5,810 jobs and took 92 s CPU."""
MAX_PROBES = 12
"""Whole-LP probes of all ceiling searches of one allocation together: a search out of probes pins
the jobs up to the last ceiling proven reachable (exact, only fewer pins), and later stages pin the
rest one stage each (within MAX_STAGES). Without a limit a search on issue 13's
random family at 10,000 x 8 ran ~20 probes of 1-7 s each (101 s CPU in all, against 2 s for the
exact stage-1 LP)."""


def _scout(stage: _Stage) -> tuple[FloatArray, float, tuple[float, FloatArray] | None]:
    """Start prices and level (the sample's stage 1) and the scarcity level and prices: the first prices
    of the sample's whole water-filling that are not all 0 (None: capacity never binds there).

    Stages capped by a ceiling (the level is the smallest active ceiling, not a full row) have all row
    prices 0: any plan is as cheap as any other, and the fastest-type plans the master started from
    overloaded rows, so the master (and each ceiling-search probe) grew to most jobs. The scarcity
    prices say which rows are scarce at the level where capacity first binds; plans at those prices
    spread the jobs over the rows. They only choose the master's starting plans: the master's own
    duals still certify every stage.
    """
    small, _ = _sample_stage(stage)
    ng = small.a.shape[0]
    active, ell, pinned = np.ones(ng, dtype=bool), np.zeros(ng), np.zeros(ng, dtype=bool)
    first = _stage(small, active, ell, pinned, None, 0.0)
    if first[2].any():
        return first[2], first[0], (first[0], first[2])
    _, found = _fill(small, active, ell, pinned, None, 0.0, whole_lp=True, scout=True, solved=first)
    return first[2], first[0], found


def _sample_stage(stage: _Stage) -> tuple[_Stage, IntArray]:
    """A deterministic sample of SAMPLE_GROUPS groups with every row scaled to the sample's share.

    Groups of merged jobs can be large (bench_round's 2,500 identical single-type jobs are one group of
    10,000 devices): a uniform draw of groups either misses such a group (the sample's prices then
    ignore its type's scarcity) or over-weights it. Every group holding at least 1/SAMPLE_GROUPS of all
    devices is therefore always in the sample, at its size times the fraction of the other groups'
    devices drawn, so the sample is a shrunken copy of the problem.
    """
    size = stage.size
    big = size * SAMPLE_GROUPS >= size.sum()
    rest = np.nonzero(~big)[0]
    rng = np.random.default_rng(12345)
    drawn = rng.choice(rest, size=min(len(rest), SAMPLE_GROUPS - int(big.sum())), replace=False)
    rest_total = float(size[rest].sum())
    frac_rest = float(size[drawn].sum()) / rest_total if rest_total > 0 else 1.0
    pick = np.sort(np.concatenate([np.nonzero(big)[0], drawn]))
    sizes = np.where(big[pick], size[pick] * frac_rest, size[pick])
    rows = stage.rows
    share = np.ones(rows.n_rows)
    for r in range(rows.n_rows):
        total = (size * stage.member[r]).sum()
        part = (sizes * stage.member[r, pick]).sum()
        share[r] = part / total if total > 0 else 1.0
    frac = float(sizes.sum() / size.sum())
    small_rows = Rows(
        type_of=rows.type_of,
        member=rows.member,  # unused by the master (it reads stage.member)
        bound=rows.bound * share,
        pool_of=rows.pool_of,
        kind=rows.kind,
        pool_bound=rows.pool_bound * frac,
        span=rows.span,
    )
    return _Stage(stage.a[pick], sizes, small_rows, stage.member[:, pick]), pick


def _prune(stage: _Stage, rising: BoolArray, level: float, price: FloatArray, x: FloatArray) -> None:
    """Forbid, for the rest of the water-filling, every type a still rising job pays for at the stage's
    optimal prices (stage.forbid): its ceiling drops to its best free type, and the ceiling searches pin
    it there with the others instead of one stage per job.

    Exact by complementary slackness. Let (p, y, mu) be an optimal dual of the stage just solved (L*).
    Every later stage's allocation keeps every job at L* or more (frozen ones at their levels), so it is
    a feasible point of this stage's LP with L = L*, an optimal point, and there every column with a
    negative reduced cost a[j,t] y_j - mu_j - S_j pi[j,t] is 0. A rising job has y_j = 0 (positive y_j
    freezes it) and then mu_j = 0 (the columns it runs on have reduced cost 0, and -mu_j - S_j pi <= 0),
    so every type with pi[j,t] > 0 is closed to it from now on. Guards against round-off: prices under
    1e-6 of the largest count as 0, a type the stage's allocation uses stays open, and so does a job's
    last type (nothing is closed after a stage at level 0).
    """
    top = float(price.max(initial=0.0))
    if top <= 0 or level <= 0 or not rising.any():
        return
    pi = stage.effective_price(price)
    drop = rising[:, None] & stage.usable & (pi > 1e-6 * top) & (x <= 1e-9)
    keep = np.asarray((stage.usable & ~drop).any(axis=1), dtype=bool)
    drop &= keep[:, None]  # never a job's last type (a job held at 0)
    if drop.any():
        stage.forbid(drop)


def max_min_waterfill(
    a: FloatArray,
    scale: FloatArray,
    rows: Rows,
    usable: BoolArray,
    *,
    whole_lp: bool = False,
    eps: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """Weighted max-min of sum_t a[j,t] x[j,t] with water-filling. Returns x (jobs x types) and levels.

    ``whole_lp``: solve every stage as one plain HiGHS LP over all jobs (no column generation, no
    sampled prices): the same procedure, the reference the benchmarks time against.
    """
    x, levels, _ = max_min_waterfill_warm(a, scale, rows, usable, whole_lp=whole_lp, eps=eps)
    return x, levels


def _distinct(a: FloatArray, scale: FloatArray, member: BoolArray) -> tuple[IntArray, IntArray, IntArray]:
    """The jobs that merge (the same a, scale and rows): what ``np.unique(key, axis=0, return_index=True,
    return_inverse=True, return_counts=True)`` returns (first, inverse, counts) for key = [a, scale, member.T
    as floats], the same groups in the same order, without sorting ~200 float columns (0.2 s under rules):
    a stable lexsort over a's columns, the scale and the member columns packed 64 to a word, first row in
    the top bit (0/1 columns compare as those words do, lexicographically)."""
    n, tt = a.shape
    words = _wf_rowsum.packed_rows(member)
    keys = [words[:, w] for w in range(words.shape[1] - 1, -1, -1)] + [scale]
    keys += [a[:, t] for t in range(tt - 1, -1, -1)]  # lexsort: the last key first
    order = np.lexsort(keys) if n else np.zeros(0, dtype=np.int64)
    same = np.ones(n, dtype=bool)  # as the job sorted before it
    for k in keys:
        sk = k[order]
        same[1:] &= sk[1:] == sk[:-1]
    new = ~same
    new[:1] = True
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    starts = np.nonzero(new)[0]
    counts = np.diff(np.append(starts, n))
    first: IntArray = order[starts]
    return first, inverse, counts


def max_min_waterfill_warm(
    a: FloatArray,
    scale: FloatArray,
    rows: Rows,
    usable: BoolArray,
    *,
    whole_lp: bool = False,
    warm_start: tuple[float, ...] = (),
    eps: float = 0.0,
    hint: Sequence[Hint] = (),
    record: WarmRecord | None = None,
) -> tuple[FloatArray, FloatArray, tuple[float, ...]]:
    """max_min_waterfill, started from ``warm_start`` (a level and one price per row, from an earlier
    call's third result) instead of the sample's prices when it fits the rows and has a price above 0.

    The start only chooses the first masters' plans (as the sample's prices do): every stage still ends
    on its master's own duals, so the stage-1 level is the same (later stages may freeze other jobs
    where an LP has several optimal duals, as with whole_lp). bench_leases' lease-boundary problem
    solved again from its own result: 0.56 -> 0.07 s CPU. Returns x, levels and the warm start for a
    next call: the level and prices of the first stage whose prices are not all 0 (else the sample's
    scarcity level and prices; empty when there are none).

    ``hint``: an earlier round's stages and probes (``record`` of that call, _wf_warm.Hint, its prices
    mapped to these rows by the caller): a stage after one at level l starts from the prices of the
    hint's stage after one at l, a probe at c from the hint's probe at c, every ceiling search first
    narrows its bracket by weak duality at the hint's probe prices, and a refused probe's prices guide no
    later probe. Starts and proofs only: every stage and probe still ends on its own master's duals or a
    proof (the stage-1 level is the same; later stages may freeze other jobs where an LP has several
    optimal duals). ``record``: filled with this call's stages and probes.
    """
    n, tt = a.shape
    x_out = np.zeros((n, tt))
    levels = np.zeros(n)
    runnable = np.nonzero(usable.any(axis=1))[0]
    if len(runnable) == 0 or tt == 0:
        return x_out, levels, ()
    a_r = np.where(usable[runnable], a[runnable], 0.0)
    first, inverse, counts = _distinct(a_r, scale[runnable], rows.member[:, runnable])
    sizes = scale[runnable][first] * counts
    stage = _Stage(
        a_r[first], sizes.astype(np.float64), rows, rows.member[:, runnable[first]], ipm=not whole_lp
    )
    ng = len(first)
    active = np.ones(ng, dtype=bool)
    pinned = np.zeros(ng, dtype=bool)
    ell = np.zeros(ng)
    price: FloatArray | None = None
    level = 0.0
    warm = np.asarray(warm_start[1:], dtype=np.float64)
    if not whole_lp and len(warm) == rows.n_rows and (warm > 0).any() and (warm >= 0).all():
        price, level = warm, float(warm_start[0])
        stage.scarce = (level, warm)
    elif ng > SAMPLE_ABOVE and not whole_lp:
        price, level, stage.scarce = _scout(stage)
    x, priced = _fill(
        stage,
        active,
        ell,
        pinned,
        price,
        level,
        whole_lp=whole_lp,
        eps=eps,
        hint=() if whole_lp else hint,
        record=record,
    )
    if priced is None:
        priced = stage.scarce
    x_out[runnable] = x[inverse]
    levels[runnable] = (a_r * x_out[runnable]).sum(axis=1)
    nxt = (priced[0], *priced[1].tolist()) if priced is not None else ()
    return x_out, levels, nxt


def _one_stage(
    stage: _Stage,
    active: BoolArray,
    ell: FloatArray,
    pinned: BoolArray,
    price: FloatArray | None,
    level: float,
    x_prev: FloatArray | None,
    whole_lp: bool,
    solved: _Result | None,
) -> _Result:
    """The next stage of _fill: ``solved`` when a ceiling search already solved it, else one _stage."""
    if solved is not None:
        return solved
    try:
        return _stage(stage, active, ell, pinned, None if whole_lp else price, level, x_prev)
    except RuntimeError:
        # frozen levels a hair too high for HiGHS's tolerances: relax them by 1e-6 and retry once
        ell *= np.where(pinned, 1.0, 1 - 1e-6)
        return _stage(stage, active, ell, pinned, None, level)


def _fill(
    stage: _Stage,
    active: BoolArray,
    ell: FloatArray,
    pinned: BoolArray,
    price: FloatArray | None,
    level: float,
    *,
    whole_lp: bool,
    scout: bool = False,
    solved: _Result | None = None,
    eps: float = 0.0,
    hint: Sequence[Hint] = (),
    record: WarmRecord | None = None,
) -> tuple[FloatArray, tuple[float, FloatArray] | None]:
    """The water-filling loop (in place on active, ell, pinned). Returns x and the first stage level and
    prices that are not all 0, or None (``scout``: stop there; x is then meaningless).

    ``whole_lp``: every LP whole (the benchmarks' reference, and the sample's scouting run).
    ``solved``: the first stage's result, when the caller has it. ``hint``, ``record``: see
    max_min_waterfill_warm.
    """
    ng, tt = stage.a.shape
    x = np.zeros((ng, tt))
    stale = False
    budget = [MAX_PROBES]
    first: tuple[float, FloatArray] | None = None
    after = _after(hint)
    placed = False  # x places every job (a stage's or the local events' allocation)
    split = None if whole_lp or scout else parts(stage)  # tenant-local rows (_wf_local)
    for stages in range(MAX_STAGES):
        if stages and solved is None:
            price = _next_hinted(after, level, price)  # the last round's stage after one at this level
        skipped = None  # the local events this stage applied (_wf_local); none: the ceiling search runs
        if split is not None and solved is None:
            skipped = skip_local(stage, split, x if placed else None, active, ell, pinned, price, budget)
            if skipped is not None:
                level, x, solved, searched = skipped
                if searched is not None:
                    price = searched
                placed, stale = True, False
                stage.fallback = (level, x)  # every job placed at the proven level or more
                if not active.any():
                    break
        try:
            level, x, price, freeze = _one_stage(
                stage, active, ell, pinned, price, level, x if placed else None, whole_lp, solved
            )
        except OutOfWork:
            # the work budget is spent: the allocation of the highest level reached stands (feasible;
            # jobs pinned since keep it, the fill raises them)
            solved, stale = None, False
            x = stage.fallback[1] if stage.fallback is not None else x
            break
        placed = True
        stage.fallback = (level, x)
        if record is not None:
            record.entries.append((level, price, True))
        if stages == 0 and not whole_lp:
            stage.work_limit = stage.work + max(WORK_FLOOR, WORK_PER_GROUP * ng)
        if price.any() and first is None:
            first = (level, price)
            if scout:
                return x, first
        stale = False
        solved = None
        if not freeze.any():
            freeze = active.copy()
        at_ceiling = freeze & (stage.ceiling <= level * (1 + TOL))
        _pin(stage, at_ceiling, active, ell, pinned)
        ell[freeze & ~at_ceiling] = level
        active &= ~freeze
        if not active.any():
            break
        if not whole_lp:
            _prune(stage, active, level, price, x)
        if at_ceiling.any() and not (freeze & ~at_ceiling).any() and (split is None or skipped is None):
            price, solved, x_fit = _skip_ceilings(
                stage,
                active,
                ell,
                pinned,
                None if whole_lp else price,
                budget,
                None if whole_lp else x,
                0.0 if whole_lp else eps,
                hint,
                record,
            )
            if x_fit is not None and not whole_lp:
                x = x_fit  # the last fitting probe: the same pins, every active job at its level
            if scout and solved is not None and solved[2].any():
                return solved[1], (solved[0], solved[2])
            stale = solved is None
            if not active.any():
                break
    if solved is not None:
        x = solved[1]  # the search's last probe placed every job (its LP is the one a next stage would solve)
    elif stale:
        # the last pins came after the last stage: one feasibility solve places every job at its level
        try:
            _, x, _, _ = _stage(stage, active, ell, pinned, price, level, None if whole_lp else x)
        except OutOfWork:
            x = stage.fallback[1] if stage.fallback is not None else x  # as above
    return x, first
