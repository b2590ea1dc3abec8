"""Simulator benchmarks: quality against Gavel's published figures, and speed. Prints figures as ratios.

    python bench/bench_sim.py quality [--traces b436b2,6214e9]   # aware vs agnostic, vs Gavel's own result
    python bench/bench_sim.py speed [--jobs 1181]                 # one Gavel-format Philly VC trace
    python bench/bench_sim.py philly [--limit N]                  # the full 82,247-job Philly CSV, ~2,500 devices
    python bench/bench_sim.py peer --trace-file T --cluster 8:16:24 [--pairs aware,agnostic,fifo,ftf] [--repeats 3]
                                                                  # Gavel's simulator on the same trace, same run
    python bench/bench_sim.py gavel --gavel-cache G.jsonl --trace-file T --cluster C [--pairs ...]
                                                                  # Gavel's side alone, for peer --gavel-cache G.jsonl

``peer`` runs ../shared/baselines/gavel/simulate.sh (Gavel's own simulator, commit c4fa400; its setup.sh
builds a private venv once) and ours on the same trace and cluster, one policy pair at a time, and prints
average JCT, wall and CPU time of both and the ratios Gavel/ours (above 1: ours is better / faster), both
sides timed as whole processes (ours: ``accelpool simulate``, start-up and reading the trace included, as
simulate.sh includes Gavel's). Pairs:
aware = max-min-fairness vs max_min_fairness_perf, agnostic = fair-share vs max_min_fairness (LAS),
fifo = fifo vs fifo, ftf = finish-time-fairness vs finish_time_fairness_perf. A benchmark, not a test.
Targets are judged on wall time and on CPU time separately (never the kinder of the two).

A speed change must not change what the simulator decides: ``bench/sim_fingerprint.py`` hashes every
round's decision, every job's record and the timeline on a few traces (``--out`` before, ``--check``
after; docs/simulator.md).

Reads the traces from ../shared/traces when present (this machine's shared folder); says so and stops if
they are absent. Reference figures: ../shared/traces/gavel/REFERENCE-RESULTS.md (Gavel artifact, commit
c4fa400, seed 0, 360 s rounds, no restart overhead), copied below so the ratios print without it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from accelpool.core.policies import get_policy
from accelpool.core.round_config import RoundConfig
from accelpool.sim.engine import simulate
from accelpool.sim.gavel import read_gavel_trace
from accelpool.sim.metrics import compute
from accelpool.sim.philly import read_philly_csv
from accelpool.sim.workload import Workload

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
CLUSTER = {"v100": 36, "p100": 36, "k80": 36}
# trace: (Gavel agnostic avg JCT s, Gavel aware avg JCT s), from REFERENCE-RESULTS.md
GAVEL = {"b436b2": (121_666, 81_820), "6214e9": (553_839, 452_465), "11cb48": (70_991, 49_790)}
AWARE, AGNOSTIC = "max-min-fairness", "fair-share"


def need(path: Path) -> Path:
    if not path.exists():
        print(
            f"shared traces not found at {path}: this benchmark needs ../shared/traces (not in a user's clone)"
        )
        sys.exit(1)
    return path


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bare_loop_seconds(active: list[int], rounds_seconds: float = 360.0) -> float:
    """A same-run yardstick: a bare Python loop that touches every (round, active job) pair once, the least
    any round-based simulator in Python must do on these events. Its time tracks the machine's load."""
    t0 = time.perf_counter()
    progress: dict[int, float] = {}
    for n in active:
        for j in range(n):
            progress[j] = progress.get(j, 0.0) + rounds_seconds
    return time.perf_counter() - t0


LAST: dict[str, Any] = {}


