"""Parity: the simulator engine itself (``sim.engine.simulate``) run on MemoryStore (the simulator's store)
and on SqlStore (the live service's store, SQLite and PostgreSQL), both driving the same Reconciler with
FakeExecutor and a virtual clock: identical decisions and identical charges, round by round, and the same
grant balances and per-tenant totals at the end."""

from __future__ import annotations

from accelpool.core.round_config import RoundConfig
from accelpool.core.types import Cluster, Grant, Job, Node, Program, Tenant
from accelpool.runtime.reconciler import RoundReport
from accelpool.service.server import get_policy
from accelpool.sim.engine import simulate
from accelpool.sim.workload import Workload

JOBS = (
    Job("a", tenant="t1", preemptible=True, scale=4, total_steps=4000.0, grant="g1"),
    Job("b", tenant="t2", preemptible=True, scale=8, total_steps=3000.0, grant="g2"),
    Job("c", tenant="t1", scale=2, total_steps=500.0, grant="g1", submit_time=50.0),
    Job("d", tenant="t2", preemptible=True, scale=6, total_steps=9000.0, grant="g2", submit_time=120.0),
    Job("e", tenant="t1", scale=1, total_steps=100.0, grant="g1", submit_time=300.0),
    Job("f", tenant="t2", scale=4, total_steps=800.0, grant="g2", submit_time=310.0, priority=5),
)
THROUGHPUT = {
    "a": {"h100": 4.0, "rngd": 1.5},
    "b": {"h100": 3.0, "rngd": 2.0},
    "c": {"rngd": 1.0},
    "d": {"h100": 5.0},
    "e": {"h100": 1.0, "rngd": 1.0},
    "f": {"h100": 2.0, "rngd": 1.0},
}


def workload() -> Workload:
    return Workload(
        "parity",
        JOBS,
        THROUGHPUT,
        Cluster((Node("h-0", "h100", 8), Node("h-1", "h100", 4), Node("r-0", "rngd", 8))),
        tenants=(Tenant("t1"), Tenant("t2")),
        programs=(Program("p", "p", 10**9),),
        grants=(Grant("g1", "p", "t1", 200_000), Grant("g2", "p", "t2", 60_000)),
        prices_krw_per_hour={"h100": 4000, "rngd": 1500},
    )


def replay(store=None) -> tuple[list[tuple], object]:
    rounds: list[tuple] = []

    def seen(r: RoundReport) -> None:
        d = r.decision
        rounds.append(
            (
                d.now,
                sorted((p.job, p.accelerator, p.devices) for p in d.start),
                sorted((p.job, p.devices) for p in d.keep),
                sorted(d.preempt),
                sorted((j, str(getattr(w, "value", w))) for j, w in d.waiting.items()),
                sorted(d.positions.items()),
                sorted((c.job, c.amount_krw, round(c.device_seconds, 6), c.start, c.end) for c in r.charges),
            )
        )

    result = simulate(
        workload(),
        get_policy("max-min-fairness"),
        round_seconds=60.0,
        store=store,
        on_round=seen,
        max_rounds=60,
        config=RoundConfig.per_round(),
    )
    return rounds, result


def test_the_simulator_engine_decides_and_charges_identically_on_memory_and_sql(sql_store):
    sim_rounds, sim = replay()
    live_rounds, live = replay(sql_store)
    assert sim_rounds == live_rounds
    assert any(r[1] for r in sim_rounds)  # something started
    assert any(r[3] for r in sim_rounds)  # something was preempted (f's priority)
    assert any(r[6] for r in sim_rounds)  # something was charged
    assert live.grant_spent_krw == sim.grant_spent_krw  # type: ignore[attr-defined]
    assert live.charges_krw == sim.charges_krw  # type: ignore[attr-defined]
