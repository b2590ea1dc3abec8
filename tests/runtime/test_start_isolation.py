"""One job that cannot start fails alone, with its cause; the rest of the round goes on (issue 12, item 1)."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import greedy_fastest

from accelpool.core.types import Grant, Job, JobState, Node, Program
from accelpool.executors.fake import FakeExecutor
from accelpool.executors.local import LocalExecutor
from accelpool.ports import Launch, RunSpec
from accelpool.runtime.clock import VirtualClock
from accelpool.runtime.reconciler import Reconciler
from accelpool.storage.memory import MemoryStore


def _pool(store: MemoryStore) -> None:
    store.add_nodes([Node("h-0", "h100", 4), Node("h-1", "h100", 4)])
    store.set_prices({"h100": 100_000})
    store.add_program(Program("p", "program", budget_krw=10**9))
    for t in ("a", "b"):
        store.add_grant(Grant(f"g-{t}", "p", t, amount_krw=10**8))


def test_nonexistent_workdir_and_nul_env_fail_alone_unbilled(tmp_path: Path) -> None:
    clock = VirtualClock()
    store = MemoryStore()
    _pool(store)
    ex = LocalExecutor(tmp_path / "state", clock=clock)
    rec = Reconciler(store, ex, clock, greedy_fastest, round_seconds=60.0)
    t = {"h100": 1.0}
    store.submit(
        Job("a-dir", tenant="a", grant="g-a", scale=1), t, RunSpec("sleep 30", workdir="/nonexistent/x")
    )
    store.submit(Job("a-nul", tenant="a", grant="g-a", scale=1), t, RunSpec("sleep 30", env={"X": "a\x00b"}))
    store.submit(Job("b-ok", tenant="b", grant="g-b", scale=1), t, RunSpec("sleep 30"))
    try:
        report = rec.step()
        assert {p.job for p in report.decision.start} == {"a-dir", "a-nul", "b-ok"}
        assert ex.active() == {"b-ok"}
        assert store.jobs["b-ok"].status.state == JobState.RUNNING
        for j, cause in (("a-dir", "/nonexistent/x"), ("a-nul", "null byte")):
            rec_j = store.jobs[j]
            assert rec_j.status.state == JobState.FAILED
            assert rec_j.reason.startswith("could not start:") and cause in rec_j.reason, rec_j.reason
            assert "SandboxError" not in rec_j.reason  # accelpool's own refusals read as sentences
        clock.advance(60.0)
        rec.step()
        clock.advance(60.0)
        rec.step()
        billed = {c.job for c in store.charges}
        assert billed == {"b-ok"}  # never launched, never billed
        assert store.grants["g-a"].spent_krw == 0 and store.grants["g-b"].spent_krw > 0
    finally:
        ex.stop("b-ok", "test over")
        ex.close()


class PickyExecutor(FakeExecutor):
    """A fake executor that refuses what the real ones refuse (Popen: NUL bytes, a missing cwd) and
    raises on a command it cannot run."""

    def start(self, launch: Launch) -> None:
        run = launch.run
        if any("\x00" in s for kv in run.env.items() for s in kv) or "\x00" in run.command:
            raise ValueError("embedded null byte")
        if run.workdir is not None and not os.path.isdir(run.workdir):
            raise FileNotFoundError(2, "No such file or directory", run.workdir)
        if run.command == "boom":
            raise RuntimeError("executor failure")
        super().start(launch)


bad_runs = st.builds(
    RunSpec,
    command=st.sampled_from(["", "true", "boom", "x\x00y"]),
    env=st.dictionaries(st.sampled_from(["A", "B\x00", "C"]), st.text(max_size=3), max_size=2),
    workdir=st.sampled_from([None, "/", "/nonexistent", "/tmp"]),
)


def _launched(
    runs_a: list[RunSpec], sizes_a: list[int], sizes_b: list[int], rounds: int
) -> dict[str, object]:
    clock = VirtualClock()
    store = MemoryStore()
    _pool(store)
    ex = PickyExecutor(clock)
    rec = Reconciler(store, ex, clock, greedy_fastest, round_seconds=60.0)
    n = 0
    for i, (run, size) in enumerate(zip(runs_a, sizes_a, strict=True)):
        store.submit(
            Job(f"a{i}", tenant="a", grant="g-a", scale=size, submit_time=float(n)), {"h100": 1.0}, run
        )
        n += 1
    for i, size in enumerate(sizes_b):
        store.submit(Job(f"b{i}", tenant="b", grant="g-b", scale=size, submit_time=float(n)), {"h100": 1.0})
        n += 1
    first: set[str] = set()
    for r in range(rounds):
        report = rec.step()
        placed_b = {p.job for p in report.decision.start if p.job.startswith("b")}
        launched_b = {launch.job.id for launch in ex.launches if launch.job.id in placed_b}
        assert launched_b == placed_b  # every b job the round chose was started
        for j in placed_b:
            assert store.jobs[j].status.state == JobState.RUNNING
        if r == 0:
            first = launched_b
        clock.advance(60.0)
    return {"first": first, "b_charged": {c.job for c in store.charges if c.job.startswith("b")}}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    runs_a=st.lists(bad_runs, min_size=1, max_size=4),
    sizes=st.data(),
    sizes_b=st.lists(st.integers(1, 4), min_size=1, max_size=4),
)
def test_no_input_of_one_tenant_changes_whether_another_tenants_job_starts(runs_a, sizes, sizes_b) -> None:
    sizes_a = sizes.draw(st.lists(st.integers(1, 4), min_size=len(runs_a), max_size=len(runs_a)))
    clean = [RunSpec("true") for _ in runs_a]
    got = _launched(runs_a, sizes_a, sizes_b, rounds=3)
    base = _launched(clean, sizes_a, sizes_b, rounds=1)
    assert got["first"] == base["first"]