def run(workload: Workload, policy: str) -> dict[str, Any]:
    # the literature's semantics (Gavel): the figures in docs/simulator.md compare with its published ones
    config = RoundConfig.per_round()
    r = simulate(workload, get_policy(policy), policy_name=policy, round_seconds=360.0, config=config)
    m = compute(r)
    print(
        f"  {policy:18s} avg JCT {m['avg_jct_seconds']:>10,.0f} s  done {m['jobs_completed']:>5}  rounds "
        f"{r.rounds:>6}  wall {r.wall_seconds:6.1f} s (policy {r.policy_seconds:5.1f} s)  "
        f"preemptions {m['preemptions']:,}",
        flush=True,
    )
    LAST["result"] = r
    return m


def quality(traces: list[str], baselines: list[str]) -> None:
    for name in traces:
        path = need(SHARED / "gavel" / "philly_vc" / f"{name}.trace")
        w = read_gavel_trace(path, CLUSTER)
        print(f"{name}: {len(w.jobs)} jobs on v100=36,p100=36,k80=36, 360 s rounds, no restart overhead")
        agn = run(w, AGNOSTIC)
        for extra in baselines:
            run(w, extra)
        awr = run(w, AWARE)
        g_agn, g_awr = GAVEL[name]
        ours = agn["avg_jct_seconds"] / awr["avg_jct_seconds"]
        print(
            f"  aware gain: ours {ours:.2f}x vs Gavel {g_agn / g_awr:.2f}x  -> "
            f"{'MEETS' if ours >= g_agn / g_awr - 1e-9 else 'MISSES'} target"
        )
        rel = g_awr / awr["avg_jct_seconds"]
        print(
            f"  ours aware vs Gavel aware: Gavel/ours = {rel:.2f}x  -> {'MEETS' if rel >= 1.0 else 'MISSES'} target"
        )
        print(f"  ours agnostic vs Gavel agnostic: Gavel/ours = {g_agn / agn['avg_jct_seconds']:.2f}x")


def speed(jobs: int, trace: str) -> None:
    path = need(SHARED / "gavel" / "philly_vc" / f"{trace}.trace")
    w = read_gavel_trace(path, CLUSTER)
    w = replace(w, jobs=w.jobs[:jobs])
    print(f"speed: first {len(w.jobs)} jobs of {trace}, {AWARE}; Gavel takes about 100 s for 1,181 jobs here")
    t0, c0 = time.perf_counter(), time.process_time()
    run(w, AWARE)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    bare = bare_loop_seconds(LAST["result"].timeline.active)
    print(
        f"  same run: bare Python loop over the same {sum(LAST['result'].timeline.active):,} job-rounds"
        f" {bare:.2f} s -> ours = {wall / bare:.0f}x that loop"
    )
    print(
        f"  wall {wall:.1f} s, CPU {cpu:.1f} s (CPU time is what a busy shared machine does not inflate)  ->"
        f" Gavel/ours = {100.0 / wall:.1f}x wall, {100.0 / cpu:.1f}x CPU; target: under 10 s"
        f" -> wall {'MEETS' if wall < 10 else 'MISSES'}, CPU {'MEETS' if cpu < 10 else 'MISSES'}"
        f"  max RSS {rss_mb():.0f} MB"
    )


def philly(limit: int | None, devices: int) -> None:
    path = need(SHARED / "philly" / "philly.csv")
    cap = {"v100": devices, "p100": devices, "k80": devices}
    t0 = time.perf_counter()
    w = read_philly_csv(path, cap, seed=0, limit=limit)
    print(
        f"philly: {len(w.jobs):,} jobs on {3 * devices:,} devices (3 types), read in {time.perf_counter() - t0:.1f} s"
    )
    t0, c0 = time.perf_counter(), time.process_time()
    run(w, AWARE)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    bare = bare_loop_seconds(LAST["result"].timeline.active)
    print(
        f"  same run: bare Python loop over the same {sum(LAST['result'].timeline.active):,} job-rounds"
        f" {bare:.2f} s -> ours = {wall / bare:.0f}x that loop"
    )
    print(
        f"  wall {wall:.1f} s ({'MEETS' if wall < 300 else 'MISSES'} 300 s), CPU {cpu:.1f} s"
        f" ({'MEETS' if cpu < 300 else 'MISSES'} 300 s)"
        f"  max RSS {rss_mb():.0f} MB (target: under 2,048 MB)"
    )


