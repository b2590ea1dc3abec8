"""Program rules as resource rows (capacity, public reserve, tenant and program caps, quotas with
borrowing), budgets as usable types, idle quota lent to the pool. See _seam.py for the notation.

A type held at several sites is a group of per-site columns (``AllocationProblem.column_group``, built by
core.sites.site_columns): its capacity rows stay one per column (each site's devices), and its rule rows
(reserve, caps, quota) are one per group, spanning the group's columns (``Rows.span``):

    use_r = sum_{j in M_r} sum_{c in span_r} s_j * x[j, c]
"""

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
    span: BoolArray | None = None
    """``span[r, c]``: row r counts column c (rows over a group of per-site columns); None: each row counts
    its ``type_of`` column only. ``type_of[r]`` is always the first column row r counts."""

    @property
    def n_rows(self) -> int:
        return len(self.type_of)

    def reach(self) -> FloatArray:
        """The most devices each row can hold: its bound, plus its pool's whole bound for a quota row (what
        it may borrow; a relaxation where several rows share one pool)."""
        pool = np.append(self.pool_bound, 0.0)
        out: FloatArray = self.bound + np.where(self.pool_of >= 0, pool[self.pool_of], 0.0)
        return out

    def cover(self, n_types: int) -> BoolArray:
        """cover[r, c]: row r counts column c (``span``, or ``type_of`` alone)."""
        if self.span is not None:
            return self.span
        out: BoolArray = self.type_of[:, None] == np.arange(n_types)[None, :]
        return out

    def effective_price(self, price: FloatArray, n_types: int) -> FloatArray:
        """pi[j, t] = sum of the prices of the rows job j counts in on type t (per device)."""
        n = self.member.shape[1]
        pi = np.zeros((n, n_types))
        cover = self.cover(n_types)
        for r in np.nonzero(price > 0)[0].tolist():
            pi[:, cover[r]] += price[r] * self.member[r][:, None]
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
    """Capacity, public-reserve, tenant-cap and quota rows for ``problem`` (see the module notation).

    Capacity rows: one per column. Rule rows: one per column group (the columns of one type at its sites),
    spanning its columns, with the type's bound (read at the group's first column) against the group's
    devices; with every column its own group (the default) this is one row per type, as before."""
    n, tt = problem.n_jobs, problem.n_types
    cap = problem.capacity
    groups = problem.groups() if problem.grouped() else [np.array([t], dtype=np.int64) for t in range(tt)]
    type_of: list[int] = []
    member: list[BoolArray] = []
    bound: list[float] = []
    pool_of: list[int] = []
    kind: list[str] = []
    span: list[IntArray] = []
    everyone = np.ones(n, dtype=bool)

    def add(cols: IntArray, m: BoolArray, b: float, k: str, pool: int = -1) -> None:
        type_of.append(int(cols[0]))
        span.append(cols)
        member.append(m)
        bound.append(max(0.0, float(b)))
        pool_of.append(pool)
        kind.append(k)

    for t in range(tt):
        add(np.array([t], dtype=np.int64), everyone, cap[t], "capacity")
    first = [int(g[0]) for g in groups]
    gcap = [float(cap[g].sum()) for g in groups]
    private = ~problem.public
    for cols, t, c in zip(groups, first, gcap, strict=True):
        if problem.public_reserve[t] > 0 and private.any():
            add(cols, private, c - problem.public_reserve[t], "reserve")
    tenants = [problem.tenant_index == g for g in range(len(problem.tenant_ids))]
    for g, in_g in enumerate(tenants):
        for cols, t, c in zip(groups, first, gcap, strict=True):
            limit = problem.tenant_cap[g, t]
            if np.isfinite(limit) and limit < c and in_g.any():
                add(cols, in_g, limit, "cap")
    for k in range(problem.cap_limit.shape[0]):
        in_c = problem.cap_index == k
        if not in_c.any():
            continue
        for cols, t, c in zip(groups, first, gcap, strict=True):
            limit = problem.cap_limit[k, t]
            if np.isfinite(limit) and limit < c:
                add(cols, in_c, limit, "cap")
    pools: list[float] = []
    for cols, t, c in zip(groups, first, gcap, strict=True):
        quota = problem.quota[:, t] if problem.quota.size else np.zeros(0)
        if not np.any(quota > 0):
            continue
        can = usable[:, cols].any(axis=1)
        demand = np.array([(problem.scale * (can & m)).sum() for m in tenants])
        reserved = np.minimum(quota, demand)
        pool = float(c - reserved.sum())
        if pool < 0:
            # oversubscribed: scale down (floored to 1e-6 devices), the remainder to the largest
            # reservation (at most its own), and no pool: a round-off pool of ~1e-6 devices would
            # make stages end at L ~ 1e-8 on it
            scaled = np.floor(reserved * c / reserved.sum() * 1e6) / 1e6
            k = int(np.argmax(reserved))
            scaled[k] = min(float(reserved[k]), c - float(np.delete(scaled, k).sum()))
            reserved, pool = scaled, 0.0
        q = len(pools)
        pools.append(pool)
        for g, in_g in enumerate(tenants):
            if in_g.any():
                add(cols, in_g, reserved[g], "quota", q)
    cover: BoolArray | None = None
    if any(len(cols) > 1 for cols in span):
        cover = np.zeros((len(type_of), tt), dtype=bool)
        for r, cols in enumerate(span):
            cover[r, cols] = True
    return Rows(
        type_of=np.array(type_of, dtype=np.int64),
        member=np.array(member, dtype=bool).reshape(len(type_of), n),
        bound=np.array(bound, dtype=np.float64),
        pool_of=np.array(pool_of, dtype=np.int64),
        kind=tuple(kind),
        pool_bound=np.array(pools, dtype=np.float64),
        span=cover,
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
    cover = rows.cover(problem.n_types)
    use = np.array([load[rows.member[r]][:, cover[r]].sum() for r in quota.tolist()])
    bound = rows.bound.copy()
    cut = np.maximum(bound[quota] - use, 0.0)
    bound[quota] -= cut
    pool_bound = rows.pool_bound.copy()
    np.add.at(pool_bound, rows.pool_of[quota], cut)
    return Rows(rows.type_of, rows.member, bound, rows.pool_of, rows.kind, pool_bound, rows.span)


def normalized(problem: AllocationProblem, usable: BoolArray) -> FloatArray:
    """a[j, t] = tput[j, t] / (w_j * max_t' tput[j, t']) over usable types (0 elsewhere); w_j is the job's
    fair weight (hierarchical shares or its own weight, see core.problem)."""
    tput = np.where(usable, problem.throughput, 0.0)
    best = tput.max(axis=1) if problem.n_types else np.zeros(problem.n_jobs)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(best[:, None] > 0, tput / (problem.fair_weight * np.maximum(best, 1e-300))[:, None], 0.0)
    return np.asarray(a, dtype=np.float64)
