"""HTTP benchmarks against a real `accelpool up` subprocess (fake executor, so only the control plane is
measured): submissions/s and p99 latency from concurrent clients; paginated listing of 100,000 jobs.

    python bench/bench_api.py [--seconds 10] [--clients 16] [--list-jobs 100000] [--postgres]
Targets: >= 1,000 submissions/s with p99 < 50 ms on SQLite; < 0.2 s per page of the listing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import insert

from accelpool.core.types import Job
from accelpool.service.process import ServerProcess
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.sql import SqlStore


def setup(url: str, token: str) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
        c.post("/api/v1/tenants", json={"id": "bench"})
        c.post("/api/v1/programs", json={"id": "bp", "budget_krw": 10**12})
        c.post("/api/v1/grants", json={"program": "bp", "tenant": "bench", "amount_krw": 10**11})
        c.post("/api/v1/nodes", json={"name": "n0", "accelerator": "h100", "devices": 8})
        secret = c.post("/api/v1/tokens", json={"role": "member", "tenant": "bench"}).json()["secret"]
    Path(".bench-token").write_text(secret)


def submissions(url: str, token: str, seconds: float, clients: int) -> tuple[float, float, float]:
    lat: list[float] = []
    ok = [0]
    end = time.perf_counter() + seconds
    lock = threading.Lock()

    def worker(n: int) -> None:
        mine, count = [], 0
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
            i = 0
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                r = c.post("/api/v1/jobs", json={"name": f"b{n}-{i}", "command": "true"})
                mine.append(time.perf_counter() - t0)
                count += r.status_code == 201
                i += 1
        with lock:
            lat.extend(mine)
            ok[0] += count

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat.sort()
    return ok[0] / wall, lat[int(len(lat) * 0.99) - 1] * 1000, statistics.median(lat) * 1000


def bulk_jobs(db_url: str, n: int) -> None:
    store = SqlStore(db_url)
    rows = []
    for i in range(n):
        job = Job(f"x{i:07d}", tenant="bench", submit_time=float(i))
        rows.append({"id": job.id, "tenant": "bench", "name": job.id, "spec": codec.job_to_dict(job), "run": {},
                     "throughput": {"h100": 1.0}, "state": "succeeded", "active": False, "steps_done": 0.0,
                     "seconds_on": {}, "reason": "exited 0", "submit_time": job.submit_time, "preemptions": 0,
                     "attempts": 1, "reserved_krw": 0})
    with store.write() as c:
        for k in range(0, n, 10_000):
            c.execute(insert(T.jobs), rows[k:k + 10_000])
    store.close()


def listing(url: str, token: str, pages: int) -> tuple[float, float, int]:
    times, seen, cursor = [], 0, None
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        for _ in range(pages):
            t0 = time.perf_counter()
            page = c.get("/api/v1/jobs", params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
            times.append(time.perf_counter() - t0)
            seen += len(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
    return max(times), statistics.mean(times), seen


def run(label: str, db_url: str | None, a: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        data.mkdir()
        args = ["--executor", "fake", "--round-seconds", "30"] + (["--database-url", db_url] if db_url else [])
        server = ServerProcess(data, *args).start()
        try:
            admin = (data / "admin-token").read_text().strip()
            setup(server.url, admin)
            token = Path(".bench-token").read_text().strip()
            rate, p99, p50 = submissions(server.url, token, a.seconds, a.clients)
            print(f"{label}: {rate:,.0f} submissions/s over HTTP from {a.clients} clients "
                  f"({rate / 1000:.2f} x the 1,000/s target), p50 {p50:.1f} ms, p99 {p99:.1f} ms "
                  f"({p99 / 50:.2f} x the 50 ms limit)")
            bulk_jobs(db_url or f"sqlite+pysqlite:///{data / 'accelpool.sqlite'}", a.list_jobs)
            worst, mean, seen = listing(server.url, token, a.pages)
            print(f"{label}: listing {a.list_jobs:,}+ jobs, {seen:,} rows in pages of 100: mean {mean * 1000:.1f} ms, "
                  f"worst {worst * 1000:.1f} ms per page ({worst / 0.2:.2f} x the 0.2 s limit)")
        finally:
            server.kill()
            Path(".bench-token").unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--list-jobs", type=int, default=100_000)
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--postgres", action="store_true")
    a = ap.parse_args()
    run("SQLite", None, a)
    if a.postgres:
        from accelpool.storage.pgserver import fresh_database, postgres_url

        base = postgres_url()
        if base:
            run("PostgreSQL", fresh_database(base), a)


if __name__ == "__main__":
    main()
