"""Average JCT and preemptions of whole Gavel traces under the live defaults (``RoundConfig()``, 60 s
restart overhead, 360 s rounds), one policy, to compare two trees' decisions where a change moves them.

    PYTHONPATH=TREE/src python bench/live_jct.py [--policy max-min-fairness] TRACE,CLUSTER ...
    # e.g. philly_vc/b436b2.trace,8:8:8 philly_vc/11cb48.trace,36:36:36 physical_cluster/max_min_fairness.trace,8:16:24

TRACE is relative to ../shared/traces/gavel, CLUSTER is v100:p100:k80 devices. It calls
``sim.engine.simulate`` as ``bench/sim_fingerprint.py``'s live cases do. Needs ../shared/traces.
"""

from __future__ import annotations

import argparse
import time

from accelpool.core.policies import get_policy
from accelpool.core.round_config import RoundConfig
from accelpool.sim.engine import simulate
from accelpool.sim.metrics import compute
from sim_fingerprint import gavel_workload  # bench/ is on the path of a script run from it


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", nargs="+", help="TRACE,CLUSTER")
    ap.add_argument("--policy", default="max-min-fairness")
    a = ap.parse_args()
    for case in a.cases:
        trace, cluster = case.split(",")
        w = gavel_workload(trace, cluster)
        c0 = time.process_time()
        res = simulate(
            w,
            get_policy(a.policy),
            policy_name=a.policy,
            round_seconds=360.0,
            restart_overhead_seconds=60.0,
            config=RoundConfig(),
        )
        m = compute(res)
        pre = sum(r.preemptions for r in res.records.values())
        print(
            f"{trace} {cluster} {a.policy}: rounds {res.rounds}, avg JCT {m['avg_jct_seconds']:,.1f} s, "
            f"preemptions {pre}, CPU {time.process_time() - c0:.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
