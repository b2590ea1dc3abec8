"""The torture suite (issue 12): what one process, one request or one race must never break.

    python bench/torture.py [--cycles 20] [--fuzz-cases 20000] [--rate 1000] [--seconds 10] [--postgres URL]
                            [--only kill,budget,cancel,open-loop,fuzz] [--databases sqlite,postgresql]

Parts, each against a real `accelpool up` subprocess (supervisor + API + scheduler, fake executor so only
the control plane is exercised), on SQLite and, with ``--postgres`` (or $ACCELPOOL_TEST_POSTGRES_URL), on
PostgreSQL:

- kill: ``--cycles`` kill -9 of the API, the scheduler and the supervisor in turn, under submission load
  from clients that retry each submission with its Idempotency-Key until it is acknowledged. Then: every
  acknowledged job exists once (0 lost, 0 duplicated); per grant, the sum of its charges = its spent KRW;
  every charge lies inside an interval in which its job was running (from the job's own events).
- budget: 200 concurrent submissions against a grant that can hold a few: the KRW held for the accepted
  jobs' worst case never exceeds what the grant has.
- cancel: 128 concurrent cancels of running and queued jobs while rounds run: no 5xx, every job cancelled,
  the sum of charges = spent.
- open-loop: submissions at a fixed arrival rate (``--rate`` per second for ``--seconds``); each request's
  latency counts from the moment it was due, not from when it was sent, so a slow server cannot slow the
  load down and hide its own latency (no coordinated omission). p50/p99/max and the achieved rate.
- fuzz: schemathesis, every check, against the OpenAPI document (``--fuzz-cases`` cases in all).

The bounded version of each part runs in CI: tests/torture/. Figures of a full run: docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from accelpool.service.process import ServerProcess
from accelpool.storage.engine import sqlite_url

TENANT = "demo-startup"  # a demo tenant with a grant of 50,000,000 KRW
SERVER_ARGS = ("--demo", "--executor", "fake", "--round-seconds", "0.2")


# -- the server -----------------------------------------------------------------------------------------


def start_server(data: Path, database_url: str | None) -> ServerProcess:
    args = SERVER_ARGS + (("--database-url", database_url) if database_url else ())
    return ServerProcess(data, *args).start()


def admin_headers(data: Path) -> dict[str, str]:
    return {"Authorization": "Bearer " + (data / "admin-token").read_text().strip()}


def child_pid(supervisor_pid: int, role: str) -> int | None:
    """The pid of the supervisor's ``role`` child (api or scheduler), from /proc."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == supervisor_pid and b"accelpool.service.supervisor" in cmd and role.encode() in cmd:
            return int(entry)
    return None


def store_facts(database_url: str) -> dict[str, Any]:
    """Jobs, events, charges and grants read straight from the database."""
    import sqlalchemy as sa

    eng = sa.create_engine(database_url)
    with eng.connect() as c:
        jobs = [tuple(r) for r in c.exec_driver_sql("SELECT id, name, tenant, state FROM jobs")]
        events = [tuple(r) for r in c.exec_driver_sql("SELECT job, time, state FROM job_events ORDER BY seq")]
        charges = [
            tuple(r)
            for r in c.exec_driver_sql(
                'SELECT job, "grant", amount_krw, start, "end" FROM charges ORDER BY seq'
            )
        ]
        grants = {r[0]: int(r[1]) for r in c.exec_driver_sql("SELECT id, spent_krw FROM grants")}
    eng.dispose()
    return {"jobs": jobs, "events": events, "charges": charges, "grants": grants}


