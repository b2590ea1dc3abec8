"""max-min-fairness: heterogeneity-aware weighted max-min of normalized throughput, then water-filling.

Notation (see core/allocation.py and _seam.py):

    a[j,t] = s_j * tput[j,t] / (w_j * max_{t' usable} tput[j,t'])   normalized speed per device (0 if not usable)
    level_j = sum_t a[j,t] x[j,t]        = s_j * eff_j / (w_j * max_t tput[j,t])

Levels count devices (s_j = devices the job asks for), as Gavel's max-min fairness does and as the
agnostic fair-share does: a job on 4 devices reaches a given level with a quarter of the wall time a job
on 1 device needs, so both are entitled to the same device-time. The heterogeneity-aware and -agnostic
policies then differ only in whether they see speeds. (Per-job levels, without s_j, gave gang jobs s_j
times the devices; on Gavel's b436b2 trace they gave 89,599 s average completion time against 79,377 s
per device: docs/simulator.md.)

    stage 1:  maximize L  s.t.  level_j >= L for every job, sum_t x[j,t] <= 1, every rule row and pool
    then water-filling (see _waterfill.py): freeze the bottleneck jobs at L, raise the rest, repeat;
    finally give any capacity still idle to jobs with wall time to spare (Pareto efficiency).

In the issue's terms (normalized throughput eff_j / (w_j * max_t tput[j,t])), the per-device level is the
normalized throughput under an *effective weight* w_j / s_j in wall-time terms: level_j =
eff_j / ((w_j / s_j) * max_t tput[j,t]); equal levels give every job device-time in proportion to w_j.

``objective`` is reported as the issue defines it: the minimum normalized throughput
min_j eff_j / (w_j * max_t tput[j,t]) over jobs that can run (at most 1 / w_j). The quantity the LP
maximizes is the stage-1 level L = min_j level_j (``stage_level``; ``exact_level`` is its plain-LP optimum).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem, WarmHint
from accelpool.core.policies._seam import (
    Rows,
    build_rows,
    fill_spare,
    finish,
    lp_model,
    normalized,
    uncontended,
    usable_mask,
)
from accelpool.core.policies._waterfill import max_min_waterfill_warm
from accelpool.core.policies._wf_warm import WarmRecord, hint_stages, row_keys, warm_hint

NAME = "max-min-fairness"


LEVEL_TOLERANCE = 0.005
"""Default ``eps`` of max_min_fairness: a ceiling-search probe counts as fitting when it reaches its
ceiling within this fraction, so jobs pinned at ceilings may end up to eps above the level the others
keep; every stage level is still its LP's optimum (see _waterfill.py, Tolerance). Chosen on the tuning
seed 0 (docs/allocate.md)."""


def max_min_fairness(problem: AllocationProblem, *, eps: float = LEVEL_TOLERANCE) -> Allocation:
    """Weighted max-min fairness of normalized throughput with water-filling (fast column generation).

    ``eps``: the ceiling searches' tolerance (LEVEL_TOLERANCE; 0: exact, as ``max_min_fairness_plain``);
    stage levels are LP optima either way, and the allocation is feasible and Pareto-filled.
    """
    return _allocate(problem, whole_lp=False, eps=eps)


def max_min_fairness_plain(problem: AllocationProblem) -> Allocation:
    """The same allocation with every water-filling stage solved by plain HiGHS on the whole LP.

    The reference bench/bench_policies.py and the CI guard time against: same stages, same answer.
    """
    return _allocate(problem, whole_lp=True)


def _allocate(problem: AllocationProblem, *, whole_lp: bool, eps: float = 0.0) -> Allocation:
    started = time.perf_counter()
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    a = _level_coefficients(problem, usable)
    quick = uncontended(problem, usable, rows, a)
    warm: tuple[float, ...] = ()
    hint: WarmHint | None = None
    if quick is not None:
        x = quick
    else:
        keys = row_keys(problem, rows)
        record = WarmRecord()
        x, _, warm = max_min_waterfill_warm(
            a,
            problem.scale,
            rows,
            usable,
            whole_lp=whole_lp,
            warm_start=problem.warm_start,
            eps=eps,
            hint=hint_stages(problem.warm_hint, keys),
            record=record,
            # prices only, not the last round's first-stage plans: starting stage 1 from them picked
            # another of its optima, and on Gavel's b436b2 trace at 8:8:8 the simulator's aware average
            # JCT went 864,351 -> 873,075 s (0.9% above Gavel's 865,434; docs/simulator.md; 80b8b63)
        )
        hint = warm_hint(keys, record) if record.entries and not whole_lp else None
        x = fill_spare(problem, usable, rows, x, a)
        if _off_kept_type(problem.keep_type, x):
            x = _keep_running(problem, usable, rows, x, a)
    runnable = usable.any(axis=1)
    norm = normalized(problem, usable)
    objective = float((norm * x).sum(axis=1)[runnable].min()) if runnable.any() else 0.0
    alloc = finish(problem, x, rows, NAME, objective, started)
    return replace(alloc, warm_start=warm, warm_hint=hint) if warm or hint else alloc


def _off_kept_type(keep: np.ndarray, x: np.ndarray) -> bool:
    """Whether some running job has time on a type other than the one it holds (``keep``: the type per
    job, -1 when not running). When none has, the tie-break below has nothing to keep: skipped (it costs a
    whole LP, about 0.4 s at 10,000 jobs x 4 types)."""
    if not np.size(keep):
        return False
    run = np.nonzero(keep >= 0)[0]
    if not len(run):
        return False
    off = x[run].sum(axis=1) - x[run, keep[run]]
    return bool((off > 1e-9).any())


def _keep_running(
    problem: AllocationProblem, usable: np.ndarray, rows: Rows, x: np.ndarray, a: np.ndarray
) -> np.ndarray:
    """Among the allocations that give every job at least its level in ``x``, one that keeps the most
    running devices on the types they hold (``problem.keep_type``): a tie-break on the optimal face.

    maximize  sum_j S_j x[j, keep_j]  s.t.  sum_t a[j,t] x'[j,t] >= level_j (x itself is feasible), the
    shared rows of _seam. Water-filling's optimal allocations are seldom unique, and which one the LP
    returns depends on its start (a warm basis, the order of columns); under leases a running job moved
    to another type pays a restart. Falls back to ``x`` when HiGHS does not report an optimum.
    """
    keep = problem.keep_type
    level = (a * x).sum(axis=1)
    runnable = np.nonzero(usable.any(axis=1))[0]
    model = lp_model(problem, usable, rows)
    lo = level[runnable] * (1 - 1e-7) - 1e-12
    local = np.full(problem.n_jobs, -1)
    local[runnable] = np.arange(len(runnable))
    pairs = np.arange(model.n_x)
    model.add_rows(local[model.jobs], pairs, a[model.jobs, model.types], lo, np.full(len(runnable), np.inf))
    cost = np.zeros(model.n_cols)
    held = keep[model.jobs] == model.types
    cost[pairs[held]] = -problem.scale[model.jobs[held]]
    res = model.solve(cost, start=x)  # x is feasible: a few primal iterations from its crossover
    if not res.ok:
        return x
    return model.x_matrix(res.x, problem.n_jobs, problem.n_types)


def stage_level(problem: AllocationProblem, x: np.ndarray) -> float:
    """The per-device level L = min_j level_j of an allocation over jobs that can run (what stage 1 maximizes)."""
    usable = usable_mask(problem)
    runnable = usable.any(axis=1)
    if not runnable.any():
        return 0.0
    return float((_level_coefficients(problem, usable) * x).sum(axis=1)[runnable].min())


def _level_coefficients(problem: AllocationProblem, usable: np.ndarray) -> np.ndarray:
    """Levels per device (s_j * normalized speed; the definition above), or per job when the problem says
    so (``per_device_levels=False``, from ``RoundConfig``; experiments only)."""
    a = normalized(problem, usable)
    if problem.per_device_levels:
        a = a * problem.scale[:, None]
    return np.asarray(a, dtype=np.float64)


def exact_level(problem: AllocationProblem) -> float:
    """The stage-1 optimum L by plain HiGHS on the whole LP (the reference for tests and benchmarks).

    maximize L  s.t.  sum_t a[j,t] x[j,t] - L >= 0 (every runnable j), the shared rows of _seam.
    """
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    a = _level_coefficients(problem, usable)
    model = lp_model(problem, usable, rows)
    col_l = model.add_cols(1)
    runnable = np.nonzero(usable.any(axis=1))[0]
    if len(runnable) == 0:
        return 0.0
    local = np.full(problem.n_jobs, -1)
    local[runnable] = np.arange(len(runnable))
    pairs = np.arange(model.n_x)
    model.add_rows(
        np.concatenate([local[model.jobs], np.arange(len(runnable))]),
        np.concatenate([pairs, np.full(len(runnable), col_l)]),
        np.concatenate([a[model.jobs, model.types], -np.ones(len(runnable))]),
        np.zeros(len(runnable)),
        np.full(len(runnable), np.inf),
    )
    cost = np.zeros(model.n_cols)
    cost[col_l] = -1.0
    res = model.solve(cost)
    return float(res.x[col_l]) if res.ok else float("nan")
