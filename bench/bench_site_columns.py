"""Sites in the policy's problem (core.sites.site_columns): what they cost a round, same run, same inputs.

    python bench/bench_site_columns.py [--jobs 2000] [--devices 2000] [--repeat 5] [--policy max-min-fairness]
                                       [--quota N]

``decide`` at a lease boundary on one snapshot, timed as shipped ("columns") and with ``site_columns``
stubbed to return None ("pooled": the per-type problem of before, one column per type whatever the
sites), alternating, median CPU seconds of ``--repeat`` calls each (a fresh DecideCache every call):

- one site (every node at ``default``): site_columns finds nothing to split and returns None, so the
  policy solves the same problem; the ratio measures the check's overhead (target: no slower, ~1.00);
- two sites holding half of every type each, jobs of three data classes (public at both, financial at
  one only): the policy solves a problem with twice the type columns; the ratio is the price of per-site
  capacity and prices in the policy, printed with how many jobs each version started.

Jobs: per-job random speeds on two of four types (uniform 0.5-4 steps/s), gangs of 1-4 devices, 20
tenants. ``--quota N``: each tenant has a quota of N devices of every type, a program rule binding every
type: the policies of ``core.policies.RULES_OVER_SITES`` then split every type by site under quota rows
spanning its sites; the water-filling policies keep such types one column (so "columns" = "pooled").
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar
from unittest import mock

import numpy as np

from accelpool.core import rounds
from accelpool.core.rounds import DecideCache, JobStatus, Snapshot, decide
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Job, JobState, Node, Site, Tenant
from accelpool.service.server import get_policy

TYPES = ("h100", "a100", "rngd", "rebel-quad")
SITES = (
    Site("east", data_classes=frozenset({"public", "financial"}), prices={"h100": 3000}),
    Site("west", data_classes=frozenset({"public"}), prices={"h100": 5000}),
)


def snapshot(jobs: int, devices: int, two_sites: bool, quota: int = 0) -> Snapshot:
    per = devices // len(TYPES) // 8
    where = ("east", "west") if two_sites else ("default",)
    nodes = tuple(Node(f"{t}-{i:04d}", t, 8, site=where[i % len(where)]) for t in TYPES for i in range(per))
    rng = np.random.default_rng(0)
    speed = rng.uniform(0.5, 4.0, (jobs, len(TYPES)))
    statuses, rows = [], {}
    for i in range(jobs):
        klass = "financial" if two_sites and i % 3 == 0 else "public"
        job = Job(f"j{i:06d}", tenant=f"t{i % 20}", scale=1 + i % 4, submit_time=float(i), data_class=klass)
        statuses.append(JobStatus(job, JobState.QUEUED))
        rows[job.id] = {t: float(speed[i, k]) for k, t in enumerate(TYPES) if k in (i % 4, (i + 1) % 4)}
    tput = ThroughputMatrix.from_rows(rows, TYPES)
    return Snapshot(
        1e6,
        nodes,
        tuple(statuses),
        tput,
        sites=SITES if two_sites else (),
        prices_krw_per_hour=dict.fromkeys(TYPES, 4000),
        tenants=tuple(Tenant(f"t{g}", quota=dict.fromkeys(TYPES, quota) if quota else {}) for g in range(20)),
    )


R = TypeVar("R")


def cpu_of(fn: Callable[[], R]) -> tuple[float, R]:
    c0 = time.process_time()
    out = fn()
    return time.process_time() - c0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--policy", default="max-min-fairness")
    ap.add_argument("--quota", type=int, default=0, help="each tenant's quota of every type (devices)")
    args = ap.parse_args()
    policy = get_policy(args.policy)
    for two in (False, True):
        snap = snapshot(args.jobs, args.devices, two, args.quota)
        times: dict[str, list[float]] = {"pooled": [], "columns": []}
        started: dict[str, int] = {}
        for _ in range(args.repeat):
            for label in ("pooled", "columns"):
                with contextlib.ExitStack() as stack:
                    if label == "pooled":  # decide() as if no site split the types: site_columns says None
                        stack.enter_context(mock.patch.object(rounds, "site_columns", lambda *a, **k: None))
                    cpu, d = cpu_of(partial(decide, snap, policy, DecideCache()))
                times[label].append(cpu)
                started[label] = len(d.start)
        med = {k: statistics.median(v) for k, v in times.items()}
        what = "two sites, half of every type each" if two else "one site"
        print(
            f"{what}: {args.jobs} jobs x {args.devices} devices, {args.policy}, quota {args.quota}, "
            f"median CPU of {args.repeat}: "
            f"pooled {med['pooled']:.3f} s (started {started['pooled']}), columns {med['columns']:.3f} s "
            f"(started {started['columns']}); columns / pooled = {med['columns'] / med['pooled']:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