def money_checks(facts: dict[str, Any], eps: float = 1e-3) -> dict[str, Any]:
    """Sum of charges = spent per grant; every charge inside a running interval of its job."""
    by_grant: dict[str, int] = defaultdict(int)
    for _, grant, amount, _, _ in facts["charges"]:
        if grant is not None:
            by_grant[grant] += int(amount)
    mismatched = {
        g: (by_grant.get(g, 0), spent) for g, spent in facts["grants"].items() if by_grant.get(g, 0) != spent
    }
    intervals: dict[str, list[list[float]]] = defaultdict(list)
    for job, t, state in facts["events"]:
        ivs = intervals[job]
        if ivs and ivs[-1][1] == float("inf") and state != "running":
            ivs[-1][1] = float(t)
        if state == "running" and not (ivs and ivs[-1][1] == float("inf")):
            ivs.append([float(t), float("inf")])

    def inside(job: str, start: float, end: float) -> bool:
        ivs = intervals.get(job, [])
        if start == end:  # the settlement of a run's carry (under 1 KRW), booked when the run has ended
            return any(a - eps <= start for a, _ in ivs)
        return any(a - eps <= start and end <= b + eps for a, b in ivs)

    outside = [(job, start, end) for job, _, _, start, end in facts["charges"] if not inside(job, start, end)]
    return {
        "charges": len(facts["charges"]),
        "charged_krw": sum(int(c[2]) for c in facts["charges"]),
        "grants_mismatched": mismatched,
        "charges_outside_running": outside[:5],
        "n_charges_outside_running": len(outside),
    }


# -- kill -9 loops ----------------------------------------------------------------------------------------


@dataclass
class _Load:
    url: str
    headers: dict[str, str]
    stop: threading.Event = field(default_factory=threading.Event)
    acked: dict[str, str] = field(default_factory=dict)
    retries: int = 0
    give_up_at: float = float("inf")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, n: int) -> None:
        """Submit job after job; retry each with its key until acknowledged (the server may be dead)."""
        i = 0
        with httpx.Client(headers=self.headers, timeout=5) as c:
            while not self.stop.is_set():
                key = f"k{n}-{i}"
                while True:
                    try:
                        r = c.post(
                            f"{self.url}/api/v1/jobs?tenant={TENANT}",
                            json={"name": key, "command": "true"},
                            headers={"Idempotency-Key": key},
                        )
                        if r.status_code in (200, 201):
                            with self.lock:
                                self.acked[key] = r.json()["id"]
                            break
                        if r.status_code < 500:
                            raise AssertionError(f"submission refused: {r.status_code} {r.text}")
                    except httpx.HTTPError:
                        pass
                    self.retries += 1
                    if self.stop.is_set() and time.time() > self.give_up_at:
                        return  # never acknowledged: not counted
                    time.sleep(0.05)
                i += 1


