"""The shared LP seam: program rules as resource rows, one HiGHS entry point, greedy ledger, held reasons.

Every policy applies program rules through this module, so that they mean the same thing everywhere.

Notation (extends core/allocation.py):

    r in rows (R)      a resource row: one accelerator type t_r and a set of member jobs M_r
    s_j                scale[j], devices job j needs at once
    use_r = sum_{j in M_r} s_j * x[j, t_r]                                   (devices)

    every row r:       use_r - b_r <= bound_r                                (devices)
    every pool q:      sum_{r borrowing from q} b_r <= pool_bound_q          (devices), b_r >= 0
                       (b_r exists only for quota rows; other rows have no b_r)

Rows come from the problem:
    capacity       M = every job,               bound = cap[t]
    public reserve M = jobs that are not public,  bound = cap[t] - public_reserve[t]
    tenant cap     M = jobs of tenant g,          bound = tenant_cap[g, t]
    program cap    M = jobs of cap group c (a tenant's jobs under one program), bound = cap_limit[c, t]
    quota          M = jobs of tenant g,          bound = reserved[g, t], borrowing from pool t,
                   pool_bound_t = cap[t] - sum_g reserved[g, t]
    where reserved[g, t] = min(quota[g, t], demand[g, t]) (scaled down if quotas oversubscribe t) and
    demand[g, t] = devices tenant g's jobs could use on t. A tenant's idle quota (no demand) is lent to
    the pool; when its jobs come back, reserved grows and the borrowers shrink next round (reclaim).

Budgets: a job with a grant (budget_krw >= 0) may only use a type it can pay for over the whole horizon:
    price[t] * s_j * horizon_seconds / 3600 <= budget_krw[j]                 (KRW)
so no allocation of any policy can overspend a grant within one round.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy._core as _highs
import numpy as np
from scipy import sparse

from accelpool.core.allocation import (
    FEASIBILITY_TOLERANCE,
    Allocation,
    AllocationProblem,
    BoolArray,
    FloatArray,
    IntArray,
)
from accelpool.core.types import WaitReason

EPS = 1e-9


@dataclass(frozen=True, eq=False)
class Rows:
    """Resource rows (see the module notation). ``member[r, j]``: job j counts in row r."""

    type_of: IntArray
    member: BoolArray
    bound: FloatArray
    pool_of: IntArray
    kind: tuple[str, ...]
    pool_bound: FloatArray

    @property
    def n_rows(self) -> int:
        return len(self.type_of)

    def effective_price(self, price: FloatArray, n_types: int) -> FloatArray:
        """pi[j, t] = sum of the prices of the rows job j counts in on type t (per device)."""
        n = self.member.shape[1]
        pi = np.zeros((n, n_types))
        for r in np.nonzero(price > 0)[0].tolist():
            pi[:, self.type_of[r]] += price[r] * self.member[r]
        return pi


def budget_usable(problem: AllocationProblem) -> BoolArray:
    """Types each job's grant can pay for over the horizon (all types for jobs without a grant)."""
    cost = problem.price_krw_per_hour[None, :] * problem.scale[:, None] * problem.horizon_seconds / 3600.0
    limited = problem.budget_krw >= 0
    ok: BoolArray = ~limited[:, None] | (cost <= problem.budget_krw[:, None] + EPS)
    return ok


def usable_mask(problem: AllocationProblem) -> BoolArray:
    """allowed, positive throughput, fits the type at all, and affordable under the job's grant."""
    return problem.usable() & budget_usable(problem)


