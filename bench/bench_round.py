"""A whole Reconciler.step on SqlStore (SQLite, and PostgreSQL with --postgres): 10,000 queued jobs,
2,000 devices, per-job random speeds. Target: one step < 1 s.

    python bench/bench_round.py [--jobs 10000] [--devices 2000] [--postgres [--no-sqlite]] [--steps 3] [--ticks N]

What is timed is what ships: ``Reconciler.step`` (observe the executor's events, meter running jobs and
write their charges, snapshot, decide, record, act on the FakeExecutor), wall and CPU seconds per step;
with PostgreSQL on this machine also the server's CPU seconds for this database's connections (/proc), so
a loaded machine still shows what a step costs: client and server take turns (one statement at a time),
so client CPU + server CPU is about a lower bound of the wall time on a quiet machine. The database: a fresh one on ``$ACCELPOOL_TEST_POSTGRES_URL``'s server, else on a private
server started from the PostgreSQL binaries here (storage/pgserver.py).
Step 1 starts jobs from a cold queue; later steps (one round of 360 s later each) meter and bill the
running jobs and decide again. Every step is a lease boundary (the Reconciler's default lease,
``RoundConfig.lease_seconds``, is 360 s and the steps are 360 s apart), so these are also issue 10's
"whole step at a lease boundary". Speeds are drawn per job and per allowed type (uniform 0.5-4 steps/s), so
no two jobs share a row and the allocation LP does not collapse (a former version used 7 distinct rows).
For reference the same step's snapshot / decide / record parts are timed once more, separately.
The process collects garbage as the scheduler process does (``service.supervisor.settle_gc``: frozen
start-up objects, thresholds 20,000/20/50); ``--default-gc`` keeps Python's defaults for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from accelpool.core.rounds import DecideCache, decide
from accelpool.core.types import Job, Node
from accelpool.executors.fake import FakeExecutor
from accelpool.runtime.clock import VirtualClock
from accelpool.runtime.reconciler import Reconciler
from accelpool.service.server import get_policy
from accelpool.service.supervisor import settle_gc
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore

TYPES = ("h100", "a100", "rngd", "rebel-quad")


def fill(store: SqlStore, jobs: int, devices: int) -> None:
    per = devices // len(TYPES) // 8
    store.add_nodes([Node(f"{t}-{i:04d}", t, 8) for t in TYPES for i in range(per)])
    rng = np.random.default_rng(0)
    speed = rng.uniform(0.5, 4.0, (jobs, len(TYPES)))
    rows = []
    for i in range(jobs):
        allowed = TYPES[i % 4 : i % 4 + 2]
        job = Job(f"j{i:06d}", tenant=f"t{i % 20}", scale=1 + i % 4, submit_time=float(i))
        rows.append(
            {
                "id": job.id,
                "tenant": job.tenant,
                "name": job.id,
                "spec": codec.job_to_dict(job),
                "run": {},
                "throughput": {t: float(speed[i, TYPES.index(t)]) for t in allowed},
                "state": "queued",
                "active": True,
                "steps_done": 0.0,
                "seconds_on": {},
                "reason": "submitted",
                "submit_time": job.submit_time,
                "preemptions": 0,
                "attempts": 0,
                "reserved_krw": 0,
            }
        )
    with store.write() as c:
        c.execute(insert(T.jobs), rows)


CACHE = DecideCache()
"""Held across rounds, as the live Reconciler holds its own."""


def one_round(store: SqlStore, policy_name: str, now: float) -> dict[str, float]:
    policy = get_policy(policy_name)
    t0 = time.perf_counter()
    snap = store.snapshot(now, 360.0)
    t1 = time.perf_counter()
    decision = decide(snap, policy, CACHE)
    t2 = time.perf_counter()
    store.record_decision(decision)
    t3 = time.perf_counter()
    return {
        "read": t1 - t0,
        "decide": t2 - t1,
        "write": t3 - t2,
        "total": t3 - t0,
        "started": len(decision.start),
        "waiting": len(decision.waiting),
    }


def server_cpu(store: SqlStore) -> float | None:
    """PostgreSQL on this machine: CPU seconds (user + system) used so far by the server processes serving
    this database's clients (from /proc); None for SQLite or a server elsewhere. On a loaded machine wall
    time says little; client CPU + server CPU is what a step costs, whatever else runs."""
    if not store._pg:
        return None
    with store.read() as c:
        pids = c.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend'"
        ).scalars()
        total, tick = 0.0, os.sysconf("SC_CLK_TCK")
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def run(url: str, label: str, jobs: int, devices: int, policy: str, steps: int, ticks: int = 0) -> None:
    store = SqlStore(url)
    fill(store, jobs, devices)
    clock = VirtualClock(1e6)
    rec = Reconciler(store, FakeExecutor(clock), clock, get_policy(policy), round_seconds=360.0)
    for k in range(steps):
        s0 = server_cpu(store)
        w0, c0 = time.perf_counter(), time.process_time()
        report = rec.step()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        s1 = server_cpu(store)
        server = "" if s0 is None or s1 is None else f", server CPU {s1 - s0:.3f} s"
        print(
            f"{label} step {k + 1}: {jobs} jobs x {devices} devices, {policy}: Reconciler.step wall {wall:.3f} s, "
            f"CPU {cpu:.3f} s{server} -> {'MEETS' if wall < 1.0 else 'MISSES'} the 1 s target on wall "
            f"(started {len(report.decision.start)}, charges {len(report.charges)})",
            flush=True,
        )
        clock.advance(360.0)
    r = one_round(store, policy, clock.now())
    print(
        f"{label} parts of one more round: snapshot {r['read']:.3f} s, decide {r['decide']:.3f} s, "
        f"record {r['write']:.3f} s (wall)"
    )
    if ticks:
        # ticks between boundaries on this store's snapshots, with the Reconciler's own cache: the problem
        # arrays are reused while the snapshot hands out the same jobs, tenants, programs and throughput
        snaps, decides = [], []
        for _ in range(ticks):
            t0 = time.perf_counter()
            snap = replace(store.snapshot(clock.now(), 360.0), lease_boundary=False)
            t1 = time.perf_counter()
            decide(snap, rec.policy, rec._decide_cache, rec.config)
            snaps.append(t1 - t0)
            decides.append(time.perf_counter() - t1)
        print(
            f"{label} {ticks} ticks: snapshot median {statistics.median(snaps):.3f} s, tick decide median "
            f"{statistics.median(decides):.3f} s (min {min(decides):.3f} s)"
        )
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--devices", type=int, default=2_000)
    ap.add_argument("--policy", default="max-min-fairness")
    ap.add_argument("--postgres", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only (with --postgres)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--ticks", type=int, default=0, help="then time this many tick decides (no policy)")
    ap.add_argument(
        "--default-gc",
        action="store_true",
        help="keep Python's collector settings (not the scheduler process's)",
    )
    a = ap.parse_args()
    if not a.default_gc:
        settle_gc()  # the scheduler process's collector settings (service/supervisor.py), as it runs a step
    with tempfile.TemporaryDirectory() as d:
        if not a.no_sqlite:
            run(sqlite_url(Path(d) / "round.sqlite"), "SQLite", a.jobs, a.devices, a.policy, a.steps, a.ticks)
    if a.postgres:
        from accelpool.storage.pgserver import fresh_database, postgres_url

        base = postgres_url()
        if base:
            run(fresh_database(base), "PostgreSQL", a.jobs, a.devices, a.policy, a.steps, a.ticks)


if __name__ == "__main__":
    main()
