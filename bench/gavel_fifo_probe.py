"""Diagnosis of Gavel's fifo (the peer baseline), run with Gavel's own Python, not ours:

    $(bash ../shared/baselines/gavel/setup.sh)/bin/python bench/gavel_fifo_probe.py \\
        -t ../shared/traces/gavel/physical_cluster/max_min_fairness.trace -p fifo \\
        --throughputs_file ../shared/traces/gavel/simulation_throughputs.json -c 8:16:24 --seed 0 \\
        --time_per_iteration 360 2>&1 | grep -E "Average job completion time:|PROBE"

Wraps ``FIFOPolicy.get_allocation`` to count, per call, the devices it allocates on each type against
the cluster's (overcommit: more than exist; idle: none), then runs Gavel's driver unchanged (its average
completion time is the same as without the wrapper). docs/simulator.md, "fifo with EASY back-fill".
"""

from __future__ import annotations

import collections
import os
import runpy
import sys
from typing import Any


def main() -> None:
    venv = sys.prefix  # the venv that setup.sh builds, with Gavel's code in gavel/
    gavel = os.path.join(venv, "gavel")
    sys.path[:0] = [gavel, os.path.join(gavel, "policies")]
    from policies import fifo  # Gavel's package, in its own venv

    stats: collections.Counter[str] = collections.Counter()
    peak: dict[str, float] = {}
    original = fifo.FIFOPolicy.get_allocation

    def counted(self: Any, throughputs: Any, scale_factors: Any, cluster_spec: dict[str, int]) -> Any:
        out = original(self, throughputs, scale_factors, cluster_spec)
        used: collections.Counter[str] = collections.Counter()
        for job, row in out.items():
            for t, share in row.items():
                if share:
                    used[t] += scale_factors[job]
        stats["calls"] += 1
        for t, devices in cluster_spec.items():
            if used[t] > devices:
                stats[f"overcommitted_{t}"] += 1
                peak[t] = max(peak.get(t, 0.0), used[t] / devices)
            if used[t] == 0:
                stats[f"idle_{t}"] += 1
        return out

    fifo.FIFOPolicy.get_allocation = counted
    # the driver runs from Gavel's folder: file arguments made absolute first
    sys.argv = [sys.argv[0], *(os.path.abspath(a) if os.path.isfile(a) else a for a in sys.argv[1:])]
    os.chdir(gavel)
    try:
        runpy.run_path(
            os.path.join(gavel, "scripts/drivers/simulate_scheduler_with_trace.py"), run_name="__main__"
        )
    finally:
        print("PROBE", dict(stats), "peak allocated / devices:", {t: round(r, 2) for t, r in peak.items()})


if __name__ == "__main__":
    main()
