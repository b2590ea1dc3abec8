"""max-min-fairness: the full allocation, fast path against plain HiGHS, same problems, same run.

    python bench/bench_policies.py [--sizes 1000,2000,10000] [--families random,...,pinned]
                                   [--types 8] [--seeds 1,2] [--plain-limit 2000] [--exact-limit 50000]
                                   [--full-limit 2000] [--full-families ...] [--stages N]
                                   [--proxy-limit N]

Both sides of every ratio are the whole policy call (water-filling and the spare-capacity fill included):
``max_min_fairness`` (column generation over hull segments, sampled start prices) against
``max_min_fairness_plain`` (the same procedure with every LP solved whole by HiGHS). Problems come from
bench/problems.py: distinct rows, restricted allowed sets, weights, capacity at 25-75% of demand; the
default runs the seven families of issue 13's held-out table, the four whose stage 1 is a job's ceiling
and the three capacity-bound ones; the eighth, ``ruled`` (program rules: reserve, caps, quotas), runs
when named (``--families ruled``).

Columns: CPU seconds (process time, the fair measure on a shared machine) and wall seconds of each
side, ``x plain`` = plain CPU / fast CPU (above 1: the fast path is faster), ``level/opt`` = the
stage-1 level of the fast allocation over the exact LP optimum (``exact_level``, plain HiGHS, timed
in its own column; up to --exact-limit jobs, also where the plain run is skipped), ``low/plain`` =
the smallest ratio of the fast allocation's sorted per-device levels to the plain one's over the
lower half (quantiles 1%, 2%, ..., 50%; where the plain run is made), and feasibility. On these
families the stage-1 level is usually the smallest ceiling (a job with scale 1 and the largest
weight, capped by its own best type), so ``level/opt`` alone says little about the water-filling
above it; ``low/plain`` compares the whole lower half with the same procedure solved whole.
``s1/ceil`` = the exact stage-1 level over the smallest job ceiling (1: stage 1 is held by a job's own
ceiling; below 1: by capacity).

Every stage, not only stage 1 (where the plain run is made): ``all/plain`` = the smallest ratio of the
fast allocation's sorted per-device levels to the plain one's over *every* job (the worst relative gap,
not only the lower half); ``all/full`` = the same against the *full* water-filling, plain HiGHS with
the stage limit (MAX_STAGES, 12) lifted so that every level is a stage LP's optimum: the exact
lexicographic max-min allocation, up to --full-limit jobs (its CPU seconds in ``full s``; ``stages``:
how many distinct levels it has; by default not on ``generational``, whose full water-filling did not
finish in 300 s at 1,000 jobs: ``--full-families`` names the families to check). The plain run stops
at 12 stages and closes no types, while the fast path closes the types a rising job pays for at each
stage's prices (_waterfill._prune) and so gets further in as many stages: ``all/plain`` compares two
different truncations (a low value there can be plain's gap, not the fast path's), while
``all/full`` says how far the shipped allocation is from the exact one at every level.
``feasible`` checks the fast allocation: every row within capacity, every job's time at most 1
(``check_feasible``), and the plain ones (``plain NO`` / ``full NO`` when they are not).
``--proxy-limit N``: up to N jobs, two more columns, ``unl s`` and ``all/unl``: the same every-job ratio
against the fast path with neither stage limit nor work budget (``no_stop``), the proxy for ``all/full``
where plain HiGHS's full water-filling takes too long (5,000-10,000 jobs): it shares the fast path's
machinery, so it checks where the product stops, not the machinery itself.
``--stages N`` runs the fast and plain allocations with the stage limit set to N instead of the
product's 12 (a diagnosis: with N large, ``all/full`` checks the fast path's machinery at every level
apart from the limit). Plain runs are skipped above --plain-limit jobs (the output says so).
``--seeds``: the problems' seeds; the fast path was tuned on seed 0 (profiles of the four families at
2,000 x 8 and of bench_round's problem), so the default reports held-out seeds 1 and 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from accelpool.core.allocation import AllocationProblem, FloatArray, check_feasible  # noqa: E402
from accelpool.core.policies import _waterfill  # noqa: E402
from accelpool.core.policies._seam import usable_mask  # noqa: E402
from accelpool.core.policies.max_min_fairness import (  # noqa: E402
    _level_coefficients,
    exact_level,
    max_min_fairness,
    max_min_fairness_plain,
    stage_level,
)
from problems import FAMILIES, ceiling_gap, family_problem  # noqa: E402

T = TypeVar("T")


def sorted_levels(problem: AllocationProblem, x: FloatArray) -> FloatArray:
    """The per-device levels of ``x``, sorted, over the jobs that can run."""
    usable = usable_mask(problem)
    a = _level_coefficients(problem, usable)
    return np.sort((a * x).sum(axis=1)[usable.any(axis=1)])


def lower_half_ratio(problem: AllocationProblem, x: FloatArray, ref: FloatArray) -> float:
    """The smallest ratio of the sorted per-device levels of ``x`` to those of ``ref`` at the quantiles
    1%, 2%, ..., 50% (jobs that can run)."""
    ours, theirs = sorted_levels(problem, x), sorted_levels(problem, ref)
    at = np.minimum(len(ours) - 1, (np.arange(1, 51) / 100 * len(ours)).astype(int))
    return float((ours[at] / np.maximum(theirs[at], 1e-300)).min())


def every_job_ratio(problem: AllocationProblem, x: FloatArray, ref: FloatArray) -> float:
    """The smallest ratio of the sorted per-device levels of ``x`` to those of ``ref`` over every job
    that can run (1 - the worst relative gap; above 1 nowhere below: ``x`` is nowhere behind)."""
    ours, theirs = sorted_levels(problem, x), sorted_levels(problem, ref)
    return float((ours / np.maximum(theirs, 1e-300)).min()) if len(ours) else 1.0


@contextmanager
def stage_limit(stages: int) -> Iterator[None]:
    """The water-filling's stage limit (_waterfill.MAX_STAGES) set to ``stages`` for the block: the
    benchmark's full reference only; the product always runs with its own limit."""
    kept = _waterfill.MAX_STAGES
    _waterfill.MAX_STAGES = stages
    try:
        yield
    finally:
        _waterfill.MAX_STAGES = kept


