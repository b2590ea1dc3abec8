"""The greedy ledger: devices left per row as jobs are placed one by one; spare capacity filled."""

from __future__ import annotations

import numpy as np

from accelpool.core.allocation import (
    FEASIBILITY_TOLERANCE,
    AllocationProblem,
    BoolArray,
    FloatArray,
)
from accelpool.core.policies._rules import Rows, lend_idle_quota


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
            # the classes: equal columns of member, compared as packed bytes (np.unique over axis 0 of the
            # bool matrix is an order of magnitude slower; the round builds a Ledger whenever a rule binds)
            packed = np.ascontiguousarray(np.packbits(rows.member.T, axis=1))
            keys = packed.view(np.dtype((np.void, packed.shape[1]))).reshape(-1)
            _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            self.klass: list[int] = inverse.reshape(-1).tolist()
            reps = first.tolist()
        else:
            self.klass, reps = [0] * n, [0]
        member = rows.member
        cover = rows.cover(tt)
        self._rows: list[list[list[int]]] = [
            [[r for r in np.nonzero(cover[:, t])[0].tolist() if n and member[r, rep]] for t in range(tt)]
            for rep in reps
        ]
        self._capacity_row: list[int] = [-1] * tt
        for r, k in enumerate(rows.kind):
            if k == "capacity":
                self._capacity_row[int(rows.type_of[r])] = r

    def capacity_only(self) -> list[int] | None:
        """Each type's capacity row when every job counts on every type in that row alone (no rule row, no
        pool: ``room`` is the capacity row's bound less its use, ``add`` adds to it); else None."""
        cap = self._capacity_row
        if any(r < 0 or self.pool_of[r] >= 0 for r in cap):
            return None
        if any(rs != [cap[t]] for per in self._rows for t, rs in enumerate(per)):
            return None
        return list(cap)

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


def fill_spare(
    problem: AllocationProblem, usable: BoolArray, rows: Rows, x: FloatArray, order: FloatArray
) -> FloatArray:
    """Give capacity no one uses to jobs with time to spare (best ``order`` first), within every rule.

    Two passes. First under the rows as they are, so a tenant's jobs fill its own quota reservation before
    anyone borrows it (a policy that gives a job nothing, min-cost for one, left an owner's reservation
    idle and the second pass lent it away: the owner's job waited for "capacity" with its quota held by
    another tenant). Then with each reservation cut to what its owners use (see lend_idle_quota), so idle
    quota is lent. Afterwards no type keeps spare room (under the rules) while a job usable on it has
    sum_t x < 1.
    """
    x = x.copy()
    if np.any(rows.pool_of >= 0):
        x = _fill(problem, usable, rows, x, order)
    return _fill(problem, usable, lend_idle_quota(problem, rows, x), x, order)


def _fill(
    problem: AllocationProblem, usable: BoolArray, rows: Rows, x: FloatArray, order: FloatArray
) -> FloatArray:
    """fill_spare's greedy pass under ``rows``, in place on ``x`` (returned)."""
    slack_arr = 1.0 - x.sum(axis=1)
    wanting = usable & (slack_arr[:, None] > 1e-9)
    if not wanting.any():
        return x
    ledger = Ledger(problem, rows)
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
    on = rows.member & rows.cover(tt)[:, best]
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