def build_rows(problem: AllocationProblem, usable: BoolArray) -> Rows:
    """Capacity, public-reserve, tenant-cap and quota rows for ``problem`` (see the module notation)."""
    n, tt = problem.n_jobs, problem.n_types
    cap = problem.capacity
    type_of: list[int] = []
    member: list[BoolArray] = []
    bound: list[float] = []
    pool_of: list[int] = []
    kind: list[str] = []
    everyone = np.ones(n, dtype=bool)

    def add(t: int, m: BoolArray, b: float, k: str, pool: int = -1) -> None:
        type_of.append(t)
        member.append(m)
        bound.append(max(0.0, float(b)))
        pool_of.append(pool)
        kind.append(k)

    for t in range(tt):
        add(t, everyone, cap[t], "capacity")
    private = ~problem.public
    for t in range(tt):
        if problem.public_reserve[t] > 0 and private.any():
            add(t, private, cap[t] - problem.public_reserve[t], "reserve")
    tenants = [problem.tenant_index == g for g in range(len(problem.tenant_ids))]
    for g, in_g in enumerate(tenants):
        for t in range(tt):
            limit = problem.tenant_cap[g, t]
            if np.isfinite(limit) and limit < cap[t] and in_g.any():
                add(t, in_g, limit, "cap")
    for c in range(problem.cap_limit.shape[0]):
        in_c = problem.cap_index == c
        if not in_c.any():
            continue
        for t in range(tt):
            limit = problem.cap_limit[c, t]
            if np.isfinite(limit) and limit < cap[t]:
                add(t, in_c, limit, "cap")
    pools: list[float] = []
    for t in range(tt):
        quota = problem.quota[:, t] if problem.quota.size else np.zeros(0)
        if not np.any(quota > 0):
            continue
        demand = np.array([(problem.scale * (usable[:, t] & m)).sum() for m in tenants])
        reserved = np.minimum(quota, demand)
        if reserved.sum() > cap[t]:
            reserved = np.floor(reserved * cap[t] / reserved.sum() * 1e6) / 1e6
        q = len(pools)
        pools.append(float(cap[t] - reserved.sum()))
        for g, in_g in enumerate(tenants):
            if in_g.any():
                add(t, in_g, reserved[g], "quota", q)
    return Rows(
        type_of=np.array(type_of, dtype=np.int64),
        member=np.array(member, dtype=bool).reshape(len(type_of), n),
        bound=np.array(bound, dtype=np.float64),
        pool_of=np.array(pool_of, dtype=np.int64),
        kind=tuple(kind),
        pool_bound=np.array(pools, dtype=np.float64),
    )


# ---------------------------------------------------------------------------------------------------------
# One entry point to HiGHS.


@dataclass(frozen=True, eq=False)
class LpResult:
    ok: bool
    x: FloatArray
    row_dual: FloatArray
    objective: float


def solve_lp(
    cost: FloatArray,
    a: sparse.csc_matrix,
    row_lo: FloatArray,
    row_hi: FloatArray,
    col_lo: FloatArray,
    col_hi: FloatArray,
    *,
    ipm: bool = False,
) -> LpResult:
    """minimize cost . x  s.t. row_lo <= A x <= row_hi, col_lo <= x <= col_hi (HiGHS dual simplex).

    ``row_dual[i]`` is d(objective)/d(bound of row i): a binding <= row in a minimization has it <= 0.
    ``ipm``: HiGHS's interior point method with crossover instead (a vertex solution all the same).
    """
    h = _highs._Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    if ipm:
        h.setOptionValue("solver", "ipm")
    lp = _highs.HighsLp()
    lp.num_col_ = len(cost)
    lp.num_row_ = a.shape[0]
    lp.col_cost_ = np.ascontiguousarray(cost, dtype=np.float64)
    lp.col_lower_ = np.ascontiguousarray(col_lo, dtype=np.float64)
    lp.col_upper_ = np.ascontiguousarray(col_hi, dtype=np.float64)
    lp.row_lower_ = np.ascontiguousarray(row_lo, dtype=np.float64)
    lp.row_upper_ = np.ascontiguousarray(row_hi, dtype=np.float64)
    a = sparse.csc_matrix(a)
    lp.a_matrix_.format_ = _highs.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data.astype(np.float64)
    lp.a_matrix_.num_col_ = len(cost)
    lp.a_matrix_.num_row_ = a.shape[0]
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    if status != _highs.HighsModelStatus.kOptimal:
        return LpResult(False, np.zeros(len(cost)), np.zeros(a.shape[0]), float("nan"))
    sol = h.getSolution()
    return LpResult(
        True,
        np.asarray(sol.col_value, dtype=np.float64),
        np.asarray(sol.row_dual, dtype=np.float64),
        float(h.getInfo().objective_function_value),
    )


