"""A whole Reconciler.step on SqlStore (SQLite, and PostgreSQL with --postgres): 10,000 queued jobs,
2,000 devices, per-job random speeds. Target: one step < 1 s.

    python bench/bench_round.py [--jobs 10000] [--devices 2000] [--postgres [--no-sqlite]] [--steps 3] [--ticks N]
        [--policy max-min-fairness,fifo] [--rules [--change-rules]] [--churn 100] [--capture DIR]

``--rules``: every case twice, the plain pool and then the same jobs under program rules (``QUOTAS``,
``PROGRAMS``: tenants' quotas, a public reserve, per-tenant caps of two programs), printing after the first
and last step how the rules bind (waiting reasons, the fullest cap of each program and type, the quota
tenants' devices, public jobs' devices) and how step 1's placements differ from the plain pool's.
``--change-rules`` then halves the first program's tenant caps, as an admin would while the service runs,
and times two more steps (their warm hint is the old rules').

What is timed is what ships: ``Reconciler.step`` (observe the executor's events, meter running jobs and
write their charges, snapshot, decide, record, act on the FakeExecutor), wall and CPU seconds per step;
with PostgreSQL on this machine also the server's CPU seconds for this database's connections (/proc), so
a loaded machine still shows what a step costs: client and server take turns (one statement at a time),
so client CPU + server CPU is about a lower bound of the wall time on a quiet machine. The database: a fresh one on ``$ACCELPOOL_TEST_POSTGRES_URL``'s server, else on a private
server started from the PostgreSQL binaries here (storage/pgserver.py).
Step 1 starts jobs from a cold queue, and its policy from nothing (cold: no last round to start from);
later steps (one round of 360 s later each) meter and bill the running jobs and decide again, warm: the
Reconciler's DecideCache hands each lease boundary the last one's start (max-min-fairness: every stage's
and ceiling probe's prices, core.rounds DecideCache.warm_hint). Between steps ``--churn`` (default 100)
running jobs finish (completed in the middle of the next round) and as many new jobs arrive, so a later
step decides a changed problem, not the same one again (``--churn 0``: no job ever ends, as before). Every step is a lease boundary (the Reconciler's default lease,
``RoundConfig.lease_seconds``, is 360 s and the steps are 360 s apart), so these are also issue 10's
"whole step at a lease boundary". Speeds are drawn per job and per allowed type (uniform 0.5-4 steps/s), so
no two jobs share a row and the allocation LP does not collapse (a former version used 7 distinct rows).
``--capture DIR``: every policy call of the timed steps also pickles the problem it was given (warm hint
included) to DIR/<label>-<policy>-<n>.pkl, for bench/time_problem.py to time alone or compare trees bit for bit.
For reference the same step's snapshot / decide / record parts are timed once more, separately.
The process collects garbage as the scheduler process does (``service.supervisor.settle_gc``: frozen
start-up objects, thresholds 20,000/20/50); ``--default-gc`` keeps Python's defaults for comparison.
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from accelpool.core.round_types import Decision
from accelpool.core.rounds import DecideCache, decide
from accelpool.core.types import Grant, Job, Node, Program, ProgramRules, Tenant
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


TENANTS = 20
QUOTAS = {
    0: {"h100": 96},
    1: {"a100": 96},
    2: {"rngd": 64},
    3: {"rebel-quad": 64},
    4: {"h100": 32, "a100": 32},
}
"""--rules: guaranteed devices of five tenants (Tenant.quota)."""
PROGRAMS = (
    Program(
        "national",
        "national GPU support",
        budget_krw=10**15,
        public=True,
        rules=ProgramRules(public_share={"*": 0.15}, tenant_caps={"h100": 32, "a100": 32}),
    ),
    Program(
        "startup",
        "startup credits",
        budget_krw=10**15,
        public=False,
        rules=ProgramRules(tenant_caps={"*": 16}),
    ),
    Program("research", "research fund", budget_krw=10**15, public=False, rules=ProgramRules(weight=2.0)),
)
"""--rules: a public program (15% of every type kept for public jobs, a per-tenant cap of 32 on h100 and
a100), a startup program (every tenant at most 16 devices of a type under it) and an uncapped one."""


def add_rules(store: SqlStore) -> None:
    """--rules: tenants (five with quotas), the programs and each tenant's grants in them."""
    for g in range(TENANTS):
        store.add_tenant(Tenant(f"t{g}", quota=QUOTAS.get(g, {}), public=g in (6, 7, 8, 9)))
    for p in PROGRAMS:
        store.add_program(p)
    for g in range(TENANTS):
        for p in PROGRAMS:
            store.add_grant(Grant(f"{p.id}-t{g}", p.id, f"t{g}", 10**13))


