"""A job that ends while the control plane is down, and that Slurm then purges (``MinJobAge``, 300 s by
default), used to be reported LOST after the restart ("Slurm no longer knows job N"): the store requeued a
finished job and ran it again. Now its batch script records how it ended on the shared state dir, and a
restarted executor that no longer finds it in Slurm reports that end. Against the real test Slurm
(scripts/slurm.sh); the purge is Slurm's listing with the job left out (waiting out MinJobAge would take
minutes)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from accelpool.core.rounds import Placement
from accelpool.core.types import Job
from accelpool.executors.slurm import SlurmExecutor
from accelpool.executors.slurm_parse import Row
from accelpool.ports import EventKind, ExecutorEvent, Launch, RunSpec, StopCause

pytestmark = pytest.mark.slurm


class Purged(SlurmExecutor):
    """The executor over a Slurm that has forgotten the jobs in ``purged``."""

    purged: set[str] = set()

    def _query(self) -> dict[str, Row]:
        return {k: r for k, r in super()._query().items() if k not in self.purged}


def _make(cls: type[SlurmExecutor], tmp_path: Path, conf: str) -> SlurmExecutor:
    return cls(tmp_path / "state", slurm_conf=conf, instance=f"purge-{tmp_path.name}")


@pytest.mark.parametrize(("command", "code"), [("echo done", 0), ("echo failing; exit 3", 3)])
def test_an_end_slurm_purged_is_read_from_the_batch_scripts_record(
    tmp_path: Path, slurm_conf: str, command: str, code: int
) -> None:
    ex = _make(SlurmExecutor, tmp_path, slurm_conf)
    job = Launch(
        Job("p", scale=1), Placement("p", "h100", (("s-gpu-0", (0,)),)), RunSpec(command=command), 1.0
    )
    t0 = time.time()
    ex.start(job)
    slurm_id = ex.slurm_id("p")
    assert slurm_id is not None
    ex.close()  # the control plane goes down before it saw the job start or end
    record = tmp_path / "state" / "progress" / "p.exit"
    deadline = time.time() + 120
    while not record.exists():
        assert time.time() < deadline, "the batch script recorded no end"
        time.sleep(0.2)
    Purged.purged = {slurm_id}
    again = _make(Purged, tmp_path, slurm_conf)
    try:
        assert "p" in again.active()
        seen: list[ExecutorEvent] = []
        deadline = time.time() + 60
        while not any(e.kind in (EventKind.EXITED, EventKind.LOST) for e in seen):
            assert time.time() < deadline, seen
            seen += again.poll()
            time.sleep(0.2)
        kinds = [e.kind for e in seen]
        assert kinds == [EventKind.STARTED, EventKind.EXITED], seen  # billed from its start to its end
        start, end = seen
        assert end.exit_code == code and end.stop_cause() is (
            StopCause.COMPLETED if code == 0 else StopCause.FAILED
        ), end
        assert t0 - 1 <= start.time <= end.time <= time.time()
        assert "Slurm no longer knows" not in end.reason
        again.ack(seen)
        assert "p" not in again.active()
    finally:
        again.close()


def test_without_a_record_a_purged_job_is_still_lost(tmp_path: Path, slurm_conf: str) -> None:
    ex = _make(SlurmExecutor, tmp_path, slurm_conf)
    job = Launch(Job("q", scale=1), Placement("q", "h100", (("s-gpu-0", (0,)),)), RunSpec("sleep 30"), 1.0)
    ex.start(job)
    slurm_id = ex.slurm_id("q")
    assert slurm_id is not None
    Purged.purged = {slurm_id}
    gone = _make(Purged, tmp_path, slurm_conf)
    ex.close()
    try:
        (end,) = [e for e in gone.poll() if e.kind in (EventKind.EXITED, EventKind.LOST)]
        assert end.kind is EventKind.LOST and "Slurm no longer knows" in end.reason
    finally:
        gone.close()
        subprocess.run(["scancel", slurm_id], env={**os.environ, "SLURM_CONF": slurm_conf}, timeout=30)


@pytest.mark.parametrize(
    ("node", "code", "kind"), [("IDLE", 3, "exited"), ("DOWN*", 3, "lost"), ("DOWN*", 0, "exited")]
)
def test_a_recorded_failure_on_a_node_now_down_is_the_nodes_not_the_tenants(
    tmp_path: Path, node: str, code: int, kind: str
) -> None:
    # a review: srun --kill-on-bad-exit ends non-zero when a node of the gang dies; read from the record
    # (Slurm purged the job, so no NODE_FAIL), that was billed as the tenant's failure, not requeued
    from accelpool.executors.slurm_state import SlurmJob, end_of, recorded_end

    record = tmp_path / "p.exit"
    record.write_text(f"{code} 1000.0 900.0\n")
    job = SlurmJob("p", "77", 1, 30.0, ["s-gpu-0", "s-gpu-1"], 899.0, started=True)
    row = recorded_end(job, str(record))
    assert row is not None and (row.start, row.end) == (900.0, 1000.0)
    got, exit_code, reason, cause = end_of(job, row, row.state, {"s-gpu-0": "ALLOCATED", "s-gpu-1": node})
    assert got.value == kind, reason
    if kind == "lost":
        assert cause is StopCause.NODE_LOST and reason.startswith("node-lost: s-gpu-1")
    else:
        assert exit_code == code