@dataclass
class LpModel:
    """A full LP over x[j, t] (usable pairs only) with the rule rows already in it.

    Columns: the x pairs first (``pairs``), then the borrow variables b_r of quota rows, then any
    columns a policy adds. Rows: one time row per job (sum_t x <= 1), the rule rows, the pools, then any
    rows a policy adds. Policies add their own rows and columns, set ``cost`` and call ``solve``.
    """

    jobs: IntArray
    types: IntArray
    n_x: int
    n_cols: int
    coo_r: list[IntArray]
    coo_c: list[IntArray]
    coo_v: list[FloatArray]
    row_lo: list[FloatArray]
    row_hi: list[FloatArray]
    col_lo: list[FloatArray]
    col_hi: list[FloatArray]
    n_rows: int

    def add_cols(self, count: int, lo: float = 0.0, hi: float = np.inf) -> int:
        first = self.n_cols
        self.n_cols += count
        self.col_lo.append(np.full(count, lo))
        self.col_hi.append(np.full(count, hi))
        return first

    def add_rows(
        self, rows: IntArray, cols: IntArray, vals: FloatArray, lo: FloatArray, hi: FloatArray
    ) -> int:
        """Add len(lo) rows; ``rows`` are offsets 0.. within the new block. Returns the first row index."""
        first = self.n_rows
        self.coo_r.append(np.asarray(rows, dtype=np.int64) + first)
        self.coo_c.append(np.asarray(cols, dtype=np.int64))
        self.coo_v.append(np.asarray(vals, dtype=np.float64))
        self.row_lo.append(np.asarray(lo, dtype=np.float64))
        self.row_hi.append(np.asarray(hi, dtype=np.float64))
        self.n_rows += len(lo)
        return first

    def solve(self, cost: FloatArray) -> LpResult:
        a = sparse.coo_matrix(
            (np.concatenate(self.coo_v), (np.concatenate(self.coo_r), np.concatenate(self.coo_c))),
            shape=(self.n_rows, self.n_cols),
        ).tocsc()
        return solve_lp(
            cost,
            a,
            np.concatenate(self.row_lo),
            np.concatenate(self.row_hi),
            np.concatenate(self.col_lo),
            np.concatenate(self.col_hi),
        )

    def x_matrix(self, values: FloatArray, n: int, tt: int) -> FloatArray:
        x = np.zeros((n, tt))
        x[self.jobs, self.types] = np.clip(values[: self.n_x], 0.0, 1.0)
        return x


def lp_model(problem: AllocationProblem, usable: BoolArray, rows: Rows) -> LpModel:
    """The x columns, time rows, rule rows and pools every LP policy shares."""
    n = problem.n_jobs
    jobs, types = np.nonzero(usable)
    k = len(jobs)
    model = LpModel(jobs, types, k, 0, [], [], [], [], [], [], [], 0)
    model.add_cols(k, 0.0, 1.0)
    model.add_rows(jobs, np.arange(k), np.ones(k), np.full(n, -np.inf), np.ones(n))
    # rule rows: pair p counts in row r when member[r, job_p] and type_p == type_of[r]
    rr, cc, vv = [], [], []
    for r in range(rows.n_rows):
        pairs = np.nonzero((types == rows.type_of[r]) & rows.member[r, jobs])[0]
        rr.append(np.full(len(pairs), r))
        cc.append(pairs)
        vv.append(problem.scale[jobs[pairs]])
    borrowing = np.nonzero(rows.pool_of >= 0)[0]
    first_b = model.add_cols(len(borrowing))
    rr.append(borrowing)
    cc.append(first_b + np.arange(len(borrowing)))
    vv.append(-np.ones(len(borrowing)))
    model.add_rows(
        np.concatenate(rr) if rr else np.zeros(0, np.int64),
        np.concatenate(cc) if cc else np.zeros(0, np.int64),
        np.concatenate(vv) if vv else np.zeros(0),
        np.full(rows.n_rows, -np.inf),
        rows.bound,
    )
    npool = len(rows.pool_bound)
    model.add_rows(
        rows.pool_of[borrowing],
        first_b + np.arange(len(borrowing)),
        np.ones(len(borrowing)),
        np.full(npool, -np.inf),
        rows.pool_bound,
    )
    return model