def kill_loop(
    cycles: int, database_url: str | None, workdir: Path, *, clients: int = 4, seed: int = 0
) -> dict[str, Any]:
    """``cycles`` kill -9 of the API, the scheduler and the supervisor in turn, under submission load."""
    rnd = random.Random(seed)
    data = workdir / "data"
    data.mkdir(parents=True)
    url = database_url or sqlite_url(data / "accelpool.sqlite")
    server = start_server(data, database_url)
    load = _Load(server.url, admin_headers(data))
    threads = [threading.Thread(target=load.client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    killed: list[str] = []
    restarts: list[
        tuple[str, float, float]
    ] = []  # (target, s from the kill to /healthz, CPU s of the restart)
    t0 = time.time()
    try:
        for cycle in range(cycles):
            before = len(load.acked)
            deadline = time.time() + 60
            while len(load.acked) < before + 20 and time.time() < deadline:  # progress between kills
                time.sleep(0.02)
            time.sleep(rnd.uniform(0.0, 0.4))
            target = ("api", "scheduler", "supervisor")[cycle % 3]
            assert server.proc is not None
            mark = _log_size(server)
            t_kill = time.time()
            if target == "supervisor":
                old = server.proc.pid
                os.kill(old, signal.SIGKILL)  # alone: its children must die with it
                server.proc.wait(timeout=30)
                _wait_gone(old)
                server.start(healthy_within=None)
                mark = _log_size(server)
                back = wait_back(server, "supervisor", None, mark, cycle)
            else:
                pid = child_pid(server.proc.pid, target)
                if pid is None:
                    raise RuntimeError(f"no {target} process under the supervisor")
                os.kill(pid, signal.SIGKILL)
                back = wait_back(server, target, pid, mark, cycle)
            restarts.append((target, round(time.time() - t_kill, 2), back))
            killed.append(target)
        time.sleep(1.0)
    finally:
        load.give_up_at = time.time() + 30
        load.stop.set()
        for t in threads:
            t.join(timeout=60)
        time.sleep(1.0)  # a round or two on the last submissions
        server.kill()
    facts = store_facts(url)
    names: dict[str, list[str]] = defaultdict(list)
    for job_id, name, _, _ in facts["jobs"]:
        names[name].append(job_id)
    lost = [k for k, j in load.acked.items() if j not in names.get(k, [])]
    duplicated = [k for k, ids in names.items() if k.startswith("k") and len(ids) > 1]
    out = {
        "database": "postgresql" if database_url else "sqlite",
        "kills": len(killed),
        "killed": {r: killed.count(r) for r in ("api", "scheduler", "supervisor")},
        "acknowledged": len(load.acked),
        "retries": load.retries,
        "lost": len(lost),
        "duplicated": len(duplicated),
        "seconds": round(time.time() - t0, 1),
        # per target: the slowest return to /healthz after a kill (s), and the CPU s its restart used then
        "slowest_restart": {
            r: max(((s, c) for t, s, c in restarts if t == r), default=None)
            for r in ("api", "scheduler", "supervisor")
        },
    }
    out.update(money_checks(facts))
    return out


# How long a restart may go without progress before it counts as stuck, and at most in all. A restart is
# CPU work (the API process imports its libraries and opens the database: about a CPU-second); on two cores
# shared with a load average of 20 it gets a tenth of a core, so wall-clock time alone says little: a stuck
# restart is one whose processes stop using CPU (blocked on a lock, deadlocked, waiting on nothing), or
# whose children die on their own, or which the server answers with an error.
STALL_S = 60.0
CAP_S = 900.0


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a live process, None when it is gone."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if f[0] == "Z":
        return None
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _log_path(server: ServerProcess) -> Path:
    return server.data_dir.parent / f"server-{server.port}.log"


def _log_size(server: ServerProcess) -> int:
    p = _log_path(server)
    return p.stat().st_size if p.exists() else 0


def _health(url: str) -> int | None:
    """The /healthz status, None when nothing answered within 5 s (down, or starting, or starved)."""
    try:
        return httpx.get(url + "/healthz", timeout=5.0).status_code
    except httpx.HTTPError:
        return None


def wait_back(server: ServerProcess, target: str, killed: int | None, mark: int, cycle: int) -> float:
    """Until the service answers /healthz again after kill -9 of its ``target`` (the supervisor: restarted by
    the caller); the CPU seconds the restart used. Raises, with the end of the server's log, when the
    restart is stuck rather than slow: a child dies on its own (a crash at start), the server answers
    /healthz with an error for STALL_S, the process that must come up (the supervisor, then its new API
    process) uses no CPU for STALL_S, or CAP_S pass."""
    assert server.proc is not None
    t0 = moved = time.time()
    last: tuple[int, float] | None = None
    used: dict[int, float] = {}  # CPU s of the processes that had to come up (the new API, a new supervisor)
    bad_since: float | None = None
    while True:
        status = _health(server.url)
        now = time.time()
        if status == 200:
            return round(sum(used.values()), 2)
        why = None
        log = _log_path(server)
        new_log = log.read_bytes()[mark:].decode(errors="replace") if log.exists() else ""
        deaths = [
            ln
            for ln in new_log.splitlines()
            if " process exited with code" in ln or " process killed by" in ln
        ]
        ours = next(
            (ln for ln in deaths if f"{target} process killed by signal {int(signal.SIGKILL)}" in ln), None
        )
        if ours is not None:
            deaths.remove(ours)  # the kill -9 this cycle sent
        if server.proc.poll() is not None:
            why = f"the supervisor exited ({server.proc.returncode})"
        elif deaths:
            why = f"a process of the service died on its own while it restarted: {deaths[0]}"
        bad_since = (bad_since or now) if status is not None else None
        if why is None and bad_since is not None and now - bad_since > STALL_S:
            why = f"/healthz answered {status} for {STALL_S:.0f} s"
        api = child_pid(server.proc.pid, "api")
        pid = api if api is not None and api != killed else server.proc.pid
        cpu = _cpu_s(pid)
        if cpu is not None:
            if pid == api or killed is None:
                used[pid] = cpu
            if last is None or last[0] != pid or cpu > last[1]:
                last = (pid, cpu)
                moved = now
        if why is None and now - moved > STALL_S:
            who = "its new API process" if pid == api else "the supervisor"
            why = f"{who} (pid {pid}) used no CPU for {STALL_S:.0f} s"
        if why is None and now - t0 > CAP_S:
            why = f"not back after {CAP_S:.0f} s"
        if why is not None:
            raise RuntimeError(
                f"the server did not come back after kill -9 of its {target} (cycle {cycle + 1}, "
                f"{now - t0:.0f} s, load average {os.getloadavg()[0]:.1f}): {why}; the end of its log:\n"
                + new_log[-3000:]
            )
        time.sleep(0.2)


def _wait_gone(supervisor_pid: int) -> None:
    """Until no child of the killed supervisor is left (they get SIGTERM with it: PR_SET_PDEATHSIG, and stop
    cleanly). Raises when one is left that used no CPU for STALL_S (it ignores the signal), or after CAP_S."""
    t0 = time.time()
    seen: dict[int, tuple[float, float]] = {}  # pid -> (CPU s, when it last moved)
    mark = f"ACCELPOOL_SUPERVISOR_PID={supervisor_pid}\0".encode()
    while True:
        now = time.time()
        left = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
                    if (
                        b"accelpool.service.supervisor" in cmd
                        and mark in Path(f"/proc/{entry}/environ").read_bytes()
                    ):
                        left.append(int(entry))
        stuck = []
        for pid in left:
            cpu = _cpu_s(pid)
            if cpu is None:
                continue
            before = seen.get(pid)
            if before is None or cpu > before[0]:
                seen[pid] = (cpu, now)
            elif now - before[1] > STALL_S:
                stuck.append(pid)
        if not any(_cpu_s(p) is not None for p in left):
            return
        if stuck or now - t0 > CAP_S:
            raise RuntimeError(
                f"children of the killed supervisor are still running after {now - t0:.0f} s (pids {left}; "
                f"{'using no CPU: ' + str(stuck) if stuck else 'still busy'})"
            )
        time.sleep(0.1)


# -- races ------------------------------------------------------------------------------------------------


def budget_race(database_url: str | None, workdir: Path, n: int = 200) -> dict[str, Any]:
    """``n`` concurrent submissions with a worst-case cost against a grant that can hold only a few."""
    data = workdir / "data"
    data.mkdir(parents=True)
    url = database_url or sqlite_url(data / "accelpool.sqlite")
    server = start_server(data, database_url)
    h = admin_headers(data)
    try:
        with httpx.Client(base_url=server.url, headers=h, timeout=30) as c:
            now = time.time()
            c.post("/api/v1/tenants", json={"id": "racer"}).raise_for_status()
            c.post(
                "/api/v1/grants",
                json={
                    "id": "g-race",
                    "program": "k-ai-compute",
                    "tenant": "racer",
                    "amount_krw": 100_000,
                    "start": now - 60,
                },
            ).raise_for_status()
            prices = c.get("/api/v1/prices").json()["krw_per_device_hour"]
        statuses: list[int] = []

        def submit(i: int) -> None:
            with httpx.Client(base_url=server.url, headers=h, timeout=30) as c:
                r = c.post(
                    "/api/v1/jobs?tenant=racer",
                    json={
                        "name": f"r{i}",
                        "command": "true",
                        "grant": "g-race",
                        "max_run_time": "1h",
                        "resources": {"type": "h100", "count": 1},
                    },
                )
                statuses.append(r.status_code)

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with httpx.Client(base_url=server.url, headers=h, timeout=30) as c:
            jobs = c.get("/api/v1/jobs?tenant=racer&limit=1000").json()["items"]
            grant = next(g for g in c.get("/api/v1/grants").json()["items"] if g["id"] == "g-race")
        held = sum(j["reserved_krw"] for j in jobs if j["state"] in ("queued", "running"))
    finally:
        server.kill()
    facts = store_facts(url)
    out = {
        "database": "postgresql" if database_url else "sqlite",
        "submissions": n,
        "accepted": statuses.count(201),
        "refused_409": statuses.count(409),
        "5xx": sum(1 for s in statuses if s >= 500),
        "h100_krw_per_hour": prices.get("h100"),
        "held_krw": held,
        "grant_krw": grant["amount_krw"],
        "spent_krw": grant["spent_krw"],
        "overcommitted": held + grant["spent_krw"] > grant["amount_krw"],
    }
    out.update(money_checks(facts))
    return out


def cancel_race(database_url: str | None, workdir: Path, n: int = 128) -> dict[str, Any]:
    """``n`` jobs, some running; all cancelled at once by ``n`` threads while rounds run."""
    data = workdir / "data"
    data.mkdir(parents=True)
    url = database_url or sqlite_url(data / "accelpool.sqlite")
    server = start_server(data, database_url)
    h = admin_headers(data)
    try:
        with httpx.Client(base_url=server.url, headers=h, timeout=30) as c:
            ids = [
                c.post(f"/api/v1/jobs?tenant={TENANT}", json={"name": f"c{i}", "command": "true"}).json()[
                    "id"
                ]
                for i in range(n)
            ]
            deadline = time.time() + 30
            while time.time() < deadline:
                running = [
                    j for j in c.get(f"/api/v1/jobs?tenant={TENANT}&state=running&limit=1000").json()["items"]
                ]
                if running:
                    break
                time.sleep(0.2)
            time.sleep(0.5)  # a few rounds of charges
        statuses: list[int] = []
        barrier = threading.Barrier(n)

        def cancel(job_id: str) -> None:
            with httpx.Client(base_url=server.url, headers=h, timeout=60) as c:
                barrier.wait()
                statuses.append(c.post(f"/api/v1/jobs/{job_id}/cancel").status_code)

        threads = [threading.Thread(target=cancel, args=(j,)) for j in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(1.0)  # the scheduler settles the carries of the cancelled runs
        with httpx.Client(base_url=server.url, headers=h, timeout=30) as c:
            states = [c.get(f"/api/v1/jobs/{j}").json()["state"] for j in ids]
    finally:
        server.kill()
    facts = store_facts(url)
    out = {
        "database": "postgresql" if database_url else "sqlite",
        "cancels": n,
        "running_before": len(running),
        "5xx": sum(1 for s in statuses if s >= 500),
        "ok": statuses.count(200),
        "not_cancelled": sum(1 for s in states if s != "cancelled"),
    }
    out.update(money_checks(facts))
    return out


# -- open-loop load ---------------------------------------------------------------------------------------


async def _open_loop(
    url: str, headers: dict[str, str], rate: float, seconds: float, conns: int = 64
) -> dict[str, Any]:
    """Requests become due at ``start + i / rate``; ``conns`` keep-alive HTTP/1.1 connections (plain asyncio
    streams: a client library's pool would be the bottleneck) send them in due order. A request waiting for a
    free connection is late, and its latency counts from when it was due."""
    n = int(rate * seconds)
    host, port = url.removeprefix("http://").split(":")
    auth = headers["Authorization"]
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        while True:
            item = await queue.get()
            if item is None:
                writer.close()
                return
            i, due = item
            body = json.dumps({"name": f"o{i}", "command": "true"}).encode()
            writer.write(
                (
                    f"POST /api/v1/jobs?tenant={TENANT} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 201"):
                errors += 1
            latencies.append(time.perf_counter() - due)  # from when it was due: no coordinated omission

    workers = [asyncio.create_task(worker()) for _ in range(conns)]
    await asyncio.sleep(0.5)  # connections open
    start = time.perf_counter()
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((i, due))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    took = time.perf_counter() - start
    latencies.sort()
    return {
        "rate_per_s": rate,
        "requests": n,
        "errors": errors,
        "achieved_per_s": round(n / took, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
        "max_ms": round(1000 * latencies[-1], 1),
    }


def open_loop(rate: float, seconds: float, database_url: str | None, workdir: Path) -> dict[str, Any]:
    data = workdir / "data"
    data.mkdir(parents=True)
    server = start_server(data, database_url)
    try:
        out = asyncio.run(_open_loop(server.url, admin_headers(data), rate, seconds))
    finally:
        server.kill()
    out["database"] = "postgresql" if database_url else "sqlite"
    return out


# -- fuzzing ----------------------------------------------------------------------------------------------


def fuzz(cases: int) -> dict[str, Any]:
    """schemathesis, every check, ``cases`` cases in all (spread over the operations and two roles)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    stats = Path(tempfile.mkdtemp(prefix="accelpool-fuzz-")) / "stats.json"
    env = {
        **os.environ,
        "ACCELPOOL_FUZZ_CASES": str(cases),
        "ACCELPOOL_FUZZ_RANDOM": "1",
        "ACCELPOOL_FUZZ_STATS": str(stats),
    }
    t0 = time.time()
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/torture/test_fuzz.py", "-q", "-rf", "-p", "no:cacheprovider"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    failed = [ln.removeprefix("FAILED ")[:300] for ln in lines if ln.startswith("FAILED ")]
    tail = lines[-1:]
    made = json.loads(stats.read_text()) if stats.exists() else {}
    return {
        "cases_requested": cases,
        "calls_made": made.get("calls", 0),  # Hypothesis stops early on operations with few distinct inputs
        "answers": {k: v for k, v in sorted(made.items()) if k != "calls"},
        "pytest_exit": p.returncode,  # 0: no check failed (no 5xx, no schema violation, ...)
        "summary": tail,
        "failed": failed,
        "seconds": round(time.time() - t0),
    }


# -- main -------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--fuzz-cases", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--postgres", default=os.environ.get("ACCELPOOL_TEST_POSTGRES_URL"))
    ap.add_argument("--only", default="kill,budget,cancel,open-loop,fuzz")
    ap.add_argument("--databases", default="sqlite,postgresql", help="which of sqlite,postgresql to run on")
    a = ap.parse_args()
    parts = set(a.only.split(","))
    wanted = set(a.databases.split(","))
    dbs: list[str | None] = [None] if "sqlite" in wanted else []
    if a.postgres and "postgresql" in wanted:
        dbs.append(a.postgres)

    def pg(url: str | None) -> str | None:
        if url is None:
            return None
        from accelpool.storage.pgserver import fresh_database

        return fresh_database(url)

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="accelpool-torture-") as tmp:
        root = Path(tmp)
        for i, db in enumerate(dbs):
            name = "postgresql" if db else "sqlite"
            if "kill" in parts:
                results[f"kill/{name}"] = kill_loop(a.cycles, pg(db), root / f"kill{i}", seed=i)
                print(json.dumps(results[f"kill/{name}"]), flush=True)
            if "budget" in parts:
                results[f"budget/{name}"] = budget_race(pg(db), root / f"budget{i}")
                print(json.dumps(results[f"budget/{name}"]), flush=True)
            if "cancel" in parts:
                for rep in range(10 if db else 3):
                    r = cancel_race(pg(db), root / f"cancel{i}-{rep}")
                    results.setdefault(f"cancel/{name}", []).append(r)
                    print(json.dumps(r), flush=True)
            if "open-loop" in parts:
                results[f"open-loop/{name}"] = open_loop(a.rate, a.seconds, pg(db), root / f"open{i}")
                print(json.dumps(results[f"open-loop/{name}"]), flush=True)
    if "fuzz" in parts:
        results["fuzz"] = fuzz(a.fuzz_cases)
        print(json.dumps(results["fuzz"]), flush=True)


if __name__ == "__main__":
    main()