PAIRS = {
    "aware": ("max-min-fairness", "max_min_fairness_perf"),
    "agnostic": ("fair-share", "max_min_fairness"),
    "fifo": ("fifo", "fifo"),
    "ftf": ("finish-time-fairness", "finish_time_fairness_perf"),
}
GAVEL_SIM = Path(__file__).resolve().parents[1].parent / "shared" / "baselines" / "gavel" / "simulate.sh"


def run_gavel(gavel: Path, path: Path, cluster: str, gavel_name: str) -> dict[str, Any] | None:
    """Gavel's simulator once: its JSON line plus its CPU seconds (child rusage); None when it failed."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["bash", str(gavel), str(path), cluster, gavel_name],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    if out.returncode != 0:
        said = (out.stderr.strip() or out.stdout.strip()).splitlines()[-1:]
        # simulate.sh (set -e) exits without a word when Gavel's own script raises: say so
        why = said[0] if said else "no message (its simulate.sh hides the output of a run that raised)"
        print(f"Gavel failed ({gavel_name}, exit {out.returncode}): {why}")
        return None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    g: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    g["cpu_seconds"] = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    g.update(
        trace=path.name,
        cluster=cluster,
        load=os.getloadavg()[0],
        at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    return g


def gavel_only(trace_file: str, cluster: str, pairs: list[str], gavel: Path, cache: Path) -> None:
    """Gavel's side alone, appended to ``cache`` (one JSON line a run) for a later ``peer --gavel-cache``."""
    path = need(Path(trace_file))
    need(gavel)
    for pair in pairs:
        g = run_gavel(gavel, path, cluster, PAIRS[pair][1])
        if g is not None:
            with cache.open("a") as f:
                f.write(json.dumps(g) + "\n")
            print(json.dumps(g), flush=True)


def cached(cache: Path | None, path: Path, cluster: str, gavel_name: str) -> dict[str, Any] | None:
    if cache is None or not cache.exists():
        return None
    found = None
    for line in cache.read_text().splitlines():
        g = json.loads(line)
        if (g["trace"], g["cluster"], g["policy"]) == (path.name, cluster, gavel_name):
            found = g
    return found


