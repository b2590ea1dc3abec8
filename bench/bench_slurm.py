"""Decision-to-first-instruction latency: LocalExecutor vs SlurmExecutor, in the same run.

For each of N jobs: t0 = just before ``executor.start(launch)`` (the moment the scheduler's decision is
acted on); the job's command prints its own wall time (``date +%s.%N``) as its first action, read back
from the job's output (``executor.logs``); latency = mark - t0. Slurm is the test cluster of
scripts/slurm.sh (started here if it is not running and we are root). Target (issue 15): Slurm median < 2 s. Prints medians (seconds) and the ratio.

    python bench/bench_slurm.py [--jobs 10] [--slurm-conf /tmp/accelpool-slurm/slurm.conf]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from accelpool.core.rounds import Placement
from accelpool.core.types import Job
from accelpool.executors.local import LocalExecutor
from accelpool.executors.slurm import SlurmExecutor, slurm_available
from accelpool.ports import EventKind, Executor, Launch, RunSpec


def measure(ex: Executor, node: str, acc: str, jobs: int, prefix: str) -> list[float]:
    out = []
    for i in range(jobs):
        job = f"{prefix}-{i}"
        # the mark goes to the job's output (the local executor's sandbox shows it the host read-only)
        run = RunSpec(command="echo T=$(date +%s.%N)", grace_seconds=1.0)
        launch = Launch(Job(job), Placement(job, acc, ((node, (0,)),)), run, 1.0)
        t0 = time.time()
        ex.start(launch)
        mark, ended, deadline = None, False, time.time() + 60
        while mark is None and time.time() < deadline:
            m = re.search(r"T=([0-9.]+)", ex.logs(job))
            if m:
                mark = float(m.group(1))
            elif ended:
                raise SystemExit(f"{job} ended without printing its mark: {ex.logs(job)!r}")
            else:
                ended = any(e.job == job and e.kind in (EventKind.EXITED, EventKind.LOST) for e in ex.poll())
                time.sleep(0.002)
        if mark is None:
            raise SystemExit(f"{job}: no mark within 60 s")
        out.append(mark - t0)
        while not ended and time.time() < deadline:  # wait for its exit so that jobs do not overlap
            ended = any(e.job == job and e.kind in (EventKind.EXITED, EventKind.LOST) for e in ex.poll())
            time.sleep(0.02)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10)
    ap.add_argument(
        "--slurm-conf", default=os.environ.get("ACCELPOOL_TEST_SLURM_CONF", "/tmp/accelpool-slurm/slurm.conf")
    )
    args = ap.parse_args()
    if not slurm_available(args.slurm_conf):
        script = Path(__file__).resolve().parents[1] / "scripts" / "slurm.sh"
        subprocess.run(["bash", str(script), "start"], check=True, stdout=subprocess.DEVNULL)
    tmp = Path(tempfile.mkdtemp(prefix="accelpool-bench-slurm-"))
    local = LocalExecutor(tmp / "local")
    local_lat = measure(local, "n0", "h100", args.jobs, "local")
    local.close()
    slurm = SlurmExecutor(tmp / "slurm", slurm_conf=args.slurm_conf, instance=f"bench-{os.getpid()}")
    slurm_lat = measure(slurm, "s-gpu-0", "h100", args.jobs, "slurm")
    slurm.close()
    lm, sm = statistics.median(local_lat), statistics.median(slurm_lat)
    print(f"jobs per executor: {args.jobs}")
    print(f"local executor: median {lm:.3f} s, max {max(local_lat):.3f} s")
    print(f"slurm executor: median {sm:.3f} s, max {max(slurm_lat):.3f} s")
    print(f"slurm / local: {sm / lm:.1f}x; target slurm median < 2 s: {'met' if sm < 2.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
