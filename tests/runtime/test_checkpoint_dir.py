"""ACCELPOOL_CHECKPOINT_DIR by default (issue 10): a job without a checkpoint_dir gets <root>/<job id>,
created by the control plane, the same on every attempt; what an attempt writes there, the next one sees.
Run with the local executor: an attempt writes a file, is preempted, the next attempt finds it."""

from __future__ import annotations

import time
from pathlib import Path

from accelpool.core.policies import get_policy
from accelpool.core.round_config import RoundConfig
from accelpool.core.types import Job, JobState, Node
from accelpool.executors.local import LocalExecutor
from accelpool.executors.sandbox import SandboxConfig
from accelpool.ports import RunSpec
from accelpool.runtime.clock import VirtualClock
from accelpool.runtime.reconciler import Reconciler
from accelpool.service.options import Options
from accelpool.storage.memory import MemoryStore

ATTEMPT = (
    'd="$ACCELPOOL_CHECKPOINT_DIR"; n=$(cat "$d/seen" 2>/dev/null | wc -l); '
    'echo "$n" > "$d/before-$ACCELPOOL_ATTEMPT"; echo x >> "$d/seen"; sleep 30'
)


def _wait(cond, seconds: float = 20.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.2)
    return False


def test_an_attempt_writes_is_preempted_and_the_next_attempt_sees_it(tmp_path: Path) -> None:
    clock = VirtualClock()
    store = MemoryStore()
    store.add_nodes([Node("h-0", "h100", 1)])
    root = tmp_path / "checkpoints"  # the service's checkpoint root, where the executor makes job dirs
    ex = LocalExecutor(tmp_path / "state", clock=clock, sandbox=SandboxConfig(job_roots=(str(root),)))
    config = RoundConfig(
        lease_seconds=None, min_run_seconds=0.0, restart_seconds=0.0
    )  # every round may preempt
    # a fair policy, so that the priority-1 job displaces the running one (fifo never stops a running job)
    rec = Reconciler(
        store,
        ex,
        clock,
        get_policy("max-min-fairness"),
        round_seconds=60.0,
        config=config,
        checkpoint_root=str(root),
    )
    store.submit(Job("a", preemptible=True), {"h100": 1.0}, RunSpec(ATTEMPT))
    try:
        rec.step()
        ck = root / "a"
        assert _wait(lambda: (ck / "seen").exists())  # created for the job by the executor
        store.submit(Job("b", priority=1, submit_time=1.0), {"h100": 1.0}, RunSpec("sleep 1"))
        clock.advance(60.0)
        report = rec.step()
        assert [p.job for p in report.decision.start] == ["b"] and report.decision.preempt[0][0] == "a"

        def again() -> bool:
            clock.advance(60.0)
            rec.step()
            return store.jobs["a"].status.state is JobState.RUNNING and (ck / "before-2").exists()

        assert _wait(again, 30.0)
        assert (ck / "before-1").read_text().strip() == "0"
        assert (ck / "before-2").read_text().strip() == "1"  # the second attempt saw the first one's file
    finally:
        for j in list(ex.active()):
            ex.stop(j, "test over")
        ex.close()


def test_the_service_puts_checkpoints_next_to_its_data_dir_or_where_the_operator_says(tmp_path: Path) -> None:
    for kind in ("local", "ray", "slurm"):  # every executor that runs processes; outside the data dir
        assert (
            Options(data_dir=tmp_path / "data", executor=kind).checkpoint_root
            == tmp_path / "data-checkpoints"
        )
    assert Options(data_dir=tmp_path / "data", executor="fake").checkpoint_root is None  # runs nothing
    shared = str(tmp_path / "shared" / "ck")
    assert Options(data_dir=tmp_path / "d", executor="slurm", checkpoint_dir=shared).checkpoint_root == Path(
        shared
    )
    assert Options.from_json(Options(checkpoint_dir=shared).to_json()).checkpoint_root == Path(shared)


def test_a_declared_checkpoint_dir_is_kept(tmp_path: Path) -> None:
    from accelpool.executors.fake import FakeExecutor

    clock = VirtualClock()
    store = MemoryStore()
    store.add_nodes([Node("h-0", "h100", 2)])
    ex = FakeExecutor(clock)
    rec = Reconciler(store, ex, clock, get_policy("fifo"), checkpoint_root=str(tmp_path / "root"))
    store.submit(Job("mine"), {"h100": 1.0}, RunSpec("x", checkpoint_dir=str(tmp_path / "own")))
    store.submit(Job("dflt"), {"h100": 1.0}, RunSpec("x"))
    rec.step()
    dirs = {launch.job.id: launch.run.checkpoint_dir for launch in ex.launches}
    assert dirs == {"mine": str(tmp_path / "own"), "dflt": str(tmp_path / "root" / "dflt")}
