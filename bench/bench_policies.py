"""Benchmark max-min-fairness against plain HiGHS on the whole first-stage LP, in the same run.

    python bench/bench_policies.py [--sizes 1000,2000,10000,50000] [--types 8] [--plain-limit 20000]

For each size: random distinct throughputs (steps/s) on T types, scales 1-8 devices, the pool sized so
that it is contended. Prints, for the fast path: time to the stage-1 level (sample prices + one column
generation stage), time to the full water-filled allocation, and both as ratios against plain HiGHS on
the whole stage-1 LP; the level as a ratio of the exact optimum. Both sides of that ratio are the same
quantity: the per-device stage-1 level L = min_j scale_j * eff_j / (w_j * best_j) that the policy
maximizes (``exact_level``), not the reported ``objective`` (the minimum normalized throughput
eff_j / (w_j * best_j) of the final allocation, which follows from x and has no LP optimum of its own). Plain HiGHS is skipped above
--plain-limit jobs (at 50,000 x 8 it takes minutes); the output says so. Also times every policy on
simulator-sized problems (50-500 jobs x 3 types).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from accelpool.core.allocation import AllocationProblem, check_feasible
from accelpool.core.policies import POLICIES
from accelpool.core.policies import _waterfill as wf
from accelpool.core.policies._seam import build_rows, normalized, usable_mask
from accelpool.core.policies.max_min_fairness import exact_level, max_min_fairness


def random_problem(n: int, types: int, seed: int = 0) -> AllocationProblem:
    rng = np.random.default_rng(seed)
    tput = rng.uniform(0.1, 10.0, (n, types)) * rng.uniform(0.3, 1.0, (1, types))
    scale = rng.choice([1, 2, 4, 8], n).astype(float)
    cap = np.round(rng.uniform(0.5, 1.5, types) * n * 3.75 / types / 4)
    return AllocationProblem(
        job_ids=tuple(f"j{i}" for i in range(n)),
        types=tuple(f"t{k}" for k in range(types)),
        capacity=cap,
        scale=scale,
        weight=rng.uniform(0.5, 2.0, n),
        throughput=tput,
        allowed=np.ones((n, types), dtype=bool),
    )


def first_stage(problem: AllocationProblem) -> float:
    """The fast path's stage-1 level alone (sample, price refinement, one exact CG stage)."""
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    a = normalized(problem, usable)
    stage = wf._Stage(a, problem.scale.copy(), rows, rows.member)
    active, ell = np.ones(problem.n_jobs, dtype=bool), np.zeros(problem.n_jobs)
    price, level = None, 0.0
    if problem.n_jobs > wf.FULL_LP_GROUPS:
        price, level = wf._sample_prices(stage, active, ell)
        price, _ = wf._refine_prices(stage, price)
    level, _, _, _ = wf._stage(stage, active, ell, price, level)
    return level


def timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,2000,10000,50000")
    ap.add_argument("--types", type=int, default=8)
    ap.add_argument("--plain-limit", type=int, default=20000)
    args = ap.parse_args()
    print(f"max-min-fairness vs plain HiGHS (whole stage-1 LP), {args.types} types, same run")
    print(
        f"{'jobs':>7} {'plain s':>9} {'level s':>9} {'x plain':>8} {'level/opt':>11} "
        f"{'full s':>8} {'x plain':>8} {'feasible':>8}"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        problem = random_problem(n, args.types)
        if n <= args.plain_limit:
            exact, t_plain = timed(exact_level, problem)
        else:
            exact, t_plain = float("nan"), float("nan")
        level, t_level = timed(first_stage, problem)
        alloc, t_full = timed(max_min_fairness, problem)
        ok = "yes" if not check_feasible(problem, alloc) else "NO"
        ratio = f"{level / exact:.6f}" if exact == exact else "n/a"
        plain = f"{t_plain:9.2f}" if t_plain == t_plain else "  skipped"
        print(
            f"{n:>7} {plain} {t_level:9.3f} {t_level / t_plain:8.3f} {ratio:>11} {t_full:8.3f} "
            f"{t_full / t_plain:8.3f} {ok:>8}"
        )
        if n > args.plain_limit:
            print(
                f"        (plain HiGHS skipped above {args.plain_limit} jobs: it takes minutes at this size)"
            )
    print("\nevery policy on simulator-sized problems (median of 20 calls, ms)")
    print(f"{'policy':>22} " + " ".join(f"{f'{n}x3':>9}" for n in (50, 200, 500)))
    for name, policy in POLICIES.items():
        cells = []
        for n in (50, 200, 500):
            problem = random_problem(n, 3, seed=n)
            times = [timed(policy, problem)[1] for _ in range(20)]
            cells.append(f"{1000 * float(np.median(times)):9.2f}")
        print(f"{name:>22} " + " ".join(cells))


if __name__ == "__main__":
    main()
