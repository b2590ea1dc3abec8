"""Time max-min-fairness on bench/problems.py's families and keep what it allocated, so that two trees can be
compared: CPU seconds, a hash of the allocation's x, and the sorted per-device levels (saved as .npy).

    PYTHONPATH=src python bench/family_levels.py --families F,... --sizes N,... --seeds S,... --save DIR
    python bench/family_levels.py --compare DIR_A DIR_B

Run it once per tree (``PYTHONPATH`` pointing at each tree's src), alternating, with OPENBLAS_NUM_THREADS=1.
``--compare`` prints, per problem both saved, whether the hashes agree, the smallest and largest ratio of
B's sorted levels to A's (below 1: B lower somewhere), the ratio of the level sums, and the first sorted
position where they differ by more than 1e-6 (relative) with both levels there: B higher there is B ahead
in the max-min (leximin) order, whatever follows. Where the tree has
``_wf_master.recheck`` (the interior-point borderline re-check), the line also says how many masters were
re-checked, how many came back optimal, and the CPU seconds the re-checks took.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from accelpool.core.policies import _wf_master  # noqa: E402
from accelpool.core.policies.max_min_fairness import max_min_fairness  # noqa: E402
from bench_policies import sorted_levels  # noqa: E402
from problems import FAMILIES, family_problem  # noqa: E402


def _counting() -> dict[str, float]:
    """Wrap _wf_master.recheck (where the tree has it) to count its calls, successes and CPU seconds."""
    count = {"calls": 0, "optimal": 0, "cpu": 0.0}
    inner = getattr(_wf_master, "recheck", None)
    if inner is None:
        return count

    def wrapped(h: object) -> object:
        c0 = time.process_time()
        out = inner(h)
        count["cpu"] += time.process_time() - c0
        count["calls"] += 1
        count["optimal"] += out is not None
        return out

    setattr(_wf_master, "recheck", wrapped)  # noqa: B010 (a tree without it is measured too)
    return count


def run(args: argparse.Namespace) -> None:
    out = Path(args.save)
    out.mkdir(parents=True, exist_ok=True)
    count = _counting()
    for name in args.families.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                problem = family_problem(name, n, args.types, seed)
                before = dict(count)
                c0, w0 = time.process_time(), time.perf_counter()
                alloc = max_min_fairness(problem)
                cpu, wall = time.process_time() - c0, time.perf_counter() - w0
                digest = hashlib.sha256(np.ascontiguousarray(alloc.x, dtype=np.float64).tobytes()).hexdigest()
                key = f"{name}-{n}-{seed}"
                np.save(out / f"{key}.npy", sorted_levels(problem, alloc.x))
                (out / f"{key}.json").write_text(json.dumps({"cpu": cpu, "wall": wall, "x": digest[:16]}))
                extra = ""
                if hasattr(_wf_master, "recheck"):
                    calls = count["calls"] - before["calls"]
                    ok = count["optimal"] - before["optimal"]
                    extra = f" recheck {calls} ({ok} optimal, {count['cpu'] - before['cpu']:.3f} s)"
                print(f"{key:>22} cpu {cpu:7.2f} wall {wall:7.2f} x {digest[:16]}{extra}", flush=True)


def compare(a: Path, b: Path) -> None:
    for path in sorted(a.glob("*.npy")):
        other = b / path.name
        if not other.exists():
            continue
        la, lb = np.load(path), np.load(other)
        ja = json.loads(path.with_suffix(".json").read_text())
        jb = json.loads(other.with_suffix(".json").read_text())
        same = "same x" if ja["x"] == jb["x"] else "x differs"
        ratio = lb / np.maximum(la, 1e-300)
        moved = np.nonzero(np.abs(ratio - 1.0) > 1e-6)[0]
        first = (
            f"first moved {moved[0]} of {len(la)}: {la[moved[0]]:.6f} -> {lb[moved[0]]:.6f}"
            if len(moved)
            else "none moved"
        )
        print(
            f"{path.stem:>22} {same:>9} min {ratio.min():.6f} max {ratio.max():.6f} "
            f"sum {lb.sum() / la.sum():.6f} {first}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--sizes", default="2000")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--types", type=int, default=8)
    ap.add_argument("--save", default="")
    ap.add_argument("--compare", nargs=2, type=Path)
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
    else:
        run(args)


if __name__ == "__main__":
    main()
