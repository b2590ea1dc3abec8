"""The key hostile cases on the SlurmExecutor with the job sandbox (SlurmExecutor(sandbox=...)): each rank's
Slurm step execs bwrap (executors/slurm_batch.py slurm_rank). Against the real test Slurm (scripts/slurm.sh).
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.executors.test_slurm_executor import end_of, launch, stop_all
from tests.security.hostile import WIN, _host_procs

from accelpool.executors import sandbox as sb
from accelpool.executors.slurm import SlurmExecutor

pytestmark = [pytest.mark.slurm, pytest.mark.skipif(shutil.which("bwrap") is None, reason="no bubblewrap")]
CANARY = "ACCELPOOL_TEST_SLURM_CANARY"


@pytest.fixture
def ex(tmp_path: Path, slurm_conf: str) -> Iterator[tuple[SlurmExecutor, Path, str]]:
    data = tmp_path / "data"  # stands in for the service's data dir
    data.mkdir()
    secret = "secret-" + secrets.token_hex(8)
    (data / "admin-token").write_text(secret)
    canary = "canary-" + secrets.token_hex(8)
    os.environ[CANARY] = canary  # sbatch --export=ALL carries the service's environment to the step
    cfg = sb.SandboxConfig(  # as the service: its checkpoint root is where jobs' default dirs are made
        tenant_ids={"default": (60001, 60001)}, job_roots=(str(tmp_path / "data-checkpoints"),)
    ).with_protect(data)
    e = SlurmExecutor(tmp_path / "state", slurm_conf=slurm_conf, instance=f"h-{tmp_path.name}", sandbox=cfg)
    try:
        yield e, data, secret + " " + canary
    finally:
        del os.environ[CANARY]
        stop_all(e)
        e.close()


def test_a_slurm_job_runs_in_the_sandbox(ex: tuple[SlurmExecutor, Path, str]) -> None:
    e, data, secrets_ = ex
    cmd = (
        f"cat {data}/admin-token && echo {WIN}; ls -A {data}; env; id -u; "
        f"touch /usr/pwned-by-slurm-job && echo {WIN}; sleep 311.57 & echo 7 > $ACCELPOOL_PROGRESS_FILE; "
        "echo done"
    )
    e.start(launch("s1", cmd, (("s-gpu-0", (1,)),)))
    end = end_of(e, "s1", 60)
    logs = e.logs("s1")
    assert end.exit_code == 0, (end, logs)
    assert "done" in logs and WIN not in logs, logs
    for s in secrets_.split():
        assert s not in logs, "a secret (the data dir's token or the service's environment) leaked"
    assert "\n60001\n" in logs, "the job runs as the tenant's uid"
    assert "CUDA_VISIBLE_DEVICES=" in logs and "SLURM_JOB_ID=" in logs, logs  # Slurm picks the device
    assert not Path("/usr/pwned-by-slurm-job").exists()
    deadline = time.time() + 20
    while _host_procs("sleep 311.57") and time.time() < deadline:
        time.sleep(0.2)
    assert not _host_procs("sleep 311.57"), "a child outlived the Slurm job"


def test_a_sandboxed_slurm_job_writes_its_checkpoint_dir_and_the_next_attempt_sees_it(
    ex: tuple[SlurmExecutor, Path, str], tmp_path: Path
) -> None:
    """The control plane's default ACCELPOOL_CHECKPOINT_DIR (<root>/<job id>, service/options.py) on Slurm:
    created for the job, owned by the tenant's uid, bound read-write in the sandbox, the same on every
    attempt, so the second attempt reads what the first wrote."""
    e, _data, _ = ex
    ck = tmp_path / "data-checkpoints" / "c1"
    cmd = 'n=$(cat "$ACCELPOOL_CHECKPOINT_DIR/seen" 2>/dev/null | wc -l); echo "before=$n"; echo x >> "$ACCELPOOL_CHECKPOINT_DIR/seen"'
    for attempt in (1, 2):
        e.start(launch("c1", cmd, (("s-gpu-0", (0,)),), attempt=attempt, checkpoint_dir=str(ck)))
        end = end_of(e, "c1", 60)
        assert end.exit_code == 0, (end, e.logs("c1"))
        assert f"before={attempt - 1}" in e.logs("c1"), e.logs("c1")
    assert ck.stat().st_uid == 60001 and (ck / "seen").read_text() == "x\nx\n"


def test_a_sandboxed_slurm_job_ends_at_its_max_run_time_to_the_second(
    ex: tuple[SlurmExecutor, Path, str],
) -> None:
    """Slurm's --time counts whole minutes; the sandboxed rank enforces max_run_time itself: SIGTERM to
    every process of the sandbox at 3 s, the sandbox killed after the grace period (TERM is ignored here),
    the job failed with the reason, no process left."""
    from tests.executors.test_slurm_executor import wait_for

    from accelpool.core.rounds import Placement
    from accelpool.core.types import Job
    from accelpool.ports import EventKind, ExecutorEvent, Launch, RunSpec

    e, _data, _ = ex
    cmd = "trap '' TERM; setsid -f sleep 316.56; echo started; sleep 600"
    e.start(
        Launch(
            Job("t3", scale=1, max_run_seconds=3.0),
            Placement("t3", "h100", (("s-gpu-0", (0,)),)),
            RunSpec(command=cmd, grace_seconds=1.0),
            steps_per_second=1.0,
        )
    )
    seen: list[ExecutorEvent] = []
    wait_for(e, lambda s: any(x.kind in (EventKind.EXITED, EventKind.LOST) for x in s), seen, 60)
    start = next(x for x in seen if x.kind == EventKind.STARTED)
    end = next(x for x in seen if x.kind in (EventKind.EXITED, EventKind.LOST))
    assert end.kind == EventKind.EXITED and end.reason == "max_run_time exceeded (3 s)", (end, e.logs("t3"))
    assert end.exit_code is not None and end.exit_code != 0
    # 3 s, the 1 s grace, the rank's start inside the Slurm job, and Slurm's whole-second times
    assert end.time - start.time <= 3 + 1 + 2.5, (start, end)
    assert "started" in e.logs("t3")
    deadline = time.time() + 20
    while _host_procs("sleep 316.56") and time.time() < deadline:
        time.sleep(0.2)
    assert not _host_procs("sleep 316.56"), "a process of the job outlived its max_run_time"
