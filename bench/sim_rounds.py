"""The first N rounds of a Philly trace as ``bench_sim.py peer`` runs ours, for instruction counts.

    python bench/sim_rounds.py max-min-fairness 1500 [--trace b436b2] [--cluster 8:8:8] [--reps 1]
    PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no python bench/sim_rounds.py fair-share 1500

Runs ``simulate(w, get_policy(P), round_seconds=360.0, config=RoundConfig.per_round(), max_rounds=N)``
and prints the least process time of ``--reps`` runs. Under valgrind the instruction count (less a run
of 1 round: start-up and the trace's reading) does not move with the machine's load, as CPU seconds do
on a shared machine (docs/simulator.md, "Simulator speed: thirteenth session").
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from accelpool.core.policies import get_policy
from accelpool.core.round_config import RoundConfig
from accelpool.sim.engine import simulate
from accelpool.sim.gavel import read_gavel_trace

TRACES = Path(__file__).resolve().parent.parent.parent / "shared" / "traces" / "gavel" / "philly_vc"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("policy")
    ap.add_argument("rounds", type=int)
    ap.add_argument("--trace", default="b436b2")
    ap.add_argument("--cluster", default="8:8:8")
    ap.add_argument("--reps", type=int, default=1)
    a = ap.parse_args()
    counts = [int(c) for c in a.cluster.split(":")]
    w = read_gavel_trace(TRACES / f"{a.trace}.trace", dict(zip(("v100", "p100", "k80"), counts, strict=True)))
    best = float("inf")
    rounds = 0
    for _ in range(a.reps):
        c0 = time.process_time()
        r = simulate(
            w,
            get_policy(a.policy),
            policy_name=a.policy,
            round_seconds=360.0,
            config=RoundConfig.per_round(),
            max_rounds=a.rounds,
        )
        best = min(best, time.process_time() - c0)
        rounds = r.rounds
    print(f"{a.policy} {a.trace} {a.cluster}: {rounds} rounds, {best:.3f} s CPU (least of {a.reps})")


if __name__ == "__main__":
    main()