# ---------------------------------------------------------------------------------------------------------
# Greedy ledger for the non-LP policies and for the final fill.


class Ledger:
    """Tracks devices used per rule row and borrowed per pool, so greedy policies respect the rules.

    Jobs that count in the same rows (same tenant, same public flag) share a *class*; the rows of
    (class, type) are looked up once, and the bookkeeping runs on plain Python floats, which is much
    faster than numpy for the handful of rows a job touches.
    """

    def __init__(self, problem: AllocationProblem, rows: Rows) -> None:
        self.rows = rows
        self.scale = problem.scale
        self.scale_list: list[float] = problem.scale.tolist()
        self.used: list[float] = [0.0] * rows.n_rows
        self.pool_used: list[float] = [0.0] * len(rows.pool_bound)
        self.bound: list[float] = rows.bound.tolist()
        self.pool_bound: list[float] = rows.pool_bound.tolist()
        self.pool_of: list[int] = rows.pool_of.tolist()
        n, tt = problem.n_jobs, problem.n_types
        if n and rows.n_rows:
            _, first, inverse = np.unique(rows.member.T, axis=0, return_index=True, return_inverse=True)
            self.klass: list[int] = inverse.reshape(-1).tolist()
            reps = first.tolist()
        else:
            self.klass, reps = [0] * n, [0]
        member = rows.member
        self._rows: list[list[list[int]]] = [
            [
                [r for r in np.nonzero(rows.type_of == t)[0].tolist() if n and member[r, rep]]
                for t in range(tt)
            ]
            for rep in reps
        ]
        self._capacity_row: list[int] = [-1] * tt
        for r, k in enumerate(rows.kind):
            if k == "capacity":
                self._capacity_row[int(rows.type_of[r])] = r

    def rows_of(self, j: int, t: int) -> list[int]:
        return self._rows[self.klass[j]][t]

    def room(self, j: int, t: int, *, ignore_rules: bool = False) -> float:
        """Devices job j could still add on type t (capacity only when ``ignore_rules``)."""
        if ignore_rules:
            r = self._capacity_row[t]
            return max(0.0, self.bound[r] - self.used[r]) if r >= 0 else float("inf")
        best = float("inf")
        bound, used, pool_of = self.bound, self.used, self.pool_of
        for r in self._rows[self.klass[j]][t]:
            left = bound[r] - used[r]
            q = pool_of[r]
            if q >= 0:
                left = (left if left > 0.0 else 0.0) + self.pool_bound[q] - self.pool_used[q]
            if left < best:
                best = left
        return best if best > 0.0 else 0.0

    def most_free(self) -> float:
        """The most devices left on any type's capacity row (an upper bound on any job's room)."""
        return max((self.room(0, t, ignore_rules=True) for t in range(len(self._capacity_row))), default=0.0)

    def add(self, j: int, t: int, devices: float) -> None:
        bound, used, pool_of = self.bound, self.used, self.pool_of
        for r in self._rows[self.klass[j]][t]:
            q = pool_of[r]
            if q >= 0:
                before = used[r] - bound[r]
                after = before + devices
                self.pool_used[q] += (after if after > 0.0 else 0.0) - (before if before > 0.0 else 0.0)
            used[r] += devices

    def load(self, x: FloatArray) -> None:
        rows, cols = np.nonzero(x > 0)
        devices = (x[rows, cols] * self.scale[rows]).tolist()
        for j, t, d in zip(rows.tolist(), cols.tolist(), devices, strict=True):
            self.add(j, t, d)


