"""The restricted master LP of one water-filling stage, kept in one HiGHS model across the stage's
column-generation rounds (the notation and the method: _waterfill.py and _wf_stage.py).

Within a stage the ambiguous set only grows, so each round adds the new jobs' rows and columns to the
model and changes the R resource rows (their L coefficient K_r and bound - F_r, the fixed jobs'
aggregates); HiGHS then starts from the last round's basis (dual simplex) instead of from nothing. The
first round, and a round that adds more columns than the model holds, is solved from scratch (HiGHS's
interior point method with crossover above IPM_COLUMNS columns when the stage asks for it). HiGHS's
interior point method sometimes calls a master infeasible that is feasible within a hair of its 1e-7
primal tolerance; such a master (``max_primal_infeasibility`` under BORDERLINE_INFEASIBILITY) is
re-checked by simplex on a fresh copy from the crossover basis at RECHECK_TOLERANCE (``recheck``), and
where that is optimal its solution is used and its basis kept for the next round (docs/allocate.md,
sixteenth session: generational 10,000 seed 2 faster; nothing else moved on the seven families). Before a
master goes to the interior point method, _wf_overload._master_overload looks for a row its fixed jobs and
frozen ambiguous jobs overload at every level; found, the master is not solved and that row is its Farkas
ray (docs/allocate.md, twenty-third session: generational 10,000 seed 1, 4.5 -> 2.1 s CPU). A master
HiGHS calls infeasible without a Farkas ray (its presolve decided, and presolve leaves none) is solved
again with presolve off: a ray of zeros grew the stage's master to every unpinned job, and presolve also
called feasible masters infeasible (docs/allocate.md, twenty-fourth session).

Layout: column 0 is L, then the borrow columns b_r of quota rows, then one column per (job, usable type)
pair in the order the jobs joined; rows: the R resource rows, the pools, then per job its level row
(sum_t a x - L >= 0 active, >= ell frozen) and its time row (sum_t x <= 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import highspy._core as _highs
import numpy as np

from accelpool.core.allocation import BoolArray, FloatArray, IntArray
from accelpool.core.policies._wf_overload import _master_overload

if TYPE_CHECKING:
    from accelpool.core.policies._wf_stage import _Stage

IPM_COLUMNS = 800
"""Masters with more columns, solved from scratch, go to HiGHS's interior point method (with crossover):
on the later stages' degenerate LPs (many frozen level rows tight at once) it was 1.4-3.5x faster than
dual simplex at 2,000 x 8 (bench/bench_policies.py families). The whole_lp reference keeps HiGHS's
default."""

MASTER_COLUMNS = 40_000
"""A master solve counts its jobs in the work budget (_waterfill.WORK_PER_GROUP) times max(1, (columns /
MASTER_COLUMNS) ** 2) (work_of): the CPU a column costs HiGHS is about flat up to some 40,000-50,000
columns and then grows fast (issue 13's families at 10,000 and 50,000 x 8, tuning seed 0, interior-point
masters: 0.01-0.06 ms a column below 50,000 columns but for a few, 0.11-0.18 ms at 63,000-79,000, 0.71 ms
at 149,000: one 23,213-job master of generational 50,000 x 8 took 106 s of its 150 s), so a budget of jobs
alone let one large master cost what hundreds of small ones do. Counted, not timed, like the budget. Every
master of every family at 2,000 and 10,000 x 8 has fewer columns (at most 17,934): nothing there changes
(docs/allocate.md)."""


def work_of(jobs: int, columns: int) -> float:
    """What a master solve over ``jobs`` jobs and ``columns`` plan columns counts in the work budget."""
    return jobs * max(1.0, (columns / MASTER_COLUMNS) ** 2)


WARM_ADDED = 0.1
"""A round that adds more than this fraction of the model's columns is solved from scratch: dual simplex
from the last basis lost to the interior point method when a round added a quarter of the jobs
(restricted family, 2,000 x 8, seed 0: 1.15 s warm against 0.43 s from scratch), and won when it added a
few percent (bench_leases' lease-boundary problem: 0.07-0.10 s against 0.20 s)."""

BORDERLINE_INFEASIBILITY = 1e-5
"""An interior-point master HiGHS does not call optimal, with ``max_primal_infeasibility`` below this
after crossover, is re-checked (``recheck``): on the seven families at 2,000 and 10,000 jobs (seeds 1, 2)
such masters had either 1.2e-7 to 2.1e-7 (feasible at the 1e-7 level or not: all generational) or 0.103
and more (infeasible by every check); nothing in between (docs/allocate.md, fifteenth session)."""

RECHECK_TOLERANCE = 1e-6
"""The re-check's ``primal_feasibility_tolerance`` (HiGHS's default: 1e-7)."""

_MasterResult = tuple[bool, float, FloatArray, FloatArray, FloatArray]
"""ok, L, x (groups x types), row prices p (an infeasible master: its Farkas ray's row part), level duals y."""


class NoSolution(RuntimeError):
    """A stage LP without a solution (_wf_stage._stage, after a master's Farkas ray); ``price`` and
    ``ray_other``: the ray's row part, each sign with its negative entries dropped, for weak-duality tests
    at other levels (_wf_local's event search)."""

    def __init__(self, message: str, ray: FloatArray) -> None:
        super().__init__(message)
        self.price = np.maximum(ray, 0.0)
        self.ray_other = np.maximum(-ray, 0.0)


def recheck(h: _highs._Highs) -> _highs._Highs | None:
    """Re-solve ``h``'s model (after an interior-point solve HiGHS did not call optimal) as a fresh copy by
    simplex from ``h``'s crossover basis at ``primal_feasibility_tolerance`` RECHECK_TOLERANCE. Returns
    the copy where it is optimal, else None (``h`` itself is left as it was: its Farkas ray stands)."""
    basis = h.getBasis()
    if not basis.valid:
        return None
    copy = _highs._Highs()
    copy.setOptionValue("output_flag", False)
    copy.setOptionValue("threads", 1)
    copy.setOptionValue("solver", "simplex")
    copy.setOptionValue("primal_feasibility_tolerance", RECHECK_TOLERANCE)
    copy.passModel(h.getLp())
    copy.setBasis(basis)
    copy.run()
    return copy if copy.getModelStatus() == _highs.HighsModelStatus.kOptimal else None


def _dual_ray(h: _highs._Highs, rr: int) -> FloatArray | None:
    """The row part (the first ``rr`` rows) of an infeasible model's Farkas ray, or None where HiGHS has none."""
    get_ray = getattr(h, "getDualRay", None)  # in highspy's binding, not in its type stubs
    if get_ray is None:
        return None
    _, has_ray, values = get_ray()
    return np.asarray(values, dtype=np.float64)[:rr] if has_ray else None


class Master:
    """One stage's restricted master (the stage's data: a _wf_stage._Stage)."""

    def __init__(self, stage: _Stage, active: BoolArray, ell: FloatArray) -> None:
        self.stage = stage
        self.active = active.copy()
        self.ell = ell.copy()
        ng, tt = stage.a.shape
        self.ng, self.tt = ng, tt
        rows = stage.rows
        self.rr = rows.n_rows
        self.npool = len(rows.pool_bound)
        self.borrow = np.nonzero(rows.pool_of >= 0)[0]
        self.nb = len(self.borrow)
        self.jobs = np.zeros(0, dtype=np.int64)  # groups in the model, in the order they joined
        self.pair_j = np.zeros(0, dtype=np.int64)
        self.pair_t = np.zeros(0, dtype=np.int64)
        self.level_row = np.full(ng, -1, dtype=np.int64)
        self.h: _highs._Highs | None = None
        self.solved_once = False

    def _new_model(self) -> _highs._Highs:
        stage, rows = self.stage, self.stage.rows
        h = _highs._Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        lp = _highs.HighsLp()
        ncol = 1 + self.nb
        nrow = self.rr + self.npool
        lp.num_col_ = ncol
        lp.num_row_ = nrow
        cost = np.zeros(ncol)
        cost[0] = -1.0
        lp.col_cost_ = cost
        lp.col_lower_ = np.zeros(ncol)
        lp.col_upper_ = np.concatenate(
            [[float(stage.ceiling[self.active].max(initial=0.0))], np.full(self.nb, np.inf)]
        )
        lp.row_lower_ = np.full(nrow, -np.inf)
        lp.row_upper_ = np.concatenate([rows.bound, rows.pool_bound])
        # column 0 (L): no entries yet (K_r set each round); borrow column i: -1 in its row, +1 in its pool
        starts = [0, 0]
        index: list[int] = []
        value: list[float] = []
        for r in self.borrow.tolist():
            index += [r, self.rr + int(rows.pool_of[r])]
            value += [-1.0, 1.0]
            starts.append(len(index))
        lp.a_matrix_.format_ = _highs.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.asarray(starts, dtype=np.int32)
        lp.a_matrix_.index_ = np.asarray(index, dtype=np.int32)
        lp.a_matrix_.value_ = np.asarray(value, dtype=np.float64)
        lp.a_matrix_.num_col_ = ncol
        lp.a_matrix_.num_row_ = nrow
        h.passModel(lp)
        return h

    def _add(self, new: IntArray) -> int:
        """Add groups ``new`` (their level and time rows, then their pair columns). Returns columns added."""
        assert self.h is not None
        stage = self.stage
        h = self.h
        first_row = self.rr + self.npool + 2 * len(self.jobs)
        nn = len(new)
        self.level_row[new] = first_row + 2 * np.arange(nn)
        act = self.active[new]
        # rows: level (entry -1 on L for active jobs; lower bound 0 or ell), time (no entries yet)
        lo = np.empty(2 * nn)
        hi = np.empty(2 * nn)
        lo[0::2] = np.where(act, 0.0, self.ell[new])
        hi[0::2] = np.inf
        lo[1::2] = -np.inf
        hi[1::2] = 1.0
        counts = np.zeros(2 * nn, dtype=np.int64)
        counts[0::2] = act.astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
        nz = int(act.sum())
        h.addRows(2 * nn, lo, hi, nz, starts, np.zeros(nz, dtype=np.int32), np.full(nz, -1.0))
        # columns: one per usable pair, entries in the level row, the time row and the resource rows
        pj_local, pt = np.nonzero(stage.a[new] > 0)
        pj = new[pj_local]
        k = len(pj)
        if k:
            lrow = self.level_row[pj]
            in_row = stage.member[:, pj] & (stage.onehot[:, pt] > 0)
            rrow, rpair = np.nonzero(in_row)
            col = np.concatenate([np.arange(k), np.arange(k), rpair])
            row = np.concatenate([lrow, lrow + 1, rrow])
            val = np.concatenate([stage.a[pj, pt], np.ones(k), stage.size[pj[rpair]]])
            order = np.lexsort((row, col))
            col, row, val = col[order], row[order], val[order]
            cstart = np.searchsorted(col, np.arange(k)).astype(np.int32)
            h.addCols(
                k,
                np.zeros(k),
                np.zeros(k),
                np.ones(k),
                len(val),
                cstart,
                row.astype(np.int32),
                val.astype(np.float64),
            )
        self.jobs = np.concatenate([self.jobs, new])
        self.pair_j = np.concatenate([self.pair_j, pj])
        self.pair_t = np.concatenate([self.pair_t, pt])
        return k

    def solve(self, amb: BoolArray, u: IntArray, v: IntArray) -> _MasterResult:
        """The master with ambiguous jobs ``amb`` (a superset of the last call's) and fixed segments (u, v)."""
        from accelpool.core.policies._wf_stage import OutOfWork, _aggregates, _fixed_x

        stage = self.stage
        ng, tt, rr = self.ng, self.tt, self.rr
        if self.h is None:
            self.h = self._new_model()
        in_model = np.zeros(ng, dtype=bool)
        in_model[self.jobs] = True
        new = np.nonzero(amb & ~in_model)[0]
        old_cols = len(self.pair_j)
        added = self._add(new) if len(new) else 0
        work = work_of(len(self.jobs), len(self.pair_j))
        if stage.work + work > stage.work_limit:
            raise OutOfWork  # counted before the solve: a master that would overdraw the budget is not solved
        h = self.h
        kk, ffix = _aggregates(stage, self.active, self.ell, amb, u, v)
        for r in range(rr):
            h.changeCoeff(r, 0, float(kk[r]))
            h.changeRowBounds(r, -np.inf, float(stage.rows.bound[r] - ffix[r]))
        ncol = 1 + self.nb + len(self.pair_j)
        fresh = not self.solved_once or added > WARM_ADDED * old_cols
        ipm = stage.ipm and fresh and ncol > IPM_COLUMNS
        overload = _master_overload(stage, self.active, self.ell, amb, kk, ffix) if ipm else None
        if overload is not None:
            # infeasible, proven without HiGHS, whose interior point method took 0.2-0.8 s to say so on
            # masters of 1,600-2,100 jobs and its dual ray as long again (a warm or small master costs
            # HiGHS less than the check's ~0.1 ms); the next round starts afresh
            self.solved_once = False
            return False, 0.0, np.zeros((ng, tt)), overload, np.zeros(ng)
        h.setOptionValue("solver", "ipm" if ipm else "simplex")
        h.run()
        stage.work += work
        self.solved_once = True
        status = h.getModelStatus()
        solved = h
        if (
            ipm
            and status != _highs.HighsModelStatus.kOptimal
            and h.getInfo().max_primal_infeasibility < BORDERLINE_INFEASIBILITY
        ):
            again = recheck(h)
            if again is not None:
                solved, status = again, _highs.HighsModelStatus.kOptimal
                h.setBasis(again.getBasis())  # the next round starts from the re-check's vertex
        ray: FloatArray | None = None
        if status == _highs.HighsModelStatus.kInfeasible:
            ray = _dual_ray(h, rr)
            if ray is None:
                # called infeasible by presolve, which leaves no ray (and sometimes wrongly: generational
                # 2,000 x 8, seed 4, a master of 92 jobs feasible at L = 1.30): solved again without it
                h.setOptionValue("presolve", "off")
                h.run()
                h.setOptionValue("presolve", "choose")
                solved, status = h, h.getModelStatus()
                if status == _highs.HighsModelStatus.kInfeasible:
                    ray = _dual_ray(h, rr)
        if status != _highs.HighsModelStatus.kOptimal:
            ray = ray if ray is not None else np.zeros(rr)
            # the next round starts afresh (a basis left by a failed solve is no help)
            self.solved_once = False
            return False, 0.0, np.zeros((ng, tt)), ray, np.zeros(ng)
        sol = solved.getSolution()
        col = np.asarray(sol.col_value, dtype=np.float64)
        dual = np.asarray(sol.row_dual, dtype=np.float64)
        level = float(col[0])
        x = np.zeros((ng, tt))
        x[self.pair_j, self.pair_t] = np.clip(col[1 + self.nb :], 0.0, 1.0)
        _fixed_x(stage, self.active, self.ell, amb, u, v, level, x)
        price = np.maximum(-dual[:rr], 0.0)
        y = np.zeros(ng)
        y[self.jobs] = np.maximum(dual[self.level_row[self.jobs]], 0.0)
        return True, level, x, price, y
