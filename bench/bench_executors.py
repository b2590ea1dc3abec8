"""Decision-to-running latency: LocalExecutor vs RayExecutor (warm multi-node cluster), in the same run.

For each of N jobs: t0 = just before ``executor.start(launch)``; the job's command writes its own wall
time (``date +%s.%N``) to a marker file as its first action; latency = marker - t0. Ray's cluster is started
and warmed (one job run to completion) before measuring. Prints medians (seconds) and the ratio.

    python bench/bench_executors.py [--jobs 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from accelpool.core.rounds import Placement
from accelpool.core.types import Job
from accelpool.ports import EventKind, Executor, Launch, NodeSource, RunSpec

MB = 1024 * 1024


def measure(ex: Executor, node: str, acc: str, jobs: int, marks: Path, prefix: str) -> list[float]:
    """The job's first action prints its wall time to its log (jobs are sandboxed: they cannot write the
    bench's files)."""
    out = []
    for i in range(jobs):
        job = f"{prefix}-{i}"
        run = RunSpec(command="date +%s.%N", grace_seconds=1.0)
        launch = Launch(Job(job), Placement(job, acc, ((node, (0,)),)), run, 1.0)
        t0 = time.time()
        ex.start(launch)
        stamp = None
        seen = []
        while stamp is None:
            if isinstance(ex, NodeSource):
                seen += ex.poll()  # Ray: logs are read from the actors once they run
            for line in ex.logs(job).splitlines():
                try:
                    stamp = float(line.rsplit(" ", 1)[-1])
                except ValueError:
                    continue
            time.sleep(0.002)
        out.append(stamp - t0)
        deadline = time.time() + 30
        while time.time() < deadline:  # wait for its exit so that jobs do not overlap
            seen += ex.poll()
            if any(e.job == job and e.kind in (EventKind.EXITED, EventKind.LOST) for e in seen):
                break
            time.sleep(0.02)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="accelpool-bench-"))
    marks = tmp / "marks"
    marks.mkdir()

    from accelpool.executors.local import LocalExecutor

    local = LocalExecutor(tmp / "local")
    local_lat = measure(local, "n0", "h100", args.jobs, marks, "local")
    local.close()

    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        print(f"local executor: median {statistics.median(local_lat):.3f} s (Ray not installed)")
        return
    from accelpool.executors.ray import RayExecutor

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 80 * MB, "include_dashboard": False},
    )
    cluster.add_node(
        num_cpus=1,
        num_gpus=8,
        resources={"accelerator_type:H100": 8},
        object_store_memory=80 * MB,
        labels={"accelpool.io/node": "h100-0"},
    )
    cluster.add_node(
        num_cpus=1,
        resources={"FURIOSA": 8, "accelerator_type:FURIOSA_RNGD": 8},
        object_store_memory=80 * MB,
        labels={"accelpool.io/node": "rngd-0"},
    )
    ray.init(address=cluster.address, namespace="accelpool-bench", log_to_driver=False)
    try:
        rx = RayExecutor(
            namespace="accelpool-bench", log_dir=tmp / "ray-logs", remote_dir=str(tmp / "remote")
        )
        measure(rx, "h100-0", "h100", 1, marks, "warm")  # warm-up
        gpu = measure(rx, "h100-0", "h100", args.jobs, marks, "ray-gpu")
        npu = measure(rx, "rngd-0", "rngd", args.jobs, marks, "ray-npu")
        rx.close()
    finally:
        ray.shutdown()
        cluster.shutdown()  # type: ignore[no-untyped-call]

    lm = statistics.median(local_lat)
    for name, lat in (
        ("local executor", local_lat),
        ("ray executor, H100 node", gpu),
        ("ray executor, RNGD node", npu),
    ):
        m = statistics.median(lat)
        print(
            f"{name:28s} median {m:.3f} s  p90 {sorted(lat)[int(0.9 * (len(lat) - 1))]:.3f} s"
            f"  ({m / lm:.1f}x local)  n={len(lat)}"
        )
    print(
        "target: Ray median < 2 s:",
        "met" if max(statistics.median(gpu), statistics.median(npu)) < 2 else "NOT met",
    )


if __name__ == "__main__":
    main()