def lend_idle_quota(problem: AllocationProblem, rows: Rows, x: FloatArray) -> Rows:
    """The rows with each quota reservation cut to what its owner's jobs actually use under ``x``.

    reserved'[g, t] = min(reserved[g, t], sum_{j of g} s_j x[j, t]); the cut goes to the pool of t.
    ``x`` stays feasible (no quota row borrows more than before), and the devices a tenant reserved but
    does not use become lendable, so the final fill is work-conserving. Reclaim is unchanged: next round
    the reservation is rebuilt from the owner's demand and binds again in the policy's own pass.
    """
    quota = np.nonzero(rows.pool_of >= 0)[0]
    if len(quota) == 0:
        return rows
    load = x * problem.scale[:, None]
    use = np.array([load[rows.member[r], rows.type_of[r]].sum() for r in quota.tolist()])
    bound = rows.bound.copy()
    cut = np.maximum(bound[quota] - use, 0.0)
    bound[quota] -= cut
    pool_bound = rows.pool_bound.copy()
    np.add.at(pool_bound, rows.pool_of[quota], cut)
    return Rows(rows.type_of, rows.member, bound, rows.pool_of, rows.kind, pool_bound)


def fill_spare(
    problem: AllocationProblem, usable: BoolArray, rows: Rows, x: FloatArray, order: FloatArray
) -> FloatArray:
    """Give capacity no one uses to jobs with time to spare (best ``order`` first), within every rule.

    Quota reservations bind only up to what their owners use in ``x`` (see lend_idle_quota). Afterwards no type keeps spare room (under the rules) while a job usable on it has sum_t x < 1.
    """
    x = x.copy()
    slack_arr = 1.0 - x.sum(axis=1)
    wanting = usable & (slack_arr[:, None] > 1e-9)
    if not wanting.any():
        return x
    ledger = Ledger(problem, lend_idle_quota(problem, rows, x))
    ledger.load(x)
    slack = slack_arr.tolist()
    scale = ledger.scale_list
    for t in range(problem.n_types):
        cands = np.nonzero(wanting[:, t])[0]
        if len(cands) == 0 or ledger.room(int(cands[0]), t, ignore_rules=True) <= 1e-9:
            continue
        for j in cands[np.argsort(-order[cands, t], kind="stable")].tolist():
            if slack[j] <= 1e-9:
                continue
            room = ledger.room(j, t)
            if room <= 1e-9:
                if ledger.room(j, t, ignore_rules=True) <= 1e-9:
                    break
                continue
            add = min(slack[j], room / scale[j])
            x[j, t] += add
            slack[j] -= add
            ledger.add(j, t, add * scale[j])
    return x


def uncontended(
    problem: AllocationProblem, usable: BoolArray, rows: Rows, a: FloatArray
) -> FloatArray | None:
    """x = 1 on each job's best type (largest ``a``) when that fits every rule row and pool, else None.

    When it fits, every job sits at its own ceiling, which is optimal for max-min, finish-time fairness
    and max-throughput alike, so those policies skip their LPs (most rounds of a lightly loaded pool).
    """
    n, tt = problem.n_jobs, problem.n_types
    runnable = usable.any(axis=1)
    if n == 0 or tt == 0 or not runnable.any():
        return None
    best = np.argmax(np.where(usable, a, -np.inf), axis=1)
    x = np.zeros((n, tt))
    x[np.nonzero(runnable)[0], best[runnable]] = 1.0
    demand = np.where(runnable, problem.scale, 0.0)
    on = rows.member & (best[None, :] == rows.type_of[:, None])
    use = on.astype(np.float64) @ demand
    over = use - rows.bound
    plain = rows.pool_of < 0
    if np.any(over[plain] > FEASIBILITY_TOLERANCE):
        return None
    borrowed = np.zeros(len(rows.pool_bound))
    np.add.at(borrowed, rows.pool_of[~plain], np.maximum(over[~plain], 0.0))
    if np.any(borrowed > rows.pool_bound + FEASIBILITY_TOLERANCE):
        return None
    return x


# ---------------------------------------------------------------------------------------------------------
# Held reasons and the returned Allocation.


