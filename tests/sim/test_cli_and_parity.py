"""The CLI end to end (JSON, report) and parity: the simulator decides exactly as the live reconciler does."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import equal_time

from accelpool.cli.main import main
from accelpool.executors.fake import FakeExecutor
from accelpool.runtime.clock import VirtualClock
from accelpool.runtime.reconciler import Reconciler
from accelpool.sim import engine
from accelpool.sim.synthetic import generate
from accelpool.storage.memory import MemoryStore

FIXTURES = Path(__file__).parent.parent / "fixtures" / "traces"


def test_parity_simulator_and_hand_driven_reconciler_decide_the_same():
    """Drive a Reconciler by hand (as the live service would, with the fake executor) and compare every
    round's decision with the simulator's on the same input."""
    w = generate({"h100": 8, "a100": 8, "rngd": 8}, n_jobs=25, seed=2, grant_scale=2.0)
    sim_decisions = []
    engine_result = engine.simulate(w, equal_time, round_seconds=360.0)
    original = engine._Collector.__call__
    try:
        engine._Collector.__call__ = lambda self, r: (sim_decisions.append(r.decision), original(self, r))[1]
        engine.simulate(w, equal_time, round_seconds=360.0)
    finally:
        engine._Collector.__call__ = original

    clock = VirtualClock(w.jobs[0].submit_time)
    store = MemoryStore(w.accelerators)
    store.add_nodes(w.cluster.nodes)
    store.set_prices(w.prices_krw_per_hour)
    for t in w.tenants:
        store.add_tenant(t)
    for p in w.programs:
        store.add_program(p)
    for g in w.grants:
        store.add_grant(g)
    live = []
    rec = Reconciler(
        store,
        FakeExecutor(clock),
        clock,
        equal_time,
        round_seconds=360.0,
        on_round=lambda r: live.append(r.decision),
    )
    pending = sorted(w.jobs, key=lambda j: (j.submit_time, j.id))
    for d in sim_decisions:
        clock.sleep_until(d.now)
        while pending and pending[0].submit_time <= clock.now():
            store.submit(pending[0], w.throughputs[pending[0].id])
            pending.pop(0)
        rec.step()
    assert len(live) == len(sim_decisions) > 5
    for a, b in zip(live, sim_decisions, strict=True):
        assert (a.now, a.start, a.keep, a.preempt, dict(a.waiting)) == (
            b.now,
            b.start,
            b.keep,
            b.preempt,
            dict(b.waiting),
        )
    assert {j: r.end_time for j, r in store.jobs.items()} == {
        j: r.end_time for j, r in engine_result.records.items()
    }


def test_cli_simulate_json_and_report(tmp_path):
    trace = tmp_path / "t.trace"
    trace.write_text("".join((FIXTURES / "gavel_b436b2_head60.trace").read_text().splitlines(True)[:12]))
    out, rep = tmp_path / "m.json", tmp_path / "rep"
    code = main(
        [
            "simulate",
            "--trace",
            str(trace),
            "--format",
            "gavel",
            "--cluster",
            "v100=8,p100=8,k80=8",
            "--policy",
            "fifo,max-min-fairness",
            "--round",
            "7200",
            "--json",
            str(out),
            "--report",
            str(rep),
        ]
    )
    assert code == 0
    data = json.loads(out.read_text())
    assert set(data) == {"fifo", "max-min-fairness"}
    for m in data.values():
        assert m["jobs_completed"] == 12
        for key in ("avg_jct_seconds", "p99_jct_seconds", "makespan_seconds", "utilization"):
            assert key in m
    for name in (
        "metrics.json",
        "index.html",
        "jct_cdf.png",
        "utilization.png",
        "jobs-fifo.csv",
    ):
        assert (rep / name).stat().st_size > 0
    # a Gavel trace has one tenant: no share chart (it would be one solid block), a sentence instead
    assert not (rep / "tenant_shares.png").exists() and "One tenant" in (rep / "index.html").read_text()


def test_cli_bad_input_exits_2(tmp_path):
    bad = tmp_path / "bad.trace"
    bad.write_text("a\tb\n")
    assert main(["simulate", "--trace", str(bad), "--format", "gavel", "--policy", "fifo"]) == 2
    assert main(["simulate", "--trace", str(bad), "--format", "nope"]) == 2
    assert main(["simulate", "--format", "synthetic", "--policy", "no-such-policy"]) == 2
