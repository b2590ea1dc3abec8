"""Program rules as resource rows (capacity, public reserve, tenant and program caps, quotas with
borrowing), budgets as usable types, idle quota lent to the pool. See _seam.py for the notation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelpool.core.allocation import (
    AllocationProblem,
    BoolArray,
    FloatArray,
    IntArray,
)

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


def normalized(problem: AllocationProblem, usable: BoolArray) -> FloatArray:
    """a[j, t] = tput[j, t] / (w_j * max_t' tput[j, t']) over usable types (0 elsewhere); w_j is the job's
    fair weight (hierarchical shares or its own weight, see core.problem)."""
    tput = np.where(usable, problem.throughput, 0.0)
    best = tput.max(axis=1) if problem.n_types else np.zeros(problem.n_jobs)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(best[:, None] > 0, tput / (problem.fair_weight * np.maximum(best, 1e-300))[:, None], 0.0)
    return np.asarray(a, dtype=np.float64)
