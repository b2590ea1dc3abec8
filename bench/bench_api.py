"""HTTP benchmarks against a real `accelpool up` subprocess (fake executor, so only the control plane is
measured): submissions/s and p50/p99 latency from concurrent clients; paginated listing of 100,000 jobs.

    python bench/bench_api.py [--seconds 10] [--procs 2] [--conns 8] [--list-jobs 100000] [--postgres]
                              [--single-process] [--rate 500] [--compare-src BASELINE/src --reps 3]

Honest set-up: the server is its own process (uvicorn, as `accelpool up` runs it); the load comes from
``--procs`` client processes, each holding ``--conns`` keep-alive HTTP/1.1 connections on loopback and
sending the next request as soon as the previous answer arrived (a closed loop, like wrk). Every run is
bounded in time (``--seconds``) and in count (``--max-requests`` per connection). The same run first
measures ``GET /healthz`` with the same clients: that rate is this machine's HTTP ceiling (the clients share
the CPUs with the server), and submissions are printed as a ratio of it.

The server is `accelpool up` as shipped: a supervisor with an API process and a scheduler process (rounds
are woken by the submissions, at most once a second, and read every queued job); ``--single-process``
measures the old layout, where the rounds ran in the API's process.

Open loop (``--rate R``, 0 to skip): a closed loop hides queueing (a slow answer delays the next request,
so the load backs off exactly when the server is slow). The open-loop run offers R submissions/s in all,
on a fixed schedule spread over the same connections (request k of connection c is due at
t0 + (k * C + c) / R), and measures each latency from the moment the request was *due*, not sent (the
correction wrk2 makes for coordinated omission): when the server falls behind, the waiting counts.

Every line also prints the CPU used per request by each server process (api, scheduler, supervisor, from
/proc) and by the load generator itself (its own process time): they share this machine's cores, and CPU
per request depends much less on other load than latency does.

``--compare-src DIR`` measures the same with the server run from another source tree (the code before a
change), alternating with this tree, and prints the ratios this/baseline: API CPU per submission and p99.

Targets: >= 1,000 submissions/s with p99 < 50 ms on SQLite; < 0.2 s per page of the listing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from accelpool.core.types import Job
from accelpool.service.process import ServerProcess
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.sql import SqlStore


def setup(url: str, admin: str) -> str:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}) as c:
        c.post("/api/v1/tenants", json={"id": "bench"})
        c.post("/api/v1/programs", json={"id": "bp", "budget_krw": 10**12})
        c.post("/api/v1/grants", json={"program": "bp", "tenant": "bench", "amount_krw": 10**11})
        c.post("/api/v1/nodes", json={"name": "n0", "accelerator": "h100", "devices": 8})
        return str(c.post("/api/v1/tokens", json={"role": "member", "tenant": "bench"}).json()["secret"])


# -- load generator: raw keep-alive HTTP/1.1 on asyncio, one event loop per client process ------------


@dataclass
class Load:
    host: str
    port: int
    token: str
    method: str
    path: str
    body: dict[str, Any] | None
    conns: int
    seconds: float
    max_requests: int
    rate: float = 0.0  # open loop: requests/s offered over all connections (0: closed loop)
    total_conns: int = 1


def _request(load: Load, i: int) -> bytes:
    head = (
        f"{load.method} {load.path} HTTP/1.1\r\nHost: {load.host}\r\nAuthorization: Bearer {load.token}\r\n"
    )
    if load.body is None:
        return (head + "\r\n").encode()
    body = json.dumps({**load.body, "name": f"{load.body.get('name', 'b')}-{i}"}).encode()
    return (head + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def _connection(load: Load, start: float, seed: int) -> tuple[list[float], dict[int, int]]:
    reader, writer = await asyncio.open_connection(load.host, load.port)
    lat: list[float] = []
    statuses: dict[int, int] = {}
    end = start + load.seconds
    i = 0
    me = (seed // 1000) * load.conns + seed % 1000  # this connection's index among all
    try:
        while i < load.max_requests:
            req = _request(load, seed * 10_000_000 + i)
            t0 = time.perf_counter()
            if load.rate > 0:
                due = start + (i * load.total_conns + me) / load.rate
                if due >= end:
                    break
                if due > t0:
                    await asyncio.sleep(due - t0)
                t0 = due  # latency from when the request was due (queueing behind a slow answer counts)
            if t0 >= end:
                break
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1
            i += 1
    finally:
        writer.close()
    return lat, statuses


def _client_process(load: Load, start: float, proc: int, out: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> list[tuple[list[float], dict[int, int]]]:
        while time.time() < start:  # every process starts at the same moment
            await asyncio.sleep(min(0.01, start - time.time()))
        t0 = time.perf_counter()
        return list(
            await asyncio.gather(*(_connection(load, t0, proc * 1000 + k) for k in range(load.conns)))
        )

    cpu0 = time.process_time()
    results = asyncio.run(main())
    cpu = time.process_time() - cpu0  # this client's own CPU (the wait for the common start is idle)
    lat = [x for r in results for x in r[0]]
    statuses: dict[int, int] = {}
    for _, s in results:
        for k, v in s.items():
            statuses[k] = statuses.get(k, 0) + v
    out.put((lat, statuses, cpu))


@dataclass
class Result:
    rate: float  # successful answers per second
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    client_cpu_s: float = 0.0  # CPU seconds the load generator itself used
    server_cpu_s: dict[str, float] = field(default_factory=dict)  # per server process (api, scheduler, ...)

    @property
    def answers(self) -> int:
        return sum(self.statuses.values())

    def cpu_line(self) -> str:
        """CPU per answer: the server's processes and the load generator (they share this machine's cores)."""
        n = max(self.answers, 1)
        parts = [f"{k} {v / n * 1000:.2f}" for k, v in sorted(self.server_cpu_s.items())]
        return f"CPU ms per request: {', '.join(parts)}; load generator {self.client_cpu_s / n * 1000:.2f}"


def _descendants(pid: int) -> dict[str, int]:
    """The server's processes by role (the supervisor and its ``api`` and ``scheduler`` children), from /proc."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = {"supervisor": pid}, [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            todo.append(k)
            try:
                argv = (Path("/proc") / str(k) / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            for role in (b"api", b"scheduler"):
                if role in argv:
                    out[role.decode()] = k
    return out


def _cpu_s(pid: int) -> float:
    try:
        f = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def generate(load: Load, procs: int, server_pid: int | None = None) -> Result:
    roles = _descendants(server_pid) if server_pid is not None else {}
    ctx = mp.get_context("spawn")  # clean client processes: no server state, no inherited threads
    out = ctx.Queue()
    start = time.time() + 1.5  # time for the processes to start
    ps = [ctx.Process(target=_client_process, args=(load, start, n, out), daemon=True) for n in range(procs)]
    for p in ps:
        p.start()
    while time.time() < start:  # the server's CPU is counted from the common start
        time.sleep(min(0.01, max(start - time.time(), 0)))
    cpu0 = {k: _cpu_s(v) for k, v in roles.items()}
    lat: list[float] = []
    statuses: dict[int, int] = {}
    client_cpu = 0.0
    for _ in ps:
        part, st, cpu = out.get(timeout=load.seconds + 120)
        client_cpu += cpu
        lat.extend(part)
        for k, v in st.items():
            statuses[k] = statuses.get(k, 0) + v
    wall = time.time() - start
    server_cpu = {k: _cpu_s(v) - cpu0[k] for k, v in roles.items()}
    for p in ps:
        p.join(timeout=30)
    lat.sort()
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    if not lat:
        return Result(0.0, 0.0, 0.0, statuses, client_cpu, server_cpu)
    return Result(
        ok / max(wall, 1e-9),
        statistics.median(lat) * 1000,
        lat[max(0, int(len(lat) * 0.99) - 1)] * 1000,
        statuses,
        client_cpu,
        server_cpu,
    )


# -- listing --------------------------------------------------------------------------------------------


def bulk_jobs(db_url: str, n: int) -> None:
    store = SqlStore(db_url)
    rows = []
    for i in range(n):
        job = Job(f"x{i:07d}", tenant="bench", submit_time=float(i))
        rows.append(
            {
                "id": job.id,
                "tenant": "bench",
                "name": job.id,
                "spec": codec.job_to_dict(job),
                "run": {},
                "throughput": {"h100": 1.0},
                "state": "succeeded",
                "active": False,
                "steps_done": 0.0,
                "seconds_on": {},
                "reason": "exited 0",
                "submit_time": job.submit_time,
                "preemptions": 0,
                "attempts": 1,
                "reserved_krw": 0,
            }
        )
    with store.write() as c:
        for k in range(0, n, 10_000):
            c.execute(insert(T.jobs), rows[k : k + 10_000])
    store.close()


def listing(url: str, token: str, pages: int) -> tuple[float, float, int]:
    times, seen, cursor = [], 0, None
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        for _ in range(pages):
            t0 = time.perf_counter()
            page = c.get(
                "/api/v1/jobs", params={"limit": 100, **({"cursor": cursor} if cursor else {})}
            ).json()
            times.append(time.perf_counter() - t0)
            seen += len(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
    return max(times), statistics.mean(times), seen


def run(label: str, db_url: str | None, a: argparse.Namespace) -> dict[str, Result]:
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        data.mkdir()
        args = (
            ["--executor", "fake", "--round-seconds", "30"]
            + (["--database-url", db_url] if db_url else [])
            + (["--single-process"] if a.single_process else [])
        )
        label += " (one process)" if a.single_process else " (API and scheduler processes)"
        server = ServerProcess(data, *args).start()
        try:
            admin = (data / "admin-token").read_text().strip()
            token = setup(server.url, admin)
            host, port = "127.0.0.1", server.port
            assert server.proc is not None
            pid = server.proc.pid
            clients = a.procs * a.conns

            def load(method: str, path: str, body: dict[str, Any] | None) -> Result:
                return generate(
                    Load(host, port, token, method, path, body, a.conns, a.seconds, a.max_requests),
                    a.procs,
                    pid,
                )

            out: dict[str, Result] = {}
            base = out["healthz"] = load("GET", "/healthz", None)
            print(
                f"{label}: baseline GET /healthz: {base.rate:,.0f} answers/s from {clients} connections "
                f"({a.procs} client processes), p50 {base.p50_ms:.1f} ms, p99 {base.p99_ms:.1f} ms; " + base.cpu_line()
            )
            sub = out["closed"] = load("POST", "/api/v1/jobs", {"name": "b", "command": "true"})
            print(
                f"{label}: POST /api/v1/jobs: {sub.rate:,.0f} submissions/s from {clients} connections "
                f"({sub.rate / 1000:.2f} x the 1,000/s target, {sub.rate / max(base.rate, 1e-9):.2f} x "
                f"the /healthz ceiling), p50 {sub.p50_ms:.1f} ms, p99 {sub.p99_ms:.1f} ms "
                f"({sub.p99_ms / 50:.2f} x the 50 ms limit); statuses {dict(sorted(sub.statuses.items()))}; "
                + sub.cpu_line()
            )
            if a.rate > 0:
                open_ = generate(
                    Load(
                        host,
                        port,
                        token,
                        "POST",
                        "/api/v1/jobs",
                        {"name": "o", "command": "true"},
                        a.conns,
                        a.seconds,
                        a.max_requests,
                        a.rate,
                        clients,
                    ),
                    a.procs,
                    pid,
                )
                out["open"] = open_
                print(
                    f"{label}: open loop, {a.rate:,.0f} submissions/s offered over {clients} connections: "
                    f"{open_.rate:,.0f}/s answered, p50 {open_.p50_ms:.1f} ms, p99 {open_.p99_ms:.1f} ms from the "
                    f"due time ({open_.p99_ms / 50:.2f} x the 50 ms limit); statuses {dict(sorted(open_.statuses.items()))}; "
                    + open_.cpu_line()
                )
            if a.list_jobs:
                bulk_jobs(db_url or f"sqlite+pysqlite:///{data / 'accelpool.sqlite'}", a.list_jobs)
                worst, mean, seen = listing(server.url, token, a.pages)
                print(
                    f"{label}: listing {a.list_jobs:,}+ jobs, {seen:,} rows in pages of 100: mean "
                    f"{mean * 1000:.1f} ms, worst {worst * 1000:.1f} ms per page ({worst / 0.2:.2f} x the 0.2 s limit)"
                )
        finally:
            server.kill()
    return out


def _api_cpu_ms(r: Result) -> float:
    return r.server_cpu_s.get("api", 0.0) / max(r.answers, 1) * 1000


def compare(label: str, make_db: Any, a: argparse.Namespace) -> None:
    """``--compare-src DIR``: the same measurements with the server run from another source tree (e.g.
    ``git worktree add /tmp/base <commit>``, then ``--compare-src /tmp/base/src``), alternating with this
    tree ``--reps`` times, each on a fresh database (``make_db()``); prints the ratios this/baseline of the medians (API CPU per submission, which
    other load on the machine disturbs much less than latency, and p99)."""
    here = str(Path(__file__).resolve().parent.parent / "src")
    runs: dict[str, list[dict[str, Result]]] = {"baseline": [], "this tree": []}
    saved = os.environ.get("PYTHONPATH")
    try:
        for _ in range(a.reps):
            for variant, src in (("baseline", a.compare_src), ("this tree", here)):
                os.environ["PYTHONPATH"] = src + (os.pathsep + saved if saved else "")
                runs[variant].append(run(f"{label} [{variant}]", make_db(), a))
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    for part in ("closed", "open"):
        if part not in runs["baseline"][0]:
            continue
        b = [_api_cpu_ms(r[part]) for r in runs["baseline"]]
        n = [_api_cpu_ms(r[part]) for r in runs["this tree"]]
        bp = [r[part].p99_ms for r in runs["baseline"]]
        np_ = [r[part].p99_ms for r in runs["this tree"]]
        print(
            f"{label}: {part} loop, this tree / baseline (medians of {a.reps}): API CPU per submission "
            f"{statistics.median(n):.3f} / {statistics.median(b):.3f} ms = "
            f"{statistics.median(n) / max(statistics.median(b), 1e-9):.2f}; p99 {statistics.median(np_):.1f} / "
            f"{statistics.median(bp):.1f} ms = {statistics.median(np_) / max(statistics.median(bp), 1e-9):.2f} "
            f"(load average {os.getloadavg()[0]:.1f})"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--conns", type=int, default=8, help="keep-alive connections per client process")
    ap.add_argument("--max-requests", type=int, default=100_000, help="per connection")
    ap.add_argument("--list-jobs", type=int, default=100_000)
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--postgres", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--rate", type=float, default=500.0, help="open-loop submissions/s offered (0: skip)")
    ap.add_argument(
        "--single-process", action="store_true", help="`accelpool up --single-process` (rounds share the GIL)"
    )
    ap.add_argument(
        "--compare-src", help="also run the server from this source tree (a baseline) and print ratios"
    )
    ap.add_argument("--reps", type=int, default=3, help="with --compare-src: runs of each, alternating")
    a = ap.parse_args()
    if not a.no_sqlite:
        if a.compare_src:
            compare("SQLite", lambda: None, a)
        else:
            run("SQLite", None, a)
    if a.postgres:
        from accelpool.storage.pgserver import fresh_database, postgres_url

        base = postgres_url()
        if base:
            if a.compare_src:
                compare("PostgreSQL", lambda: fresh_database(base), a)
            else:
                run("PostgreSQL", fresh_database(base), a)


if __name__ == "__main__":
    main()
