"""One scheduling round on SqlStore (SQLite, and PostgreSQL when available): 10,000 queued jobs, 2,000
devices. Prints read / decide / write / total seconds. Target: total < 1 s.

    python bench/bench_round.py [--jobs 10000] [--devices 2000] [--postgres]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from accelpool.core.rounds import DecideCache, decide
from accelpool.core.types import Job, Node
from accelpool.service.server import get_policy
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore

TYPES = ("h100", "a100", "rngd", "rebel-quad")


def fill(store: SqlStore, jobs: int, devices: int) -> None:
    per = devices // len(TYPES) // 8
    store.add_nodes([Node(f"{t}-{i:04d}", t, 8) for t in TYPES for i in range(per)])
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
                "throughput": {t: 1.0 + (i % 7) / 3 for t in allowed},
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


def run(url: str, label: str, jobs: int, devices: int, policy: str) -> None:
    store = SqlStore(url)
    fill(store, jobs, devices)
    for k in range(2):  # round 1: everything new; round 2: steady state (mostly unchanged waits)
        r = one_round(store, policy, 1e6 + k)
        print(
            f"{label} round {k + 1}: {jobs} jobs x {devices} devices, policy {policy}: read {r['read']:.3f} s, "
            f"decide {r['decide']:.3f} s, write {r['write']:.3f} s, total {r['total']:.3f} s "
            f"({r['total'] / 1.0:.2f} x the 1 s target; started {r['started']:.0f}, waiting {r['waiting']:.0f})"
        )
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--devices", type=int, default=2_000)
    ap.add_argument("--policy", default="max-min-fairness")
    ap.add_argument("--postgres", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        run(sqlite_url(Path(d) / "round.sqlite"), "SQLite", a.jobs, a.devices, a.policy)
    if a.postgres:
        from accelpool.storage.pgserver import fresh_database, postgres_url

        base = postgres_url()
        if base:
            run(fresh_database(base), "PostgreSQL", a.jobs, a.devices, a.policy)


if __name__ == "__main__":
    main()
