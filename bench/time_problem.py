"""Time allocation problems captured by ``bench_round.py --capture DIR`` alone (the policy call only, no
store, no Reconciler), and fingerprint their answers so that two trees can be compared bit for bit.

    PYTHONPATH=src python bench/time_problem.py DIR/*.pkl [--policy max-min-fairness] [--repeats 3] [--profile N]

Each problem is solved ``--repeats`` times as captured (its warm hint included, so a warm step is timed warm);
printed: median CPU and wall seconds and a sha256 of the allocation's x (its bytes) and warm start. Run it
with OPENBLAS_NUM_THREADS=1 for CPU figures that do not count OpenBLAS's second thread. ``--profile N``:
cProfile's N costliest functions (own time) over all the solves."""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pickle
import pstats
import statistics
import time
from pathlib import Path

import numpy as np

from accelpool.core.policies import get_policy


def fingerprint(alloc: object) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(alloc.x, dtype=np.float64).tobytes())  # type: ignore[attr-defined]
    h.update(np.asarray(alloc.warm_start, dtype=np.float64).tobytes())  # type: ignore[attr-defined]
    return h.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("problems", nargs="+", type=Path)
    ap.add_argument("--policy", default="max-min-fairness")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", type=int, default=0)
    a = ap.parse_args()
    policy = get_policy(a.policy)
    prof = cProfile.Profile() if a.profile else None
    for path in a.problems:
        with open(path, "rb") as f:
            problem = pickle.load(f)
        cpus, walls, prints = [], [], set()
        for _ in range(a.repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            if prof is not None:
                prof.enable()
            alloc = policy(problem)
            if prof is not None:
                prof.disable()
            cpus.append(time.process_time() - c0)
            walls.append(time.perf_counter() - w0)
            prints.add(fingerprint(alloc))
        print(
            f"{path.name}: {problem.n_jobs} jobs, CPU median {statistics.median(cpus):.3f} s, wall median "
            f"{statistics.median(walls):.3f} s, x {' '.join(sorted(prints))}",
            flush=True,
        )
    if prof is not None:
        pstats.Stats(prof).sort_stats("tottime").print_stats(a.profile)


if __name__ == "__main__":
    main()
