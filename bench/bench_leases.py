"""Live lease semantics against per-round re-decision, and the cost of a tick. Prints ratios from one run.

    python bench/bench_leases.py compare [--traces b436b2,6214e9,11cb48] [--overheads 0,60] [--jobs N]
                                         [--policy max-min-fairness] [--live-fairness tenant|job]
    python bench/bench_leases.py tick [--queued 10000] [--devices 2000]

compare: each Gavel Philly trace (../shared/traces/gavel/philly_vc; the fixture
tests/fixtures/traces/gavel_b436b2_head60.trace when the shared traces are absent) on v100=36,p100=36,k80=36
with 360 s rounds, under per-round re-decision (``RoundConfig.per_round()``: today's simulator, Gavel's)
and the live semantics (``RoundConfig(lease_seconds=360, restart_seconds=overhead)``: preemption only at a
lease boundary, past a minimum run of two leases, only when the gain pays the restart, a running job keeps
its type; tenant fairness), with a restart overhead of 0 and 60 s. Prints average JCT, preemptions and
device-hours lost to restarts, side by side, and whether the live one wins on all three at 60 s. The
traces have one tenant (``default``): there tenant fairness weighs jobs exactly as the per-round side's
per-job fairness (core.problem.hierarchical_weights), so the two sides differ in the lease semantics only
(``--live-fairness job`` runs the live side with per-job fairness explicitly).

tick: 10,000 queued jobs with random per-job speeds on 2,000 devices (250 nodes of 8, 4 types), a decide()
that only back-fills (a tick) and one at a lease boundary (policy + placement, split into the policy's
time and the rest's), each after a warm-up call, then a tick right after one more job arrived (the problem arrays are built again),
then the next lease boundary with that job (max-min-fairness starts from the last boundary's prices,
DecideCache.warm_start; the first boundary had none); the same-run
yardstick is a bare Python loop over the queued jobs' speed rows.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import replace
from pathlib import Path

from accelpool.core.policies import get_policy
from accelpool.core.round_config import RoundConfig
from accelpool.core.rounds import DecideCache, JobStatus, Placement, Snapshot, decide
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Job, JobState, Node, Tenant
from accelpool.sim.engine import simulate
from accelpool.sim.gavel import read_gavel_trace
from accelpool.sim.metrics import compute

ROOT = Path(__file__).resolve().parents[1]
# ../shared next to the repository (a clone), or two levels up (a worktree under wt/)
SHARED = (
    next(
        (p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if (p / "traces").exists()),
        ROOT.parent / "shared",
    )
    / "traces"
    / "gavel"
    / "philly_vc"
)
FIXTURE = ROOT / "tests" / "fixtures" / "traces" / "gavel_b436b2_head60.trace"
CLUSTER = {"v100": 36, "p100": 36, "k80": 36}


def compare(
    traces: list[str],
    jobs: int | None,
    policy: str,
    overheads: tuple[float, ...] = (0.0, 60.0),
    live_fairness: str = "tenant",
) -> None:
    paths = [SHARED / f"{t}.trace" for t in traces] if SHARED.exists() else [FIXTURE]
    if not SHARED.exists():
        print(f"shared traces not found at {SHARED}: using the fixture {FIXTURE.name}")
    for path in paths:
        w = read_gavel_trace(path, CLUSTER)
        if jobs is not None:
            w = replace(w, jobs=w.jobs[:jobs])
        print(f"{path.stem}: {len(w.jobs)} jobs, {policy}, v100=36,p100=36,k80=36, 360 s rounds", flush=True)
        for overhead in overheads:
            rows = {}
            for name, config in (
                ("per-round", RoundConfig.per_round()),
                (
                    "live",
                    RoundConfig(
                        lease_seconds=360.0,
                        restart_seconds=overhead,
                        fairness="job" if live_fairness == "job" else "tenant",
                    ),
                ),
            ):
                t0 = time.perf_counter()
                r = simulate(
                    w,
                    get_policy(policy),
                    policy_name=name,
                    round_seconds=360.0,
                    restart_overhead_seconds=overhead,
                    config=config,
                )
                m = compute(r)
                rows[name] = m
                print(
                    f"  overhead {overhead:3.0f} s  {name:9s}  avg JCT {m['avg_jct_seconds']:>10,.0f} s  "
                    f"preemptions {m['preemptions']:>6,}  device-hours lost {m['device_hours_lost_to_restarts']:>8,.1f}"
                    f"  done {m['jobs_completed']}/{len(w.jobs)}  wall {time.perf_counter() - t0:5.1f} s",
                    flush=True,
                )
            old, new = rows["per-round"], rows["live"]
            jct = old["avg_jct_seconds"] / new["avg_jct_seconds"]
            wins = (
                new["avg_jct_seconds"] <= old["avg_jct_seconds"]
                and new["preemptions"] <= old["preemptions"]
                and new["device_hours_lost_to_restarts"] <= old["device_hours_lost_to_restarts"]
            )
            verdict = (
                ("live wins on all three" if wins else "live does NOT win on all three") if overhead else ""
            )
            print(
                f"  overhead {overhead:3.0f} s: per-round/live avg JCT = {jct:.3f}x, preemptions "
                f"{old['preemptions']:,} -> {new['preemptions']:,}  {verdict}",
                flush=True,
            )


def tick(queued: int, devices: int) -> None:
    rng = random.Random(0)
    types = ("h100", "a100", "l40s", "rngd")
    nodes = tuple(Node(f"{types[i % 4]}-{i:04d}", types[i % 4], 8) for i in range(devices // 8))
    tenants = tuple(Tenant(f"t{g}", weight=float(1 + g % 3)) for g in range(20))
    jobs = [
        Job(
            f"j{k:05d}",
            tenant=f"t{k % 20}",
            scale=rng.choice((1, 1, 1, 2, 4, 8)),
            submit_time=float(k) * 0.01,
        )
        for k in range(queued)
    ]
    rows = {
        j.id: {t: rng.uniform(0.2, 4.0) for t in types if rng.random() < 0.8} or {"h100": 1.0} for j in jobs
    }
    tput = ThroughputMatrix.from_rows(rows, types)
    # the pool full: devices held by running jobs of one device each, the queue behind them
    running = []
    for n in nodes:
        for d in range(8):
            job = Job(f"r-{n.name}-{d}", tenant=f"t{d}", submit_time=0.0)
            running.append(
                JobStatus(job, JobState.RUNNING, Placement(job.id, n.accelerator, ((n.name, (d,)),)))
            )
    # every 10th running job has just ended: its device is idle for the tick to back-fill
    running = running[: len(running) - len(running) // 10]
    all_rows = {**rows, **{s.job.id: {s.placement.accelerator: 1.0} for s in running if s.placement}}
    tput = ThroughputMatrix.from_rows(all_rows, types)
    statuses = tuple(running) + tuple(JobStatus(j, JobState.QUEUED) for j in jobs)
    started = {s.job.id: 0.0 for s in running}
    lp = get_policy("max-min-fairness")
    in_policy = [0.0]

    def policy(problem):  # type: ignore[no-untyped-def]
        """The policy, timed: the lease boundary's time is split into the policy's and the rest's."""
        t = time.perf_counter()
        try:
            return lp(problem)
        finally:
            in_policy[0] += time.perf_counter() - t

    cache = DecideCache()
    config = RoundConfig()

    accelerators: dict[str, object] = {}  # one mapping, as a store hands out (the problem cache keys on it)

    def snap(boundary: bool) -> Snapshot:
        return Snapshot(
            1000.0,
            nodes,
            statuses,
            tput,
            accelerators=accelerators,  # type: ignore[arg-type]
            tenants=tenants,
            round_seconds=3.0,
            lease_boundary=boundary,
            run_started=started,
            lease_end=1300.0,
        )

    t0 = time.perf_counter()
    loop = 0.0
    for j in jobs:
        loop += sum(rows[j.id].values())
    bare = time.perf_counter() - t0
    decide(snap(False), policy, cache, config)  # warm-up: builds the problem arrays
    t0 = time.perf_counter()
    tick = decide(snap(False), policy, cache, config)
    tick_s = time.perf_counter() - t0
    in_policy[0] = 0.0
    t0 = time.perf_counter()
    b = decide(snap(True), policy, cache, config)
    lease_s = time.perf_counter() - t0
    policy_s = in_policy[0]
    # a tick right after a job arrived: the problem arrays are built again (the cache keys on the job set)
    statuses = statuses + (JobStatus(Job("late", tenant="t0", submit_time=999.0), JobState.QUEUED),)
    tput = ThroughputMatrix.from_rows({**all_rows, "late": {"h100": 1.0}}, types)
    t0 = time.perf_counter()
    decide(snap(False), policy, cache, config)
    rebuilt_s = time.perf_counter() - t0
    # the next lease boundary (one more job queued): the policy starts from the last boundary's prices
    in_policy[0] = 0.0
    t0 = time.perf_counter()
    decide(snap(True), policy, cache, config)
    again_s = time.perf_counter() - t0
    again_policy_s = in_policy[0]
    print(f"{queued:,} queued, {len(running):,} running on {devices:,} devices ({len(nodes)} nodes, 4 types)")
    print(
        f"  tick (back-fill only): {tick_s:.3f} s, started {len(tick.start)}, preempted {len(tick.preempt)}  (target < 0.2 s)"
    )
    print(f"  tick right after an arrival (problem arrays rebuilt): {rebuilt_s:.3f} s")
    print(
        f"  lease boundary (policy + placement): {lease_s:.3f} s, started {len(b.start)}, preempted {len(b.preempt)}"
        "  (target < 1 s)"
    )
    print(
        f"    of which the policy (max-min-fairness) {policy_s:.3f} s ({policy_s / lease_s:.0%}), the rest "
        f"(problem, sites, pinned, pair order, placement, reasons, queue view) {lease_s - policy_s:.3f} s"
    )
    print(
        f"  next lease boundary (one more job; the policy warm-started from the last boundary's prices): "
        f"{again_s:.3f} s, of which the policy {again_policy_s:.3f} s  (target < 1 s)"
    )
    print(
        f"  same run: bare Python loop over {queued:,} speed rows {bare:.4f} s -> tick = {tick_s / bare:.0f}x that loop"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--traces", default="b436b2,6214e9,11cb48")
    c.add_argument("--jobs", type=int, default=None)
    c.add_argument("--policy", default="max-min-fairness")
    c.add_argument("--overheads", default="0,60", help="restart overheads (s), comma-separated")
    c.add_argument(
        "--live-fairness",
        choices=("tenant", "job"),
        default="tenant",
        help="the live side's fairness (default tenant, the live default; job: Gavel's per-job weights)",
    )
    t = sub.add_parser("tick")
    t.add_argument("--queued", type=int, default=10_000)
    t.add_argument("--devices", type=int, default=2_000)
    a = ap.parse_args()
    if a.cmd == "compare":
        overheads = tuple(float(x) for x in a.overheads.split(",") if x)
        compare([x for x in a.traces.split(",") if x], a.jobs, a.policy, overheads, a.live_fairness)
    else:
        tick(a.queued, a.devices)


if __name__ == "__main__":
    main()