def rule_fields(i: int) -> dict[str, object]:
    """--rules: job i's grant (one of its tenant's three programs, or none) and whether it is public."""
    program = (None, *PROGRAMS)[(i // TENANTS) % 4]
    if program is None:
        return {}
    return {"grant": f"{program.id}-t{i % TENANTS}", "public": program.public and (i // 80) % 2 == 0}


def job_row(i: int, speed: np.ndarray, rules: bool) -> dict[str, object]:
    """Job i's row: its tenant, scale 1-4, two allowed types with speeds ``speed`` (one per type)."""
    allowed = TYPES[i % 4 : i % 4 + 2]
    extra = rule_fields(i) if rules else {}
    job = Job(f"j{i:06d}", tenant=f"t{i % TENANTS}", scale=1 + i % 4, submit_time=float(i), **extra)  # type: ignore[arg-type]
    return {
        "id": job.id,
        "tenant": job.tenant,
        "name": job.id,
        "spec": codec.job_to_dict(job),
        "run": {},
        "throughput": {t: float(speed[TYPES.index(t)]) for t in allowed},
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


def fill(store: SqlStore, jobs: int, devices: int, rules: bool = False) -> None:
    per = devices // len(TYPES) // 8
    store.add_nodes([Node(f"{t}-{i:04d}", t, 8) for t in TYPES for i in range(per)])
    if rules:
        add_rules(store)
    rng = np.random.default_rng(0)
    speed = rng.uniform(0.5, 4.0, (jobs, len(TYPES)))
    rows = [job_row(i, speed[i], rules) for i in range(jobs)]
    with store.write() as c:
        c.execute(insert(T.jobs), rows)


def churn(store: SqlStore, ex: FakeExecutor, now: float, first: int, n: int, rules: bool, seed: int) -> None:
    """--churn: after the step at ``now``, ``n`` running jobs finish (completed at now + 180 s, which the
    next step's poll reports) and ``n`` new jobs arrive (ids from ``first`` on, drawn as fill's)."""
    rng = np.random.default_rng(seed)
    running = sorted(ex.active())
    for j in rng.choice(running, size=min(n, len(running)), replace=False).tolist():
        ex._runs[j].end = now + 180.0  # the fake executor reports it completed then
    speed = rng.uniform(0.5, 4.0, (n, len(TYPES)))
    rows = [job_row(first + k, speed[k], rules) for k in range(n)]
    if rows:
        with store.write() as c:
            c.execute(insert(T.jobs), rows)


class Capture:
    """--capture: the policy, each call's problem pickled first (core.rounds reads the wrapped one as .policy)."""

    def __init__(self, policy: object, where: Path, label: str) -> None:
        self.policy = policy
        self.where = where
        self.label = label
        self.calls = 0

    def __call__(self, problem: object) -> object:
        self.calls += 1
        self.where.mkdir(parents=True, exist_ok=True)
        with open(self.where / f"{self.label}-{self.calls:02d}.pkl", "wb") as f:
            pickle.dump(problem, f)
        return self.policy(problem)  # type: ignore[operator]


CAPTURE: Path | None = None
"""--capture's folder."""

CHANGE_RULES = False
CHANGE_RULES_HELP = "after the steps, halve the first program's tenant caps and time two more steps"

CACHE = DecideCache()
"""Held across rounds, as the live Reconciler holds its own."""


def one_round(
    store: SqlStore, policy_name: str, now: float, cache: DecideCache | None = None
) -> dict[str, float]:
    """One round's parts, timed apart; ``cache``: the Reconciler's own (its last round's hint), else CACHE."""
    policy = get_policy(policy_name)
    t0 = time.perf_counter()
    snap = store.snapshot(now, 360.0)
    t1 = time.perf_counter()
    decision = decide(snap, policy, CACHE if cache is None else cache)
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


def binding(decision: Decision, jobs: int) -> str:
    """--rules: how the rules bind in this decision: the waiting reasons, and per rule the most any row of
    it holds against its bound (a program cap: devices one tenant holds under the program on a type; a
    quota: its tenant's devices on the type; the public reserve: public jobs' devices on a type)."""
    held: Counter[tuple[str, str, str]] = Counter()  # (tenant, program, type) -> devices
    public: Counter[str] = Counter()
    for p in decision.placements():
        i = int(p.job[1:])
        f = rule_fields(i)
        program = str(f["grant"]).split("-")[0] if f else ""
        held[f"t{i % TENANTS}", program, p.accelerator] += p.count
        if f.get("public"):
            public[p.accelerator] += p.count
    caps = []
    for prog in PROGRAMS:
        for t in TYPES:
            cap = prog.rules.cap_for(t)
            if cap is not None:
                most = max((n for (g, q, a), n in held.items() if q == prog.id and a == t), default=0)
                caps.append(f"{prog.id} {t} {most}/{cap}")
    quotas = []
    for g, quota in QUOTAS.items():
        for t, q in quota.items():
            quotas.append(
                f"t{g} {t} {sum(n for (h, _, a), n in held.items() if h == f't{g}' and a == t)}/{q}"
            )
    reasons = Counter(str(r) for r in decision.waiting.values())
    return (
        f"waiting {dict(sorted(reasons.items()))}; most one tenant holds under a program cap (held/cap): "
        f"{', '.join(caps)}; quota tenants' devices (held/quota): {', '.join(quotas)}; public jobs' devices "
        f"per type: {dict(sorted(public.items()))}"
    )


def run(
    url: str,
    label: str,
    jobs: int,
    devices: int,
    policy: str,
    steps: int,
    ticks: int = 0,
    rules: bool = False,
    churned: int = 0,
) -> dict[str, str]:
    """Time ``steps`` steps; returns step 1's placements (job -> type)."""
    store = SqlStore(url)
    fill(store, jobs, devices, rules)
    clock = VirtualClock(1e6)
    ex = FakeExecutor(clock)
    label = f"{label}{' rules' if rules else ''}"
    pol = get_policy(policy)
    if CAPTURE is not None:
        pol = Capture(pol, CAPTURE, f"{label.replace(' ', '-')}-{policy}")  # type: ignore[assignment]
    rec = Reconciler(store, ex, clock, pol, round_seconds=360.0)
    first: dict[str, str] = {}
    for k in range(steps):
        s0 = server_cpu(store)
        w0, c0 = time.perf_counter(), time.process_time()
        report = rec.step()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        s1 = server_cpu(store)
        server = "" if s0 is None or s1 is None else f", server CPU {s1 - s0:.3f} s"
        how = "cold: no hint" if k == 0 else f"warm; {churned} finished and {churned} arrived before it"
        print(
            f"{label} step {k + 1} ({how}): {jobs} jobs x {devices} devices, {policy}: Reconciler.step wall "
            f"{wall:.3f} s, CPU {cpu:.3f} s{server} -> {'MEETS' if wall < 1.0 else 'MISSES'} the 1 s target on "
            f"wall (started {len(report.decision.start)}, charges {len(report.charges)})",
            flush=True,
        )
        if k == 0:
            first = {p.job: p.accelerator for p in report.decision.placements()}
        if rules and k in (0, steps - 1):
            print(f"{label} step {k + 1} rules: {binding(report.decision, jobs)}", flush=True)
        if churned and k < steps - 1:
            churn(store, ex, clock.now(), jobs + k * churned, churned, rules, k)
        clock.advance(360.0)
    # with the Reconciler's cache, as its next round would: the module's CACHE held the last case's hint (the
    # plain pool's, under --rules: a rules round's decide took 7.9 s from it against 3.1 s cold)
    r = one_round(store, policy, clock.now(), rec._decide_cache)
    print(
        f"{label} parts of one more round: snapshot {r['read']:.3f} s, decide {r['decide']:.3f} s, "
        f"record {r['write']:.3f} s (wall)"
    )
    if rules and CHANGE_RULES:
        # an admin's rules change while the service runs: the Reconciler's warm hint is the old rules'
        prog = next(p for p in store.list_programs() if p.id == PROGRAMS[0].id)
        caps = {t: max(1, c // 2) for t, c in prog.rules.tenant_caps.items()}
        store.update_program(prog.id, rules=replace(prog.rules, tenant_caps=caps))
        for k in range(2):
            clock.advance(360.0)
            w0 = time.perf_counter()
            rec.step()
            print(
                f"{label} step {k + 1} after {prog.id}'s caps became {caps}: wall {time.perf_counter() - w0:.3f} s"
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
    return first


def compare(label: str, plain: dict[str, str], ruled: dict[str, str]) -> None:
    """--rules: how step 1's placements differ between the pool without and with the rules."""
    same = sum(1 for j, t in ruled.items() if plain.get(j) == t)
    print(
        f"{label} step 1 without -> with rules: {len(plain)} -> {len(ruled)} jobs placed, {same} on the same "
        f"type in both, {len(set(plain) - set(ruled))} placed only without rules, "
        f"{len(set(ruled) - set(plain))} only with them",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--devices", type=int, default=2_000)
    ap.add_argument(
        "--policy",
        default="max-min-fairness",
        help="a policy, or several separated by commas (the live service's default is max-min-fairness)",
    )
    ap.add_argument("--postgres", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only (with --postgres)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--ticks", type=int, default=0, help="then time this many tick decides (no policy)")
    ap.add_argument(
        "--churn",
        type=int,
        default=100,
        help="between steps this many running jobs finish and this many new jobs arrive (0: the same jobs)",
    )
    ap.add_argument(
        "--rules",
        action="store_true",
        help="each case twice, the plain pool then the same jobs under program rules (PROGRAMS, QUOTAS)",
    )
    ap.add_argument(
        "--default-gc",
        action="store_true",
        help="keep Python's collector settings (not the scheduler process's)",
    )
    ap.add_argument("--capture", type=Path, help="pickle each timed step's allocation problem here")
    ap.add_argument("--change-rules", action="store_true", help="with --rules: " + CHANGE_RULES_HELP)
    a = ap.parse_args()
    global CAPTURE, CHANGE_RULES
    CAPTURE, CHANGE_RULES = a.capture, a.change_rules
    if not a.default_gc:
        settle_gc()  # the scheduler process's collector settings (service/supervisor.py), as it runs a step
    cases = [False, True] if a.rules else [False]
    for policy in a.policy.split(","):
        if not a.no_sqlite:
            got = []
            for rules in cases:
                with tempfile.TemporaryDirectory() as d:
                    url = sqlite_url(Path(d) / "round.sqlite")
                    got.append(
                        run(url, "SQLite", a.jobs, a.devices, policy, a.steps, a.ticks, rules, a.churn)
                    )
            if a.rules:
                compare(f"SQLite {policy}", *got)
        if a.postgres:
            from accelpool.storage.pgserver import fresh_database, postgres_url

            base = postgres_url()
            if base:
                got = [
                    run(
                        fresh_database(base),
                        "PostgreSQL",
                        a.jobs,
                        a.devices,
                        policy,
                        a.steps,
                        a.ticks,
                        rules,
                        a.churn,
                    )
                    for rules in cases
                ]
                if a.rules:
                    compare(f"PostgreSQL {policy}", *got)


if __name__ == "__main__":
    main()
