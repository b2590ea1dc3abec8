"""max-min-fairness: the full allocation, fast path against plain HiGHS, same problems, same run.

    python bench/bench_policies.py [--sizes 1000,2000,10000] [--families random,restricted,sparse,generational]
                                   [--types 8] [--seeds 1,2] [--plain-limit 2000] [--exact-limit 50000]

Both sides of every ratio are the whole policy call (water-filling and the spare-capacity fill included):
``max_min_fairness`` (column generation over hull segments, sampled start prices) against
``max_min_fairness_plain`` (the same procedure with every LP solved whole by HiGHS). Problems come from
bench/problems.py: distinct rows, restricted allowed sets, weights, capacity at 25-75% of demand.

Columns: CPU seconds (process time, the fair measure on a shared machine) and wall seconds of each
side, ``x plain`` = plain CPU / fast CPU (above 1: the fast path is faster), ``level/opt`` = the
stage-1 level of the fast allocation over the exact LP optimum (``exact_level``, plain HiGHS, timed
in its own column; up to --exact-limit jobs, also where the plain run is skipped), ``low/plain`` =
the smallest ratio of the fast allocation's sorted per-device levels to the plain one's over the
lower half (quantiles 1%, 2%, ..., 50%; where the plain run is made), and feasibility. On these
families the stage-1 level is usually the smallest ceiling (a job with scale 1 and the largest
weight, capped by its own best type), so ``level/opt`` alone says little about the water-filling
above it; ``low/plain`` compares the whole lower half with the same procedure solved whole.
Plain runs are skipped above --plain-limit jobs (the output says so). ``--seeds``: the problems' seeds;
the fast path was tuned on seed 0 (profiles of the four families at 2,000 x 8 and of bench_round's
problem), so the default reports held-out seeds 1 and 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from accelpool.core.allocation import AllocationProblem, FloatArray, check_feasible  # noqa: E402
from accelpool.core.policies._seam import usable_mask  # noqa: E402
from accelpool.core.policies.max_min_fairness import (  # noqa: E402
    _level_coefficients,
    exact_level,
    max_min_fairness,
    max_min_fairness_plain,
    stage_level,
)
from problems import FAMILIES, family_problem  # noqa: E402

T = TypeVar("T")


def lower_half_ratio(problem: AllocationProblem, x: FloatArray, ref: FloatArray) -> float:
    """The smallest ratio of the sorted per-device levels of ``x`` to those of ``ref`` at the quantiles
    1%, 2%, ..., 50% (jobs that can run)."""
    usable = usable_mask(problem)
    a = _level_coefficients(problem, usable)
    runnable = usable.any(axis=1)
    ours = np.sort((a * x).sum(axis=1)[runnable])
    theirs = np.sort((a * ref).sum(axis=1)[runnable])
    at = np.minimum(len(ours) - 1, (np.arange(1, 51) / 100 * len(ours)).astype(int))
    return float((ours[at] / np.maximum(theirs[at], 1e-300)).min())


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
    args = ap.parse_args()
    print(f"max-min-fairness full allocation, fast vs plain HiGHS, {args.types} types, same run")
    print(
        f"{'family':>13} {'seed':>4} {'jobs':>6} {'fast cpu':>9} {'fast wall':>9} {'plain cpu':>9} {'plain wall':>10} "
        f"{'x plain':>8} {'exact s':>8} {'level/opt':>10} {'low/plain':>9} {'feasible':>8}"
    )
    cases = [
        (name, seed, n)
        for name in args.families.split(",")
        for seed in (int(s) for s in args.seeds.split(","))
        for n in (int(s) for s in args.sizes.split(","))
    ]
    worst: tuple[float, str] | None = None
    for name, seed, n in cases:
        problem = family_problem(name, n, args.types, seed)
        alloc, f_cpu, f_wall = timed(max_min_fairness, problem)
        ok = "yes" if not check_feasible(problem, alloc) else "NO"
        level = stage_level(problem, alloc.x)
        if n <= args.exact_limit:
            exact, e_cpu, _ = timed(exact_level, problem)
            check = f"{e_cpu:8.2f} {level / exact:10.6f}"
            if worst is None or level / exact < worst[0]:
                worst = (level / exact, f"{name} seed {seed} {n}")
        else:
            check = f"{'':>8} {'skipped':>10}"
        if n <= args.plain_limit:
            ref, p_cpu, p_wall = timed(max_min_fairness_plain, problem)
            low = lower_half_ratio(problem, alloc.x, ref.x)
            plain = f"{p_cpu:9.2f} {p_wall:10.2f} {p_cpu / f_cpu:8.2f} {check} {low:9.4f}"
        else:
            plain = f"{'skipped':>9} {'':>10} {'':>8} {check} {'':>9}"
        print(f"{name:>13} {seed:>4} {n:>6} {f_cpu:9.2f} {f_wall:9.2f} {plain} {ok:>8}", flush=True)
    print(f"(plain runs skipped above {args.plain_limit} jobs, exact LP checks above {args.exact_limit})")
    if worst is not None:
        print(f"worst level/opt {worst[0]:.6f} ({worst[1]}; the target: >= 0.99)")


if __name__ == "__main__":
    main()
