"""max-min-fairness: the default water-filling against the price-space one (_wf_price), same problems, same run.

    python bench/bench_wf_price.py [--sizes 1000,2000,5000,10000] [--families random,restricted,sparse,generational]
                                   [--types 8] [--seeds 1,2] [--default-limit 50000] [--exact-limit 10000]
                                   [--gap 1e-6]

Both sides are the whole policy call (water-filling and the spare-capacity fill included):
``max_min_fairness`` (the default: column generation, _waterfill.py) against
``_wf_price.max_min_fairness_price`` (stages folded over ceilings, decided in the rows' price space).
Columns: CPU seconds of each side (process time: the fair measure on a shared machine), ``default /
price`` (above 1: the price path is faster), each side's stage-1 level over the exact LP optimum
(``exact_level``, plain HiGHS; up to --exact-limit jobs), the largest per-job level difference between
the two allocations relative to the largest level (both are lexicographic max-min allocations, exact up
to the price path's ``--gap`` and the default's MAX_STAGES tail), and feasibility. Default runs are
skipped above --default-limit jobs. Problems: bench/problems.py; seed 0 was used for tuning, the
default seeds 1 and 2 are held out. Prints the load average at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accelpool.core.allocation import check_feasible  # noqa: E402
from accelpool.core.policies._seam import usable_mask  # noqa: E402
from accelpool.core.policies._wf_price import max_min_fairness_price  # noqa: E402
from accelpool.core.policies.max_min_fairness import (  # noqa: E402
    _level_coefficients,
    exact_level,
    max_min_fairness,
    stage_level,
)
from problems import FAMILIES, family_problem  # noqa: E402

T = TypeVar("T")


def cpu(fn: Callable[..., T], *args: object, **kw: object) -> tuple[T, float]:
    t = time.process_time()
    out = fn(*args, **kw)
    return out, time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", default="1000,2000,5000,10000")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--types", type=int, default=8)
    ap.add_argument("--seeds", default="1,2", help="problem seeds (0 was used for tuning)")
    ap.add_argument("--default-limit", type=int, default=50000)
    ap.add_argument("--exact-limit", type=int, default=10000)
    ap.add_argument("--gap", type=float, default=1e-6, help="the price path's relative gap per stage")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} (1 min); {args.types} types; price gap {args.gap:g}")
    print(
        "| family | seed | jobs | default CPU s | price CPU s | default / price "
        "| default level/exact | price level/exact | max level diff | feasible |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        for family in args.families.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                problem = family_problem(family, n, args.types, seed)
                mine, t_price = cpu(max_min_fairness_price, problem, gap=args.gap)
                ok = check_feasible(problem, mine) == []
                exact = exact_level(problem) if n <= args.exact_limit else float("nan")
                lvl = stage_level(problem, mine.x)
                if n <= args.default_limit:
                    base, t_default = cpu(max_min_fairness, problem)
                    ok = ok and check_feasible(problem, base) == []
                    a = _level_coefficients(problem, usable_mask(problem))
                    la, lb = (a * mine.x).sum(axis=1), (a * base.x).sum(axis=1)
                    diff = f"{float(np.abs(la - lb).max() / lb.max()):.1e}"
                    cols = f"{t_default:.2f} | {t_price:.2f} | {t_default / t_price:.2f} "
                    cols += f"| {stage_level(problem, base.x) / exact:.6f}"
                else:
                    diff, cols = "-", f"skipped | {t_price:.2f} | - | -"
                print(
                    f"| {family} | {seed} | {n:,} | {cols} | {lvl / exact:.6f} | {diff} | {'yes' if ok else 'NO'} |",
                    flush=True,
                )
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) at the end")


if __name__ == "__main__":
    main()