@contextmanager
def no_stop() -> Iterator[None]:
    """Neither the stage limit nor the work budget (_waterfill.MAX_STAGES, WORK_PER_GROUP, WORK_FLOOR) for
    the block: the fast path run to the end of its water-filling, the every-level proxy where the full
    water-filling (plain HiGHS) takes too long. The benchmark's reference only."""
    kept = (_waterfill.MAX_STAGES, _waterfill.WORK_PER_GROUP, _waterfill.WORK_FLOOR)
    _waterfill.MAX_STAGES, _waterfill.WORK_PER_GROUP, _waterfill.WORK_FLOOR = 10**9, float("inf"), 10**18
    try:
        yield
    finally:
        _waterfill.MAX_STAGES, _waterfill.WORK_PER_GROUP, _waterfill.WORK_FLOOR = kept


def full_waterfill(problem: AllocationProblem) -> FloatArray:
    """The exact lexicographic max-min allocation: plain HiGHS, no stage limit."""
    with stage_limit(10**9):
        return max_min_fairness_plain(problem).x


def timed(fn: Callable[..., T], *args: object) -> tuple[T, float, float]:
    """Result, CPU seconds, wall seconds."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn(*args)
    return out, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", default="1000,2000,10000")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--types", type=int, default=8)
    ap.add_argument("--seeds", default="1,2", help="problem seeds (0 was used for tuning)")
    ap.add_argument("--plain-limit", type=int, default=2000)
    ap.add_argument("--exact-limit", type=int, default=50000, help="exact LP level check up to this size")
    ap.add_argument("--full-limit", type=int, default=2000, help="full water-filling check up to this size")
    ap.add_argument(
        "--full-families",
        default=",".join(f for f in FAMILIES if f != "generational"),
        help="families that get the full water-filling check (generational's takes minutes at 1,000)",
    )
    ap.add_argument(
        "--stages", type=int, default=0, help="stage limit of the fast and plain runs (0: the product's)"
    )
    ap.add_argument(
        "--proxy-limit",
        type=int,
        default=0,
        help="up to this size, also the every-level proxy (all/unl: the fast path without stage limit or "
        "work budget as reference; an extra column; 0: not run)",
    )
    args = ap.parse_args()
    limit = args.stages or _waterfill.MAX_STAGES
    print(
        f"max-min-fairness full allocation, fast vs plain HiGHS, {args.types} types, same run, {limit} stages"
    )
    print(
        f"{'family':>13} {'seed':>4} {'jobs':>6} {'fast cpu':>9} {'fast wall':>9} {'plain cpu':>9} {'plain wall':>10} "
        f"{'x plain':>8} {'exact s':>8} {'level/opt':>10} {'s1/ceil':>7} {'low/plain':>9} {'all/plain':>9} "
        f"{'full s':>7} {'all/full':>9} {'stages':>6} {'feasible':>8}"
        + (f" {'unl s':>7} {'all/unl':>8}" if args.proxy_limit else "")
    )
    cases = [
        (name, seed, n)
        for name in args.families.split(",")
        for seed in (int(s) for s in args.seeds.split(","))
        for n in (int(s) for s in args.sizes.split(","))
    ]
    worst: dict[str, tuple[float, str]] = {}

    def note(key: str, value: float, where: str) -> None:
        if key not in worst or value < worst[key][0]:
            worst[key] = (value, where)

    for name, seed, n in cases:
        where = f"{name} seed {seed} {n}"
        problem = family_problem(name, n, args.types, seed)
        with stage_limit(limit):
            alloc, f_cpu, f_wall = timed(max_min_fairness, problem)
        ok = "yes" if not check_feasible(problem, alloc) else "NO"
        level = stage_level(problem, alloc.x)
        if n <= args.exact_limit:
            exact, e_cpu, _ = timed(exact_level, problem)
            check = f"{e_cpu:8.2f} {level / exact:10.6f} {ceiling_gap(problem, exact):7.4f}"
            note("level/opt", level / exact, where)
        else:
            check = f"{'':>8} {'skipped':>10} {'':>7}"
        if n <= args.plain_limit:
            with stage_limit(limit):
                ref, p_cpu, p_wall = timed(max_min_fairness_plain, problem)
            if check_feasible(problem, ref):
                ok += ", plain NO"
            low = lower_half_ratio(problem, alloc.x, ref.x)
            every = every_job_ratio(problem, alloc.x, ref.x)
            note("all/plain", every, where)
            plain = f"{p_cpu:9.2f} {p_wall:10.2f} {p_cpu / f_cpu:8.2f} {check} {low:9.4f} {every:9.4f}"
        else:
            plain = f"{'skipped':>9} {'':>10} {'':>8} {check} {'':>9} {'':>9}"
        if n <= args.full_limit and name in args.full_families.split(","):
            full, u_cpu, _ = timed(full_waterfill, problem)
            if check_feasible(problem, replace(alloc, x=full)):
                ok += ", full NO"
            versus = every_job_ratio(problem, alloc.x, full)
            note("all/full", versus, where)
            stages = len(np.unique(np.round(sorted_levels(problem, full), 6)))
            plain += f" {u_cpu:7.2f} {versus:9.4f} {stages:6d}"
        else:
            plain += f" {'':>7} {'skipped':>9} {'':>6}"
        proxy = ""
        if args.proxy_limit and n <= args.proxy_limit:
            with no_stop():
                unl, n_cpu, _ = timed(max_min_fairness, problem)
            versus = every_job_ratio(problem, alloc.x, unl.x)
            note("all/unl", versus, where)
            proxy = f" {n_cpu:7.2f} {versus:8.4f}"
        print(f"{name:>13} {seed:>4} {n:>6} {f_cpu:9.2f} {f_wall:9.2f} {plain} {ok:>8}{proxy}", flush=True)
    print(
        f"(plain runs skipped above {args.plain_limit} jobs, exact LP checks above {args.exact_limit}, "
        f"full water-filling above {args.full_limit})"
    )
    targets = {
        "level/opt": ">= 0.99",
        "all/plain": "",
        "all/full": ">= 0.99 asked at every level",
        "all/unl": "(proxy of all/full)",
    }
    for key, (value, at) in worst.items():
        print(f"worst {key} {value:.6f} ({at}){'; the target: ' + targets[key] if targets[key] else ''}")


if __name__ == "__main__":
    main()
