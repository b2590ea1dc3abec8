"""The one HiGHS entry point (solve_lp) and the LP model every LP policy builds on (lp_model)."""

from __future__ import annotations

from dataclasses import dataclass

import highspy._core as _highs
import numpy as np

from accelpool.core.allocation import (
    AllocationProblem,
    BoolArray,
    FloatArray,
    IntArray,
)
from accelpool.core.policies._rules import Rows


@dataclass(frozen=True, eq=False)
class Csc:
    """A sparse matrix by columns, as HiGHS takes it: column c's entries are ``index[start[c]:start[c+1]]``
    (their rows, ascending) and ``value[...]``. Built by ``csc`` (numpy only: scipy.sparse, which this
    replaced, took ~0.2 s to import in the scheduler's first step that solved such an LP)."""

    n_rows: int
    n_cols: int
    start: IntArray
    index: IntArray
    value: FloatArray

    def __matmul__(self, x: FloatArray) -> FloatArray:
        """A x (each row's entries summed column by column, as scipy's product did)."""
        col = np.repeat(np.arange(self.n_cols), np.diff(self.start))
        return np.asarray(
            np.bincount(self.index, weights=self.value * x[col], minlength=self.n_rows), dtype=np.float64
        )


def csc(rows: IntArray, cols: IntArray, vals: FloatArray, n_rows: int, n_cols: int) -> Csc:
    """The matrix with entries (rows[i], cols[i], vals[i]): entries at the same place summed (zeros kept,
    given or summed), as scipy's ``coo_matrix(...).tocsc()`` gave it (tests/core/test_lp_csc.py)."""
    order = np.lexsort((rows, cols))
    r, c, v = rows[order], cols[order], vals[order].astype(np.float64)
    if len(r) > 1:
        first = np.ones(len(r), dtype=bool)
        first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
        if not first.all():
            at = np.nonzero(first)[0]
            r, c, v = r[at], c[at], np.add.reduceat(v, at)
    start = np.zeros(n_cols + 1, dtype=np.int64)
    np.cumsum(np.bincount(c, minlength=n_cols), out=start[1:])
    return Csc(n_rows, n_cols, start, r.astype(np.int64), v)


@dataclass(frozen=True, eq=False)
class LpResult:
    ok: bool
    x: FloatArray
    row_dual: FloatArray
    objective: float
    ray: FloatArray | None = None
    """HiGHS's dual ray (a Farkas proof over the rows) when the LP is infeasible and HiGHS has one."""


