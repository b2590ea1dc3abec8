"""Every policy at simulator sizes (the policy runs once per round), against plain HiGHS in the same run.

    python bench/bench_policies_small.py [--sizes 50,200,500,2000] [--types 3] [--repeat 15]

Two workloads per size, both contended (about 2.5x more devices asked for than the pool holds):

- ``distinct``: every job has its own random throughput row, scale 1/2/4/8, weight 0.5-2;
- ``realistic``: Gavel-like, 26 job types x scales 1/2/4/8 (only some types distributed), weight 1,
  so many rows are identical, as in a Philly or Gavel replay.

Prints the median wall time of each policy in ms and, as ``x lp``, its ratio against the baseline: one
``scipy.optimize.linprog(method="highs")`` max-throughput LP of the same size (sum_t x <= 1 per job,
capacity per type), timed in the same run. The simulator's budget is a few ms per call (about 26,000
rounds in an 82k-job Philly replay that must finish in under 5 minutes).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from accelpool.core.allocation import AllocationProblem, check_feasible
from accelpool.core.policies import POLICIES


def distinct_problem(n: int, types: int, seed: int) -> AllocationProblem:
    rng = np.random.default_rng(seed)
    tput = rng.uniform(0.1, 10.0, (n, types)) * rng.uniform(0.3, 1.0, (1, types))
    scale = rng.choice([1, 2, 4, 8], n).astype(float)
    return _problem(tput, scale, rng.uniform(0.5, 2.0, n), rng)


def realistic_problem(n: int, types: int, seed: int) -> AllocationProblem:
    rng = np.random.default_rng(seed)
    kinds = 26
    base = rng.uniform(0.2, 20.0, (kinds, 1)) * rng.uniform(0.2, 1.0, (kinds, types))
    distributed = rng.uniform(size=kinds) < 0.5
    kind = rng.integers(0, kinds, n)
    scale = np.where(distributed[kind], rng.choice([1, 2, 4, 8], n), 1).astype(float)
    tput = base[kind] * scale[:, None] ** 0.9
    return _problem(tput, scale, np.ones(n), rng)


def _problem(
    tput: np.ndarray, scale: np.ndarray, weight: np.ndarray, rng: np.random.Generator
) -> AllocationProblem:
    n, types = tput.shape
    cap = np.maximum(8.0, np.round(rng.uniform(0.7, 1.3, types) * scale.sum() / 2.5 / types))
    return AllocationProblem(
        job_ids=tuple(f"j{i}" for i in range(n)),
        types=tuple(f"t{k}" for k in range(types)),
        capacity=cap,
        scale=scale,
        weight=weight,
        throughput=tput,
        allowed=np.ones((n, types), dtype=bool),
    )


def baseline_lp(problem: AllocationProblem) -> float:
    """One plain max-throughput LP with scipy's HiGHS (the yardstick); returns its objective."""
    n, tt = problem.n_jobs, problem.n_types
    a = problem.throughput / problem.throughput.max(axis=1, keepdims=True)
    cols = np.arange(n * tt)
    job, typ = cols // tt, cols % tt
    a_ub = sparse.csr_matrix(
        (
            np.concatenate([np.ones(n * tt), problem.scale[job]]),
            (np.concatenate([job, n + typ]), np.concatenate([cols, cols])),
        ),
        shape=(n + tt, n * tt),
    )
    b_ub = np.concatenate([np.ones(n), problem.capacity])
    res = linprog(-a.reshape(-1), A_ub=a_ub, b_ub=b_ub, bounds=(0, 1), method="highs")
    return float(-res.fun)


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="50,200,500,2000")
    ap.add_argument("--types", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--policies", default=",".join(POLICIES))
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    names = args.policies.split(",")
    for label, make in (("distinct", distinct_problem), ("realistic", realistic_problem)):
        problems = {n: make(n, args.types, seed=n) for n in sizes}
        print(f"\n{label} rows, {args.types} types: median ms (x lp = ratio to one plain linprog LP)")
        print(f"{'policy':>22} " + " ".join(f"{f'{n} jobs':>17}" for n in sizes))
        base = {n: median_ms(partial(baseline_lp, problems[n]), args.repeat) for n in sizes}
        print(f"{'linprog max-tput LP':>22} " + " ".join(f"{base[n]:9.2f}        " for n in sizes))
        for name in names:
            policy = POLICIES[name]
            cells = []
            for n in sizes:
                p = problems[n]
                if check_feasible(p, policy(p)):
                    cells.append(f"{'INFEASIBLE':>17}")
                    continue
                reps = args.repeat if n <= 500 else max(3, args.repeat // 3)
                ms = median_ms(partial(policy, p), reps)
                cells.append(f"{ms:9.2f} {ms / base[n]:5.2f}x ")
            print(f"{name:>22} " + " ".join(cells))


if __name__ == "__main__":
    main()