def held_reasons(problem: AllocationProblem, x: FloatArray, rows: Rows) -> dict[str, WaitReason]:
    """Why each job that gets (almost) nothing waits, in the words a user understands."""
    held: dict[str, WaitReason] = {}
    idle = x.sum(axis=1) <= 1e-9
    if not idle.any():
        return held
    runnable = problem.usable()
    affordable = runnable & budget_usable(problem)
    used = (x * problem.scale[:, None]).sum(axis=0)
    room = (problem.capacity - used) > 1e-9
    has_room = (affordable & room[None, :]).any(axis=1)
    idle_idx = np.nonzero(idle)[0]
    fast = runnable[idle_idx].any(axis=1) & affordable[idle_idx].any(axis=1) & ~has_room[idle_idx]
    for j in idle_idx[fast].tolist():
        held[problem.job_ids[j]] = WaitReason.CAPACITY
    slow = idle_idx[~fast]
    if not len(slow):
        return held
    # rows that are full under x: used_r = sum_j member[r, j] * s_j * x[j, t_r]
    dev = x * problem.scale[:, None]
    used_rows = (rows.member * dev[:, rows.type_of].T).sum(axis=1) if rows.n_rows else np.zeros(0)
    full = (rows.bound - used_rows) <= 1e-9
    kind = np.array(rows.kind, dtype=object)
    strict = full & ((kind == "quota") | (kind == "cap")) if rows.n_rows else full
    for j in slow.tolist():
        jid = problem.job_ids[j]
        if not runnable[j].any():
            fits_any = bool((problem.allowed[j] & (problem.throughput[j] > 0)).any())
            raw = bool((problem.throughput[j] > 0).any())
            held[jid] = WaitReason.RULE if raw and not fits_any else WaitReason.NOT_RUNNABLE
            if fits_any:
                held[jid] = WaitReason.CAPACITY  # allowed, but bigger than any pool of its types
            continue
        if not affordable[j].any():
            held[jid] = WaitReason.BUDGET
            continue
        held[jid] = WaitReason.PRIORITY  # filled in below, all at once
    pending = [j for j in slow.tolist() if held[problem.job_ids[j]] is WaitReason.PRIORITY]
    if pending and rows.n_rows:
        idx = np.array(pending)
        # rows each pending job counts in, on a type it can afford, that are full
        hit = rows.member[:, idx].T & affordable[idx][:, rows.type_of]
        any_full = (hit & full[None, :]).any(axis=1).tolist()
        any_strict = (hit & strict[None, :]).any(axis=1).tolist()
        for j, f, q in zip(pending, any_full, any_strict, strict=True):
            if f:
                held[problem.job_ids[j]] = WaitReason.QUOTA if q else WaitReason.RULE
    return held


def finish(
    problem: AllocationProblem, x: FloatArray, rows: Rows, policy: str, objective: float, started: float
) -> Allocation:
    """Clean tiny values, attach held reasons and timing."""
    x = np.where(x > FEASIBILITY_TOLERANCE * 1e-3, x, 0.0)
    over = x.sum(axis=1)
    x = np.where(over[:, None] > 1.0, x / np.maximum(over, 1.0)[:, None], x)
    return Allocation(
        job_ids=problem.job_ids,
        types=problem.types,
        x=x,
        policy=policy,
        objective=float(objective),
        solve_seconds=time.perf_counter() - started,
        held=held_reasons(problem, x, rows),
    )


def normalized(problem: AllocationProblem, usable: BoolArray) -> FloatArray:
    """a[j, t] = tput[j, t] / (w_j * max_t' tput[j, t']) over usable types (0 elsewhere); w_j is the job's
    fair weight (hierarchical shares or its own weight, see core.problem)."""
    tput = np.where(usable, problem.throughput, 0.0)
    best = tput.max(axis=1) if problem.n_types else np.zeros(problem.n_jobs)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(
            best[:, None] > 0, tput / (problem.fair_weight * np.maximum(best, 1e-300))[:, None], 0.0
        )
    return np.asarray(a, dtype=np.float64)