def solve_lp(
    cost: FloatArray,
    a: Csc,
    row_lo: FloatArray,
    row_hi: FloatArray,
    col_lo: FloatArray,
    col_hi: FloatArray,
    *,
    ipm: bool = False,
    start: FloatArray | None = None,
) -> LpResult:
    """minimize cost . x  s.t. row_lo <= A x <= row_hi, col_lo <= x <= col_hi (HiGHS dual simplex).

    ``row_dual[i]`` is d(objective)/d(bound of row i): a binding <= row in a minimization has it <= 0.
    ``ipm``: HiGHS's interior point method with crossover instead (a vertex solution all the same).
    ``start``: a point (every column; best a feasible one): HiGHS's crossover turns it into a basis and
    primal simplex goes on from there (a start near the optimum needs few iterations: _keep_running's tie-break at
    10,000 x 4, 4-27 iterations against ~9,400 from nothing; docs/allocate.md); a crossover that fails
    leaves the cold solve.
    """
    h = _highs._Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    if ipm:
        h.setOptionValue("solver", "ipm")
    lp = _highs.HighsLp()
    lp.num_col_ = len(cost)
    lp.num_row_ = a.n_rows
    lp.col_cost_ = np.ascontiguousarray(cost, dtype=np.float64)
    lp.col_lower_ = np.ascontiguousarray(col_lo, dtype=np.float64)
    lp.col_upper_ = np.ascontiguousarray(col_hi, dtype=np.float64)
    lp.row_lower_ = np.ascontiguousarray(row_lo, dtype=np.float64)
    lp.row_upper_ = np.ascontiguousarray(row_hi, dtype=np.float64)
    lp.a_matrix_.format_ = _highs.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.start.astype(np.int32)
    lp.a_matrix_.index_ = a.index.astype(np.int32)
    lp.a_matrix_.value_ = a.value.astype(np.float64)
    lp.a_matrix_.num_col_ = len(cost)
    lp.a_matrix_.num_row_ = a.n_rows
    h.passModel(lp)
    if start is not None and not ipm:
        point = _highs.HighsSolution()
        point.col_value = np.ascontiguousarray(start, dtype=np.float64)
        point.value_valid = True
        if h.crossover(point) == _highs.HighsStatus.kOk:
            h.setOptionValue("simplex_strategy", 4)  # primal: the crossover's basis is primal feasible
    h.run()
    status = h.getModelStatus()
    if status != _highs.HighsModelStatus.kOptimal:
        ray = None
        if status == _highs.HighsModelStatus.kInfeasible:
            get_ray = getattr(h, "getDualRay", None)  # in highspy's binding, not in its type stubs
            if get_ray is not None:
                _, has_ray, values = get_ray()
                ray = np.asarray(values, dtype=np.float64) if has_ray else None
        return LpResult(False, np.zeros(len(cost)), np.zeros(a.n_rows), float("nan"), ray)
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
    borrow_rows: IntArray | None = None
    """The row of each borrow column (the columns after the x pairs, in order; lp_model sets them)."""

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

    def matrix(self) -> Csc:
        return csc(
            np.concatenate(self.coo_r),
            np.concatenate(self.coo_c),
            np.concatenate(self.coo_v),
            self.n_rows,
            self.n_cols,
        )

    def point(self, start: FloatArray, a: Csc | None = None) -> FloatArray:
        """Every column's value for an allocation ``start`` (jobs x types): its pairs, each borrow column at
        what its row uses beyond its bound, every column a policy added at 0. ``a``: self.matrix()."""
        a = self.matrix() if a is None else a
        point = np.zeros(self.n_cols)
        point[: self.n_x] = start[self.jobs, self.types]
        if self.borrow_rows is not None and len(self.borrow_rows):
            use = (a @ point)[self.borrow_rows]  # the columns after the x pairs are still 0 here
            hi = np.concatenate(self.row_hi)[self.borrow_rows]
            point[self.n_x : self.n_x + len(use)] = np.maximum(use - hi, 0.0)
        return point

    def solve(self, cost: FloatArray, start: FloatArray | None = None) -> LpResult:
        """``start``: an allocation (jobs x types) to start from (solve_lp's ``start``, at ``point``). A
        start that breaks a row (a pool, or the policy's own rows with its columns at 0) still gives the
        optimum, after a primal phase 1 from the crossover's basis."""
        a = self.matrix()
        return solve_lp(
            cost,
            a,
            np.concatenate(self.row_lo),
            np.concatenate(self.row_hi),
            np.concatenate(self.col_lo),
            np.concatenate(self.col_hi),
            start=None if start is None else self.point(start, a),
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
    # rule rows: pair p counts in row r when member[r, job_p] and row r counts type_p (its type_of, or
    # every column of its span for a row over a type's sites)
    rr, cc, vv = [], [], []
    cover = rows.span
    for r in range(rows.n_rows):
        on = (types == rows.type_of[r]) if cover is None else cover[r, types]
        pairs = np.nonzero(on & rows.member[r, jobs])[0]
        rr.append(np.full(len(pairs), r))
        cc.append(pairs)
        vv.append(problem.scale[jobs[pairs]])
    borrowing = np.nonzero(rows.pool_of >= 0)[0]
    first_b = model.add_cols(len(borrowing))
    rr.append(borrowing)
    cc.append(first_b + np.arange(len(borrowing)))
    vv.append(-np.ones(len(borrowing)))
    model.borrow_rows = model.n_rows + borrowing
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
