"""Where a simulation's policy calls spend their time, and what a bare water-filling would save on them.

    python bench/small_problems.py --trace physical_cluster/max_min_fairness.trace --cluster 8:16:24
    python bench/small_problems.py --trace philly_vc/11cb48.trace --cluster 8:8:8
    python bench/small_problems.py --trace philly_vc/11cb48.trace --cluster 36:36:36 --policy fair-share --classify

Runs ``simulate`` as ``bench_sim.py peer`` runs ours (360 s rounds, per-round decisions, Gavel's trace under
../shared/traces/gavel), keeping every problem the policy is given. Prints: the policy calls (jobs per
call, median ms a call, CPU s in all), HiGHS's solves inside them (count, s, mean columns and simplex
iterations), HiGHS's fixed cost (a 1 x 1 LP on a fresh model and re-run on a solved one), and for
max-min-fairness the same problems solved by a *bare* water-filling (below) against the shipped policy,
alternated, with the largest relative gap of their lowest levels on a sample. ``--classify``: every
round's decision classed by whether placement ran in full and whether it started or preempted a job.

The bare water-filling (a yardstick, not a policy): one whole LP per stage over every usable pair, run
again from the last stage's basis, jobs frozen by their level rows' duals or at their ceilings; no
program rules (refused when the problem has any), no ceiling searches, no column generation, no
Pareto fill. Its allocation is another optimum of the same stages, not the shipped one.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import highspy._core as hc
import numpy as np

from accelpool.core.allocation import AllocationProblem
from accelpool.core.policies import get_policy
from accelpool.core.policies._seam import build_rows, usable_mask
from accelpool.core.round_config import RoundConfig
from accelpool.sim.engine import simulate
from accelpool.sim.gavel import read_gavel_trace

TRACES = Path(__file__).resolve().parent.parent.parent / "shared" / "traces" / "gavel"
MM = sys.modules[get_policy("max-min-fairness").__module__]


def bare(problem: AllocationProblem) -> tuple[np.ndarray, int]:
    """The bare water-filling above: (x, LPs solved)."""
    usable = usable_mask(problem)
    a = MM._level_coefficients(problem, usable)
    n, tt = a.shape
    run = np.nonzero(usable.any(axis=1))[0]
    m = len(run)
    pj, pt = np.nonzero(usable[run])
    pj = run[pj]
    k = len(pj)
    loc = np.full(n, -1)
    loc[run] = np.arange(m)
    # columns: L, then one per pair; rows: a level row per job, a time row per job, a capacity row per type
    rows = np.concatenate([np.arange(m), loc[pj], m + loc[pj], 2 * m + pt])
    cols = np.concatenate([np.zeros(m, dtype=np.int64), np.tile(np.arange(1, k + 1), 3)])
    vals = np.concatenate([-np.ones(m), a[pj, pt], np.ones(k), problem.scale[pj]])
    order = np.lexsort((rows, cols))
    h = hc._Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    lp = hc.HighsLp()
    lp.num_col_, lp.num_row_ = k + 1, 2 * m + tt
    cost = np.zeros(k + 1)
    cost[0] = -1.0
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(k + 1)
    lp.col_upper_ = np.concatenate([[np.inf], np.ones(k)])
    lp.row_lower_ = np.concatenate([np.zeros(m), np.full(m + tt, -np.inf)])
    lp.row_upper_ = np.concatenate(
        [np.full(m, np.inf), np.ones(m), np.asarray(problem.capacity, dtype=np.float64)]
    )
    mat = lp.a_matrix_
    mat.format_ = hc.MatrixFormat.kColwise
    mat.start_ = np.searchsorted(cols[order], np.arange(k + 2)).astype(np.int32)
    mat.index_ = rows[order].astype(np.int32)
    mat.value_ = vals[order].astype(np.float64)
    mat.num_col_, mat.num_row_ = k + 1, 2 * m + tt
    h.passModel(lp)
    ceiling = a[run].max(axis=1)
    active = np.ones(m, dtype=bool)
    lps = 0
    while active.any():
        h.run()
        lps += 1
        if h.getModelStatus() != hc.HighsModelStatus.kOptimal:
            break
        sol = h.getSolution()
        level = sol.col_value[0]
        dual = np.asarray(sol.row_dual)[:m]
        freeze = active & ((np.abs(dual) > 1e-9) | (ceiling <= level + 1e-9))
        if not freeze.any():
            freeze = active.copy()
        for i in np.nonzero(freeze)[0].tolist():
            h.changeCoeff(i, 0, 0.0)
            h.changeRowBounds(i, float(level) * (1 - 1e-9), np.inf)
        active &= ~freeze
        if active.any():
            h.changeColBounds(0, 0.0, float(ceiling[active].max()))
    x = np.zeros((n, tt))
    x[pj, pt] = np.asarray(h.getSolution().col_value)[1:]
    return x, lps


def fixed_cost(reps: int = 300) -> tuple[float, float]:
    """HiGHS's run of a 1 x 1 LP, us: on a fresh model, and again on the solved one."""

    def one() -> hc._Highs:
        h = hc._Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        lp = hc.HighsLp()
        lp.num_col_, lp.num_row_ = 1, 1
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = np.array([-1.0]), np.zeros(1), np.array([np.inf])
        lp.row_lower_, lp.row_upper_ = np.array([-np.inf]), np.array([1.0])
        mat = lp.a_matrix_
        mat.format_ = hc.MatrixFormat.kColwise
        mat.start_, mat.index_ = np.array([0, 1], dtype=np.int32), np.array([0], dtype=np.int32)
        mat.value_, mat.num_col_, mat.num_row_ = np.array([1.0]), 1, 1
        h.passModel(lp)
        return h

    models = [one() for _ in range(reps)]
    t = time.perf_counter()
    for h in models:
        h.run()
    fresh = (time.perf_counter() - t) / reps * 1e6
    t = time.perf_counter()
    for h in models:
        h.changeRowBounds(0, -np.inf, 1.0)
        h.run()
    return fresh, (time.perf_counter() - t) / reps * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trace", default="physical_cluster/max_min_fairness.trace")
    ap.add_argument("--cluster", default="8:16:24")
    ap.add_argument("--policy", default="max-min-fairness")
    ap.add_argument("--classify", action="store_true")
    a = ap.parse_args()
    counts = [int(c) for c in a.cluster.split(":")]
    work = read_gavel_trace(TRACES / a.trace, dict(zip(("v100", "p100", "k80"), counts, strict=True)))

    problems: list[AllocationProblem] = []
    seconds: list[float] = []
    lps: list[tuple[int, int, float]] = []
    real_run = hc._Highs.run

    def counted_run(h: hc._Highs) -> hc.HighsStatus:
        t = time.perf_counter()
        out = real_run(h)
        lps.append((h.getLp().num_col_, h.getInfo().simplex_iteration_count, time.perf_counter() - t))
        return out

    policy = get_policy(a.policy)

    class Kept:
        """The policy, keeping each problem and timing each call; ``.policy`` names it to the core
        (``core.rounds._base``), so the rounds decide as with the policy itself."""

        def __init__(self) -> None:
            self.policy = policy

        def __call__(self, problem: AllocationProblem) -> object:
            problems.append(problem)
            t = time.process_time()
            out = policy(problem)
            seconds.append(time.process_time() - t)
            return out

    classes: collections.Counter[tuple[bool, bool]] = collections.Counter()
    if a.classify:
        import accelpool.core.rounds
        import accelpool.runtime.reconciler

        # the module attributes a round looks up when it runs, wrapped for this run only
        rounds_mod: Any = accelpool.core.rounds
        rec_mod: Any = accelpool.runtime.reconciler
        real_place, real_decide, placed = rounds_mod._place, rec_mod.decide, [False]

        def place(*args: Any, **kw: Any) -> Any:
            placed[0] = True
            return real_place(*args, **kw)

        def decide(*args: Any, **kw: Any) -> Any:
            placed[0] = False
            d = real_decide(*args, **kw)
            classes[(placed[0], bool(d.start or d.preempt))] += 1
            return d

        rounds_mod._place = place
        rec_mod.decide = decide

    highs: Any = hc._Highs
    highs.run = counted_run
    c0 = time.process_time()
    r = simulate(work, Kept(), policy_name=a.policy, round_seconds=360.0, config=RoundConfig.per_round())  # type: ignore[arg-type]
    total = time.process_time() - c0
    highs.run = real_run
    jobs = [len(p.job_ids) for p in problems]
    print(f"{a.trace} {a.cluster} {a.policy}: {r.rounds} rounds, {total:.2f} s CPU with counting")
    print(
        f"policy calls {len(problems)}, jobs per call mean {statistics.mean(jobs):.1f}, median "
        f"{1e3 * statistics.median(seconds):.2f} ms a call, {sum(seconds):.2f} s CPU in all"
    )
    if lps:
        print(
            f"HiGHS solves {len(lps)}, {sum(t for *_, t in lps):.2f} s, mean columns "
            f"{statistics.mean(c for c, _, _ in lps):.0f}, mean simplex iterations {statistics.mean(i for _, i, _ in lps):.0f}"
        )
    fresh, again = fixed_cost()
    print(f"HiGHS fixed cost (1 x 1 LP): fresh model {fresh:.0f} us, re-run on a solved one {again:.0f} us")
    if a.classify:
        print(
            "rounds: quiet (no full placement) "
            f"{classes[(False, False)] + classes[(False, True)]}, full and moving jobs {classes[(True, True)]}, "
            f"full and changing nothing {classes[(True, False)]}"
        )
    if a.policy != "max-min-fairness":
        return
    if any(build_rows(p, usable_mask(p)).n_rows > len(p.types) for p in problems):
        print("bare water-filling: skipped (the problems have program rules)")
        return
    for _ in range(2):
        t = time.process_time()
        solved = sum(bare(p)[1] for p in problems)
        tb = time.process_time() - t
        t = time.process_time()
        for p in problems:
            policy(p)
        ts = time.process_time() - t
        print(
            f"bare water-filling {tb:.2f} s ({solved} LPs) against the shipped policy {ts:.2f} s, same problems"
        )
    gap = 0.0
    for p in problems[:: max(1, len(problems) // 50)]:
        usable = usable_mask(p)
        coef = MM._level_coefficients(p, usable)
        runnable = usable.any(axis=1)
        if not runnable.any():
            continue
        low_b = float((coef * bare(p)[0]).sum(axis=1)[runnable].min())
        low_s = float((coef * policy(p).x).sum(axis=1)[runnable].min())
        gap = max(gap, abs(low_b - low_s) / max(low_s, 1e-12))
    print(f"lowest level, bare against shipped, largest relative gap on a sample: {gap:.1e}")


if __name__ == "__main__":
    main()
