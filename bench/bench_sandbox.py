"""Sandbox overhead: decision -> the job's first instruction, LocalExecutor with and without the bubblewrap
sandbox, in the same run (interleaved, so both see the same machine load).

For each job: t0 = just before ``executor.start(launch)``; the job's first action prints its wall time
(``date +%s.%N``) to its log; latency = that time - t0. Prints the medians, the median overhead (sandboxed -
unsandboxed; target < 0.100 s) and the ratio.

    python bench/bench_sandbox.py [--jobs 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from accelpool.core.rounds import Placement
from accelpool.core.types import Job
from accelpool.executors.local import LocalExecutor
from accelpool.executors.sandbox import SandboxConfig
from accelpool.ports import EventKind, Launch, RunSpec


def first_instruction(ex: LocalExecutor, job: str) -> float:
    launch = Launch(Job(job), Placement(job, "h100", (("n0", (0,)),)), RunSpec(command="date +%s.%N"), 1.0)
    t0 = time.time()
    ex.start(launch)
    stamp = None
    while stamp is None:
        for line in ex.logs(job).splitlines():
            try:
                stamp = float(line)
            except ValueError:
                continue
        time.sleep(0.001)
    deadline = time.time() + 30
    while time.time() < deadline:  # wait for its exit so that jobs do not overlap
        if any(e.job == job and e.kind in (EventKind.EXITED, EventKind.LOST) for e in ex.poll()):
            break
        time.sleep(0.01)
    return stamp - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="accelpool-bench-sandbox-"))
    boxed = LocalExecutor(tmp / "boxed")
    bare = LocalExecutor(tmp / "bare", sandbox=SandboxConfig(enabled=False, allow_unsandboxed=True))
    first_instruction(boxed, "warm-a")
    first_instruction(bare, "warm-b")
    with_box: list[float] = []
    without: list[float] = []
    for i in range(args.jobs):
        with_box.append(first_instruction(boxed, f"boxed-{i}"))
        without.append(first_instruction(bare, f"bare-{i}"))
    boxed.close()
    bare.close()
    mb, mn = statistics.median(with_box), statistics.median(without)
    print(f"jobs per variant: {args.jobs}")
    print(f"no sandbox: median {mn:.3f} s")
    print(f"sandbox:    median {mb:.3f} s")
    print(f"overhead:   median {mb - mn:.3f} s (target < 0.100 s); ratio {mb / mn:.2f}x")


if __name__ == "__main__":
    main()