def run_ours(path: Path, cluster: str, ours_name: str) -> dict[str, Any] | None:
    """Ours as a user runs it, the same quantity simulate.sh times for Gavel: ``accelpool simulate`` in a
    new process (interpreter start, imports, reading the trace, the simulation, the table and the JSON),
    wall from start to exit, CPU from the child's rusage; its average JCT and preemptions from the JSON.
    None when it failed."""
    spec = ",".join(f"{t}={c}" for t, c in zip(("v100", "p100", "k80"), cluster.split(":"), strict=True))
    exe = Path(sys.executable).parent / "accelpool"
    cli = [str(exe)] if exe.exists() else [sys.executable, "-c", "from accelpool.cli.main import run; run()"]
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "metrics.json"
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run(
            [
                *cli,
                "simulate",
                "--format",
                "gavel",
                "--trace",
                str(path),
                "--cluster",
                spec,
                "--policy",
                ours_name,
                "--round",
                "360",
                "--per-round",
                "--restart-overhead",
                "0",
                "--json",
                str(out),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
            print(f"ours failed ({ours_name}, exit {done.returncode}): {said[0] if said else 'no message'}")
            return None
        m: dict[str, Any] = json.loads(out.read_text())[ours_name]
    m["wall_seconds"] = wall
    m["cpu_seconds"] = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    return m


def peer(
    trace_file: str,
    cluster: str,
    pairs: list[str],
    gavel: Path,
    cache: Path | None = None,
    repeats: int = 1,
) -> None:
    """Ours and Gavel's simulator on the same trace and cluster, per policy pair.

    Both sides are timed as whole processes (``run_ours``: ``accelpool simulate``; Gavel's simulate.sh):
    start-up, imports and reading the trace count on both sides of the ratios. For where the time goes:
    "ours sim" is the simulation alone, run in this process (``simulate`` on a trace already read; its
    average JCT must equal the process's, checked), and each side's start-up is measured as its whole
    process on the trace's first job alone, cut to 100 steps ("less start": the wall ratio with both
    subtracted).

    Gavel runs in this run, unless ``cache`` (from ``gavel``) holds its result for the same trace,
    cluster and policy: then that is used and marked ``*`` (measured in another process, at the time
    and 1-minute load average the cache records; compare CPU seconds, not wall).

    ``repeats`` > 1: each pair's two processes run that many times, alternated (ours, Gavel, ours, ...),
    and the table shows each side's median seconds and the median of the per-repeat ratios, with the
    least and the most ratio after it (this kind of machine's speed wanders by a fifth within minutes:
    one process pair can land on either side of a target that a median does not)."""
    path = need(Path(trace_file))
    need(gavel)
    counts = [int(c) for c in cluster.split(":")]
    w = read_gavel_trace(path, dict(zip(("v100", "p100", "k80"), counts, strict=True)))
    print(f"peer: {path.name}, {len(w.jobs)} jobs, v100:p100:k80 = {cluster}, 360 s rounds, no overhead")
    print(
        "times: whole processes on both sides (ours: accelpool simulate; Gavel: simulate.sh); ratios Gavel/ours"
    )
    print(
        f"{'pair':>9} {'ours JCT s':>11} {'Gavel JCT s':>12} {'JCT G/ours':>10} {'ours wall':>9} "
        f"{'ours CPU':>8} {'Gavel wall':>10} {'wall G/ours':>11} {'Gavel CPU':>9} {'CPU G/ours':>10} "
        f"{'ours sim':>8} {'ours start':>10} {'Gavel start':>11} {'less start G/ours':>17} {'ours preempt':>12}"
    )
    scratch = tempfile.TemporaryDirectory()
    # each side's start-up: the trace's first job alone, with 100 steps to run (total_steps, the sixth
    # field), so that it ends in the first round (Gavel's simulator fails on a job of one step)
    first = path.read_text().splitlines()[0].split("\t")
    first[5] = "100"
    one = Path(scratch.name) / f"one-step-{path.name}"
    one.write_text("\t".join(first) + "\n")
    for pair in pairs:
        ours_name, gavel_name = PAIRS[pair]
        t0 = time.perf_counter()
        inproc = compute(
            simulate(
                w,
                get_policy(ours_name),
                policy_name=ours_name,
                round_seconds=360.0,
                config=RoundConfig.per_round(),
            )
        )
        sim_wall = time.perf_counter() - t0
        ours_runs: list[dict[str, Any]] = []
        gavel_runs: list[dict[str, Any]] = []
        g_cached = cached(cache, path, cluster, gavel_name)
        mark = "*" if g_cached is not None else ""
        for _ in range(max(1, repeats)):
            got = run_ours(path, cluster, ours_name)
            if got is None:
                break
            if got["avg_jct_seconds"] != inproc["avg_jct_seconds"]:
                print(
                    f"{pair}: the process's average JCT {got['avg_jct_seconds']} differs from this process's"
                    f" {inproc['avg_jct_seconds']}: not the same simulation"
                )
                break
            g_got = g_cached if g_cached is not None else run_gavel(gavel, path, cluster, gavel_name)
            if g_got is None:
                break
            ours_runs.append(got)
            gavel_runs.append(g_got)
        if len(ours_runs) < max(1, repeats):
            continue
        m, g = ours_runs[0], gavel_runs[0]
        wall = statistics.median(r["wall_seconds"] for r in ours_runs)
        cpu = statistics.median(r["cpu_seconds"] for r in ours_runs)
        g_wall = statistics.median(r["wall_seconds"] for r in gavel_runs)
        g_cpu = statistics.median(r["cpu_seconds"] for r in gavel_runs)
        wall_ratios = sorted(
            b["wall_seconds"] / a["wall_seconds"] for a, b in zip(ours_runs, gavel_runs, strict=True)
        )
        cpu_ratios = sorted(
            b["cpu_seconds"] / max(a["cpu_seconds"], 1e-9) for a, b in zip(ours_runs, gavel_runs, strict=True)
        )
        ours_jct = m["avg_jct_seconds"]
        o_one = run_ours(one, cluster, ours_name)
        g_one = None if mark else run_gavel(gavel, one, cluster, gavel_name)
        o_start = o_one["wall_seconds"] if o_one is not None else float("nan")
        g_start = g_one["wall_seconds"] if g_one is not None else float("nan")
        less = (g_wall - g_start) / max(wall - o_start, 1e-9)
        spread = (
            f"  (wall {wall_ratios[0]:.2f}-{wall_ratios[-1]:.2f}, CPU {cpu_ratios[0]:.2f}-{cpu_ratios[-1]:.2f},"
            f" {len(wall_ratios)} repeats)"
            if len(wall_ratios) > 1
            else ""
        )
        print(
            f"{pair:>9} {ours_jct:>11,.0f} {g['avg_jct_seconds']:>11,.0f}{mark:1} {g['avg_jct_seconds'] / ours_jct:>10.3f} "
            f"{wall:>9.1f} {cpu:>8.1f} {g_wall:>10.1f} {statistics.median(wall_ratios):>11.2f} {g_cpu:>9.1f} "
            f"{statistics.median(cpu_ratios):>10.2f} {sim_wall:>8.1f} {o_start:>10.1f} {g_start:>11.1f} {less:>17.2f} "
            f"{m['preemptions']:>12,}{spread}",
            flush=True,
        )
    scratch.cleanup()
    print(f"(load average now {os.getloadavg()[0]:.1f}; * = Gavel from --gavel-cache)")
    print(
        "ours sim: the simulation alone, in this process. start: each side's whole process on the trace's"
        " first job alone, cut to 100 steps; less start: the wall ratio with each side's start subtracted (a diagnostic:"
        " the targets are judged on the whole processes, wall and CPU)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["quality", "speed", "philly", "peer", "gavel", "all"])
    ap.add_argument("--gavel-cache", default=None, help="JSON lines of Gavel runs (written by `gavel`)")
    ap.add_argument(
        "--trace-file", default=str(SHARED / "gavel" / "physical_cluster" / "max_min_fairness.trace")
    )
    ap.add_argument("--cluster", default="8:16:24", help="v100:p100:k80 devices, as Gavel's -c")
    ap.add_argument("--pairs", default="aware,agnostic,fifo,ftf")
    ap.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="peer: each pair's two processes this many times, alternated; medians and the ratios' range",
    )
    ap.add_argument("--gavel", default=str(GAVEL_SIM), help="Gavel's simulate.sh (shared/baselines/gavel)")
    ap.add_argument("--traces", default="b436b2,6214e9,11cb48")
    ap.add_argument("--baselines", default="fifo", help="other agnostic policies to run alongside fair-share")
    ap.add_argument("--jobs", type=int, default=1181)
    ap.add_argument("--trace", default="b436b2")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--devices", type=int, default=840, help="devices per type for the Philly CSV")
    a = ap.parse_args()
    if a.what in ("quality", "all"):
        quality(
            [t.strip() for t in a.traces.split(",") if t.strip()], [b for b in a.baselines.split(",") if b]
        )
    if a.what in ("speed", "all"):
        speed(a.jobs, a.trace)
    if a.what in ("philly", "all"):
        philly(a.limit, a.devices)
    pairs = [p for p in a.pairs.split(",") if p]
    cache = Path(a.gavel_cache) if a.gavel_cache else None
    if a.what == "peer":
        peer(a.trace_file, a.cluster, pairs, Path(a.gavel), cache, a.repeats)
    if a.what == "gavel":
        if cache is None:
            ap.error("gavel needs --gavel-cache FILE")
        gavel_only(a.trace_file, a.cluster, pairs, Path(a.gavel), cache)


if __name__ == "__main__":
    main()
