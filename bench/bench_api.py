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

``--reps N`` runs each configuration N times, alternating (SQLite, then PostgreSQL with ``--postgres``),
and ends with a summary of the medians per configuration: open loop answered rate, p50, p99, p999 and
errors; CPU per submission (API, scheduler, load generator); the load average around each measurement.
``--parts open`` runs the open loop alone. ``--text-index batched,none`` (SQLite) runs the server with the
job text index as shipped (written in batches, migration 0014) and without any index write, alternating,
the second the baseline the first's API CPU is printed against (``per-submission``: the index written in
every submission's transaction, as before 0014); see ``text_index_variant``.

    python bench/bench_api.py --seconds 20 --list-jobs 0 --rate 1000 --procs 1 --conns 16 --parts open \
        --text-index batched,none --postgres --reps 2

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
    p999_ms: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # the machine's 1-minute load average at the start and the end

    @property
    def errors(self) -> int:
        return sum(v for k, v in self.statuses.items() if not 200 <= k < 300)

    def cpu_ms(self, role: str) -> float:
        return self.server_cpu_s.get(role, 0.0) / max(self.answers, 1) * 1000

    def line(self) -> str:
        """Answered rate, p50/p99/p999, errors and the load average around the measurement."""
        return (
            f"{self.rate:,.0f}/s answered, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
            f"p999 {self.p999_ms:.1f} ms, {self.errors} errors of {self.answers:,} "
            f"(load average {self.load[0]:.1f} -> {self.load[1]:.1f})"
        )

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
    load0 = os.getloadavg()[0]
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
    loads = (load0, os.getloadavg()[0])
    if not lat:
        return Result(0.0, 0.0, 0.0, statuses, client_cpu, server_cpu, 0.0, loads)
    return Result(
        ok / max(wall, 1e-9),
        statistics.median(lat) * 1000,
        lat[max(0, int(len(lat) * 0.99) - 1)] * 1000,
        statuses,
        client_cpu,
        server_cpu,
        lat[max(0, int(len(lat) * 0.999) - 1)] * 1000,
        loads,
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


TEXT_INDEX_VARIANTS = ("batched", "per-submission", "none")


def text_index_variant(db_file: Path, variant: str) -> None:
    """SQLite's job text index (migrations 0013-0014), set on the server's database before the load:
    ``batched`` as shipped (new jobs indexed every ``TEXT_INDEX_EVERY`` submissions, in one statement);
    ``per-submission`` the mark moved past any seq, so 0014's insert trigger indexes every job in its
    submission's transaction (the cost before 0014) and the batches find nothing to do; ``none`` that and
    the insert trigger dropped (no index write at all: the baseline the index's cost is measured against).
    The server's connections see the schema change at their next statement."""
    if variant in ("batched", ""):
        return
    import sqlite3

    con = sqlite3.connect(db_file, timeout=30, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("UPDATE jobs_text_mark SET upto = ? WHERE id = 0", (2**62,))
        if variant == "none":
            con.execute("DROP TRIGGER jobs_text_ai")
        con.execute("COMMIT")
    finally:
        con.close()


def run(label: str, db_url: str | None, a: argparse.Namespace, variant: str = "") -> dict[str, Result]:
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        data.mkdir()
        args = (
            # one tenant submits every job of the run (more than a tenant's default cap of 10,000 active
            # jobs, beyond which submissions are refused): the cap is off, so submissions are what is timed
            ["--executor", "fake", "--round-seconds", "30", "--max-active-jobs", "0"]
            + (["--database-url", db_url] if db_url else [])
            + (["--single-process"] if a.single_process else [])
        )
        label += " (one process)" if a.single_process else " (API and scheduler processes)"
        server = ServerProcess(data, *args).start()
        try:
            admin = (data / "admin-token").read_text().strip()
            token = setup(server.url, admin)
            if db_url is None and variant:
                text_index_variant(data / "accelpool.sqlite", variant)
                label += f" [text index: {variant}]"
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
            parts = set(a.parts.split(","))
            if "healthz" in parts:
                base = out["healthz"] = load("GET", "/healthz", None)
                print(
                    f"{label}: baseline GET /healthz: {base.rate:,.0f} answers/s from {clients} connections "
                    f"({a.procs} client processes), p50 {base.p50_ms:.1f} ms, p99 {base.p99_ms:.1f} ms; "
                    + base.cpu_line()
                )
            if "closed" in parts:
                sub = out["closed"] = load("POST", "/api/v1/jobs", {"name": "b", "command": "true"})
                ceiling = out["healthz"].rate if "healthz" in out else 0.0
                print(
                    f"{label}: POST /api/v1/jobs: {sub.rate:,.0f} submissions/s from {clients} connections "
                    f"({sub.rate / 1000:.2f} x the 1,000/s target"
                    + (f", {sub.rate / ceiling:.2f} x the /healthz ceiling" if ceiling else "")
                    + f"), p50 {sub.p50_ms:.1f} ms, p99 {sub.p99_ms:.1f} ms, p999 "
                    f"{sub.p999_ms:.1f} ms ({sub.p99_ms / 50:.2f} x the 50 ms limit); statuses "
                    f"{dict(sorted(sub.statuses.items()))}; load average {sub.load[0]:.1f} -> {sub.load[1]:.1f}; "
                    + sub.cpu_line()
                )
            if a.rate > 0 and "open" in parts:
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
                    f"{label}: open loop, {a.rate:,.0f} submissions/s offered for {a.seconds:g} s over {clients} "
                    f"connections: {open_.line()}, latencies from the due time ({open_.p99_ms / 50:.2f} x the "
                    f"50 ms limit); statuses {dict(sorted(open_.statuses.items()))}; " + open_.cpu_line()
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


def text_index_cost(batch: int, jobs: int, reps: int) -> None:
    """``--text-index-cost``: the CPU of SQLite's submission transactions in one process (no HTTP, no
    scheduler, so little disturbed by other load), with each text index variant (``text_index_variant``)
    on its own store, alternating ``reps`` times: ``jobs`` submissions in transactions of ``batch`` (the
    group-commit writer's batches under an open loop at 1,000/s hold about 2-5)."""
    from accelpool.storage.engine import sqlite_url
    from accelpool.storage.submissions import Submission

    cpu: dict[str, list[float]] = {v: [] for v in TEXT_INDEX_VARIANTS}
    with tempfile.TemporaryDirectory() as d:
        stores = {}
        for v in TEXT_INDEX_VARIANTS:
            path = Path(d) / f"{v}.sqlite"
            stores[v] = SqlStore(sqlite_url(path))
            text_index_variant(path, v)
        n = 0
        for _ in range(reps):
            for v, store in stores.items():
                items = [
                    Submission(Job(f"c{n + k:08d}", tenant="t"), {"h100": 1.0}, name=f"cost-{n + k}")
                    for k in range(jobs)
                ]
                n += jobs
                t0 = time.process_time()
                for k in range(0, jobs, batch):
                    store.submit_many(items[k : k + batch])
                cpu[v].append((time.process_time() - t0) / jobs * 1000)
        for store in stores.values():
            store.close()
    none = statistics.median(cpu["none"])
    for v, xs in cpu.items():
        m = statistics.median(xs)
        print(
            f"SQLite submit_many, {jobs:,} jobs in transactions of {batch}, text index {v}: CPU {m:.3f} ms per "
            f"job (median of {reps}; runs {', '.join(f'{x:.3f}' for x in xs)}), {m / none:.2f} x none "
            f"(load average {os.getloadavg()[0]:.1f})"
        )


def summary(runs: dict[str, list[dict[str, Result]]]) -> None:
    """Medians over the repetitions of each configuration, side by side: open loop (answered rate, p50,
    p99, p999, errors) and CPU per submission (API, scheduler, load generator), closed-loop rate; with a
    configuration named ``... none`` (no text index write), the others' API CPU as a ratio of it."""
    print("summary (medians of each configuration's runs):")
    ref = next((v for k, v in runs.items() if k.endswith(" none")), None)
    for name, rs in runs.items():
        out = [f"  {name} ({len(rs)} run{'s' if len(rs) > 1 else ''}):"]
        for part in ("open", "closed"):
            xs = [r[part] for r in rs if part in r]
            if not xs:
                continue

            def med(f: Any, xs: list[Result] = xs) -> float:
                return float(statistics.median(f(x) for x in xs))

            api = med(lambda x: x.cpu_ms("api"))
            ratio = ""
            if ref is not None and name.startswith("SQLite") and all(part in r for r in ref):
                base = statistics.median(r[part].cpu_ms("api") for r in ref)
                ratio = f" ({api / max(base, 1e-9):.2f} x no text index)"
            loads = [x.load[k] for x in xs for k in (0, 1)]
            out.append(
                f"{part} loop {med(lambda x: x.rate):,.0f}/s answered, p50 {med(lambda x: x.p50_ms):.1f} ms, "
                f"p99 {med(lambda x: x.p99_ms):.1f} ms, p999 {med(lambda x: x.p999_ms):.1f} ms, "
                f"errors {sum(x.errors for x in xs)}; CPU ms per submission: API {api:.3f}{ratio}, scheduler "
                f"{med(lambda x: x.cpu_ms('scheduler')):.3f}, load generator "
                f"{med(lambda x: x.client_cpu_s / max(x.answers, 1) * 1000):.3f}; load average "
                f"{min(loads):.1f}-{max(loads):.1f}"
            )
        print("\n    ".join(out))


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
    ap.add_argument(
        "--reps",
        type=int,
        help="runs of each configuration, alternating (default 3 with --compare-src, else 1); a summary of the "
        "medians follows",
    )
    ap.add_argument(
        "--parts", default="healthz,closed,open", help="which loads to run, of healthz, closed, open"
    )
    ap.add_argument(
        "--text-index",
        default="",
        help="SQLite: comma-separated variants of the job text index to run, alternating, e.g. "
        f"'batched,none' (of {', '.join(TEXT_INDEX_VARIANTS)}; see text_index_variant)",
    )
    ap.add_argument(
        "--text-index-cost",
        type=int,
        metavar="BATCH",
        help="only the in-process CPU of submission transactions of BATCH jobs per text index variant",
    )
    a = ap.parse_args()
    if a.text_index_cost:
        text_index_cost(a.text_index_cost, 2000, a.reps or 5)
        return
    variants = [v for v in a.text_index.split(",") if v]
    for v in variants:
        if v not in TEXT_INDEX_VARIANTS:
            ap.error(f"--text-index: unknown variant {v!r} (choose from {', '.join(TEXT_INDEX_VARIANTS)})")
    pg_base = None
    if a.postgres:
        from accelpool.storage.pgserver import fresh_database, postgres_url

        pg_base = postgres_url()
        if pg_base is None:
            print("PostgreSQL: no server (set ACCELPOOL_TEST_POSTGRES_URL); skipped")
    if a.compare_src:
        a.reps = a.reps or 3
        if not a.no_sqlite:
            compare("SQLite", lambda: None, a)
        if pg_base:
            compare("PostgreSQL", lambda: fresh_database(pg_base), a)
        return
    runs: dict[str, list[dict[str, Result]]] = {}
    for _ in range(a.reps or 1):  # the configurations alternate, so slow spells of the machine spread out
        if not a.no_sqlite:
            for v in variants or [""]:
                runs.setdefault("SQLite" + (f", text index {v}" if v else ""), []).append(
                    run("SQLite", None, a, v)
                )
        if pg_base:
            runs.setdefault("PostgreSQL", []).append(run("PostgreSQL", fresh_database(pg_base), a))
    summary(runs)


if __name__ == "__main__":
    main()
