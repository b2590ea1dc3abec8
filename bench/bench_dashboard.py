"""Dashboard pages, server-side, with a large history: every page of /ui for an admin, a program manager
and a member, with N jobs in the store (default 100,000: finished, running and queued, a charge and up to
three events each, 1,280 devices), against the same pages with a small history (1,000 jobs) measured in the same run.

    python bench/bench_dashboard.py [--jobs 100000] [--small 1000] [--repeat 5]
    python bench/bench_dashboard.py --url postgresql+psycopg://user@host/db   # an EMPTY PostgreSQL database
    python bench/bench_dashboard.py --keep /tmp/dash   # SQLite files kept there and reused (seeded once)
    python bench/bench_dashboard.py --searches   # only the job searches, now and as before migration 0012

SQLite (the embedded default) in a temporary directory unless ``--keep``; with ``--url`` the large store is
that database (it must be empty: the bench seeds it, runs VACUUM ANALYZE as autovacuum would after a bulk
load, and drops its tables at the end) and the small one SQLite. Each store has a queue view (the latest
round's order and start ranges), as a running service has. The seed writes ``jobs.accepts`` only where
the schema has it, so the same bench also runs against a tree from before migration 0012 (before/after).

Each request goes through the whole ASGI app in-process (FastAPI's TestClient: routing, auth, queries,
templates), so the figure is the server's time for the page without the network. Printed per page: the
median and worst of ``--repeat`` requests in ms, and the ratio to the small store's median (how much the
page slows down with 100 times the history). Target: every page < 300 ms with 100,000 jobs.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from accelpool.api.app import Hooks, create_app
from accelpool.core.types import Grant, Job, Node, Program, Tenant
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore

NOW = 1_790_000_000.0
TYPES = ("h100", "a100", "rngd", "atom")
TARGET_MS = 300.0


def spec_of(row: dict[str, Any]) -> dict[str, Any]:
    return dict(row["spec"])


def seed(store: SqlStore, n: int, rng: random.Random) -> dict[str, str]:
    store.add_nodes([Node(f"{t}-{k}", t, 8) for t in TYPES for k in range(40)])  # 1,280 devices
    store.set_node_down("h100-0")
    store.set_prices({"h100": 4000, "a100": 3000, "rngd": 1200, "atom": 1000})
    tenants = [f"t{k:02d}" for k in range(20)]
    for t in tenants:
        store.add_tenant(Tenant(t, t.upper()))
    for p in ("p0", "p1", "p2"):
        store.add_program(Program(p, p.upper(), 10**12))
    for k, t in enumerate(tenants):
        store.add_grant(Grant(f"g{k:02d}", f"p{k % 3}", t, 10**10, start=NOW - 90 * 86400))
    jobs, charges, events = [], [], []
    for i in range(n):
        tenant = tenants[i % len(tenants)]
        grant = f"g{i % len(tenants):02d}"
        acc = TYPES[i % len(TYPES)]
        kind = "training" if acc in ("h100", "a100") else "inference"
        submit = NOW - 60 * 86400 * (1 - i / n)
        r = i % 200  # 0.5% running (1,000 devices of 1,280 at 100,000 jobs), 3% queued, 2.5% failed,
        state = (  # 4% cancelled, the rest succeeded
            "running"
            if r < 1
            else "queued"
            if r < 7
            else "failed"
            if r < 12
            else "cancelled"
            if r < 20
            else "succeeded"
        )
        job = Job(
            f"j{i:07d}", tenant=tenant, submit_time=submit, allowed=frozenset((acc,)), scale=2, grant=grant
        )
        spec = {**codec.job_to_dict(job), "kind": kind}
        start = submit + rng.uniform(10, 3600) if state != "queued" else None
        end = start + rng.uniform(600, 6 * 3600) if start is not None and state not in ("running",) else None
        jobs.append(
            {
                "id": job.id,
                "tenant": tenant,
                "name": f"job-{i}",
                "spec": spec,
                "run": {"command": "python x.py"},
                "throughput": {acc: 1.0},
                "state": state,
                "active": state in ("running", "queued"),
                "placement": {"accelerator": acc, "devices": [[f"{acc}-1", [0, 1]]]}
                if state == "running"
                else None,
                "steps_done": 0.0,
                "seconds_on": {},
                "reason": "capacity" if state == "queued" else "exited 0",
                "submit_time": submit,
                "start_time": start,
                "end_time": end,
                "preemptions": 0,
                "attempts": 1,
                "reserved_krw": 0,
                "priority": 0,
                "grant_id": grant,
            }
        )
        events.append({"job": job.id, "time": submit, "state": "queued", "reason": "submitted"})
        if start is not None:
            events.append(
                {"job": job.id, "time": start, "state": "running", "reason": f"placed on 2 x {acc}"}
            )
            stop = end if end is not None else NOW - 60
            secs = 2 * (stop - start)
            charges.append(
                {
                    "job": job.id,
                    "tenant": tenant,
                    "grant": grant,
                    "program": f"p{(i % len(tenants)) % 3}",
                    "accelerator": acc,
                    "device_seconds": secs,
                    "amount_krw": int(secs / 3600 * 4000),
                    "start": start,
                    "end": stop,
                }
            )
        if end is not None:
            events.append({"job": job.id, "time": end, "state": state, "reason": "exited 0"})
    if "accepts" in T.jobs.c:  # (absent before migration 0012: the bench also runs against older trees)
        for row in jobs:
            row["accepts"] = codec.accepts_text(spec_of(row)["allowed"])
    # the latest round's queue, as a running service has one: fair order (here submission order), place in
    # the tenant, an estimated start range
    waiting = [r for r in jobs if r["state"] == "queued"]
    per_tenant: dict[str, int] = {}
    view: dict[str, list[float]] = {}
    for pos, w in enumerate(waiting):
        tenant_of = str(w["tenant"])
        per_tenant[tenant_of] = per_tenant.get(tenant_of, 0) + 1
        view[str(w["id"])] = [pos + 1, per_tenant[tenant_of], 0, NOW + 60 * pos, NOW + 600 * pos]
    for w in waiting:
        view[str(w["id"])][2] = per_tenant[str(w["tenant"])]
    with store.write() as c:
        for table, rows in ((T.jobs, jobs), (T.charges, charges), (T.job_events, events)):
            for k in range(0, len(rows), 10_000):
                c.execute(insert(table), rows[k : k + 10_000])
        data = json.dumps({"of": len(waiting), "jobs": view})
        c.execute(insert(T.queue_view).values(id=1, at=NOW, version=1, data=data))
    store.invalidate()
    if hasattr(store, "index_text"):  # SQLite (0014): the rows written here are indexed, as the service's
        store.index_text()  # group-commit writer does after a quiet second (absent in older trees)
    if store.engine.dialect.name == "postgresql":
        # what autovacuum does within about a minute of a bulk load: planner statistics and the visibility
        # map (index-only scans); without them the first minute's plans are seq scans and sorts
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    return {
        "admin": store.create_token("admin", name="root")[1],
        "program-manager": store.create_token("program-manager", name="pm", program="p1")[1],
        "member": store.create_token("member", name="m", tenant="t01")[1],
    }


PAGES = (
    "/ui",
    "/ui/jobs",
    "/ui/jobs?page=500",
    "/ui/jobs?state=succeeded&sort=name",
    "/ui/jobs?q=job-4242&type=h100",
    "/ui/jobs?program=p1&since=2026-08-01",
    "/ui/jobs/j0000021",
    "/ui/programs",
    "/ui/pool",
)


def measure(url: str, n: int, repeat: int) -> dict[tuple[str, str], list[float]]:
    store = SqlStore(url)
    with store.read() as c:
        seeded = c.execute(select(func.count()).select_from(T.jobs)).scalar_one() == n
    if seeded:  # a kept store from an earlier run: fresh tokens only
        tokens = {
            "admin": store.create_token("admin", name="root")[1],
            "program-manager": store.create_token("program-manager", name="pm", program="p1")[1],
            "member": store.create_token("member", name="m", tenant="t01")[1],
        }
    else:
        tokens = seed(store, n, random.Random(7))
    logs = "\n".join(f"line {k}" for k in range(5000))
    client = TestClient(create_app(store, hooks=Hooks(now=lambda: NOW, logs=lambda _j: logs)))
    out: dict[tuple[str, str], list[float]] = {}
    for role, secret in tokens.items():
        h = {"Authorization": f"Bearer {secret}", "Accept-Language": "ko"}
        for path in PAGES:
            client.get(path, headers=h)  # warm caches (token, templates)
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                r = client.get(path, headers=h)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code in (200, 404), (role, path, r.status_code)
            out[(role, path)] = times
    store.close()
    return out


# The job searches that grew with the history before migration 0012, in the form the dashboard sends them
# now (``jobs.accepts``, the narrow ``ix_jobs_search``) and in the form it sent before (the type as a LIKE
# over the JSON spec; the table's rows scanned: SQLite's ``NOT INDEXED`` gives the plan it had then).
_LIKE = "'%job-4242%' ESCAPE '\\'"
SEARCHES = {
    "admin: text search + type": (
        f"SELECT seq FROM jobs WHERE (name LIKE {_LIKE} OR id LIKE {_LIKE}) AND accepts LIKE '%|h100|%' "
        "ORDER BY seq DESC LIMIT 51",
        f"SELECT seq FROM jobs NOT INDEXED WHERE (name LIKE {_LIKE} OR id LIKE {_LIKE}) "
        "AND CAST(spec AS VARCHAR) LIKE '%\"h100\"%' ORDER BY seq DESC LIMIT 51",
    ),
    "admin: text search": (
        f"SELECT seq FROM jobs WHERE name LIKE {_LIKE} OR id LIKE {_LIKE} ORDER BY seq DESC LIMIT 51",
        f"SELECT seq FROM jobs NOT INDEXED WHERE name LIKE {_LIKE} OR id LIKE {_LIKE} ORDER BY seq DESC LIMIT 51",
    ),
    # migration 0013: the text search through the trigram index (FTS5 ``jobs_text``) vs 0012's LIKE over
    # ix_jobs_search; a rare text (11 jobs), a common one (about 11% of the jobs) and one in every job
    **{
        f"admin: text '{q}' (0013 vs 0012)": (
            "SELECT jobs.seq FROM jobs JOIN jobs_text ON jobs_text.rowid = jobs.seq "
            f"WHERE (jobs.name LIKE '%{q}%' ESCAPE '\\' OR jobs.id LIKE '%{q}%' ESCAPE '\\') "
            f"AND jobs_text MATCH '\"{q}\"' ORDER BY jobs_text.rowid DESC LIMIT 51",
            f"SELECT seq FROM jobs WHERE name LIKE '%{q}%' ESCAPE '\\' OR id LIKE '%{q}%' ESCAPE '\\' "
            "ORDER BY seq DESC LIMIT 51",
        )
        for q in ("job-4242", "job-1", "job-")
    },
    "admin: text 'job-' counted (0013 vs 0012)": (
        "SELECT count(*) FROM (SELECT jobs.seq FROM jobs JOIN jobs_text ON jobs_text.rowid = jobs.seq "
        "WHERE (jobs.name LIKE '%job-%' ESCAPE '\\' OR jobs.id LIKE '%job-%' ESCAPE '\\') "
        "AND jobs_text MATCH '\"job-\"' LIMIT 10001)",
        "SELECT count(*) FROM (SELECT seq FROM jobs WHERE name LIKE '%job-%' ESCAPE '\\' "
        "OR id LIKE '%job-%' ESCAPE '\\' LIMIT 10001)",
    ),
    "admin: type, counted to 10,001": (
        "SELECT count(*) FROM (SELECT seq FROM jobs WHERE accepts LIKE '%|h100|%' LIMIT 10001)",
        "SELECT count(*) FROM (SELECT seq FROM jobs NOT INDEXED WHERE CAST(spec AS VARCHAR) LIKE "
        "'%\"h100\"%' LIMIT 10001)",
    ),
    "admin: typed page 500": (
        "SELECT seq FROM jobs ORDER BY seq DESC LIMIT 51 OFFSET 24950",
        "SELECT seq FROM jobs NOT INDEXED ORDER BY seq DESC LIMIT 51 OFFSET 24950",
    ),
    "admin: typed page 1,900": (
        "SELECT seq FROM jobs ORDER BY seq DESC LIMIT 51 OFFSET 94950",
        "SELECT seq FROM jobs NOT INDEXED ORDER BY seq DESC LIMIT 51 OFFSET 94950",
    ),
}


def search_ab(url: str, n: int, repeat: int) -> None:
    """The searches above, now and as before, alternated in one process on one SQLite store (so the load
    of the machine falls on both alike); medians and best of ``repeat``, and before / now."""
    store = SqlStore(url)
    with store.read() as c:
        if c.execute(select(func.count()).select_from(T.jobs)).scalar_one() != n:
            seed(store, n, random.Random(7))
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        print(f"job searches, {n:,} jobs (sqlite), ms: now (ix_jobs_search, jobs.accepts) vs before (0011)")
        print(f"{'search':<34} {'now':>8} {'before':>8} {'best now':>9} {'best bef':>9} {'before/now':>11}")
        for name, (now_sql, old_sql) in SEARCHES.items():
            times: dict[str, list[float]] = {"now": [], "old": []}
            for _ in range(repeat):
                for key, sql in (("now", now_sql), ("old", old_sql)):
                    t0 = time.perf_counter()
                    cur.execute(sql).fetchall()
                    times[key].append((time.perf_counter() - t0) * 1000)
            a, b = statistics.median(times["now"]), statistics.median(times["old"])
            print(
                f"{name:<34} {a:8.1f} {b:8.1f} {min(times['now']):9.1f} {min(times['old']):9.1f} {b / a:10.1f}x"
            )
    finally:
        raw.close()
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--small", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--url", default="", help="the large store in this (empty) database instead of SQLite")
    ap.add_argument("--keep", default="", help="keep the SQLite files in this folder and reuse them")
    ap.add_argument(
        "--searches", action="store_true", help="only the job searches, now and as before (SQLite)"
    )
    a = ap.parse_args()
    if a.searches:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(a.keep or tmp)
            d.mkdir(parents=True, exist_ok=True)
            search_ab(sqlite_url(d / f"big-{a.jobs}.sqlite"), a.jobs, max(a.repeat, 11))
        return
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(a.keep or tmp)
        d.mkdir(parents=True, exist_ok=True)
        small = measure(sqlite_url(d / f"small-{a.small}.sqlite"), a.small, a.repeat)
        try:
            big = measure(a.url or sqlite_url(d / f"big-{a.jobs}.sqlite"), a.jobs, a.repeat)
        finally:
            if a.url:  # leave the database empty, as it was given
                store = SqlStore(a.url)
                T.metadata.drop_all(store.engine)
                with store.engine.begin() as c:
                    c.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
                store.close()
    worst = 0.0
    where = a.url.split("://")[0] if a.url else "sqlite"
    print(
        f"dashboard pages, server-side, {a.jobs:,} jobs ({where}) vs {a.small:,} (sqlite) (ms; median / worst of {a.repeat})"
    )
    print(f"{'role':<16} {'page':<40} {'median':>8} {'worst':>8} {'x small':>8}")
    for (role, path), times in big.items():
        med, mx = statistics.median(times), max(times)
        base = statistics.median(small[(role, path)])
        worst = max(worst, mx)
        print(f"{role:<16} {path:<40} {med:8.1f} {mx:8.1f} {med / base:8.2f}")
    verdict = "meets" if worst < TARGET_MS else "MISSES"
    print(f"slowest page: {worst:.1f} ms; {verdict} the target (< {TARGET_MS:.0f} ms per page)")


if __name__ == "__main__":
    main()
