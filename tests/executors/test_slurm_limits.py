"""A job's limits and image on Slurm (executors/slurm_batch.py slurm_limits): memory, cores and run time
become Slurm's own options, the sandboxed ranks get the sandbox wrapper's rlimits, an image or a limit Slurm
cannot meet fails the job at start with the reason (never runs without them). The first tests need no Slurm;
the rest run against the real test Slurm (scripts/slurm.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.executors.test_slurm_executor import end_of, launch, stop_all

from accelpool.core.rounds import Placement
from accelpool.core.types import Job
from accelpool.executors import sandbox as sb
from accelpool.executors.slurm import SlurmExecutor
from accelpool.executors.slurm_batch import ram_constrained, refused, slurm_limits
from accelpool.executors.slurm_parse import Row
from accelpool.executors.slurm_state import SlurmJob
from accelpool.executors.slurm_state import end_of as slurm_end_of
from accelpool.ports import EventKind, Launch, RunSpec

MiB = 2**20


def _launch(limits=None, image=None, max_run=None) -> Launch:
    return Launch(
        Job("j", scale=1, max_run_seconds=max_run),
        Placement("j", "h100", (("n0", (0,)),)),
        RunSpec(command="true", image=image, limits=limits or {}),
        1.0,
    )


def test_limits_become_slurm_options_within_the_operators_maximum() -> None:
    opts = slurm_limits(_launch({"memory": 300 * MiB + 1, "cpus": 1.5}, max_run=90), None, "hpc")
    assert opts == ["--mem=301M", "--cpus-per-task=2", "--time=2"]  # time: whole minutes, rounded up
    cfg = sb.SandboxConfig(max_memory_bytes=512 * MiB, max_cpus=4)
    assert slurm_limits(_launch(), cfg, "hpc") == ["--mem=512M", "--cpus-per-task=4"]  # the defaults
    with pytest.raises(sb.SandboxError, match=r"limits.memory .* above the operator's maximum"):
        slurm_limits(_launch({"memory": 1024 * MiB}), cfg, "hpc")


def test_a_job_with_an_image_is_refused_on_slurm_with_the_reason() -> None:
    with pytest.raises(
        sb.SandboxError, match=r"image 'alpine:3': jobs with an image cannot run at Slurm site hpc"
    ):
        slurm_limits(_launch(image="alpine:3"), None, "hpc")


def test_what_slurm_says_is_read() -> None:
    assert refused(
        "sbatch: error: Batch job submission failed: Requested node configuration is not available"
    )
    assert not refused("sbatch: error: Batch job submission failed: Unable to contact slurm controller")
    assert ram_constrained("TaskPlugin = task/cgroup,task/affinity\n...\nConstrainRAMSpace       = yes\n")
    assert not ram_constrained("TaskPlugin              = task/none\n")
    job = SlurmJob("j", "7", 1, 30.0, ["n0"], 0.0, started=True)
    row = Row("7", "TIMEOUT", 15, 1.0, 61.0, "n0", "", "TimeLimit")
    kind, code, reason, _ = slurm_end_of(job, row, "TIMEOUT", {})
    assert kind == EventKind.EXITED and code != 0 and sb.is_limit_reason(reason), reason


@pytest.fixture
def sandboxed(tmp_path: Path, slurm_conf: str) -> Iterator[SlurmExecutor]:
    if shutil.which("bwrap") is None:
        pytest.skip("no bubblewrap")
    cfg = sb.SandboxConfig(tenant_ids={"default": (60001, 60001)})
    e = SlurmExecutor(tmp_path / "state", slurm_conf=slurm_conf, instance=f"l-{tmp_path.name}", sandbox=cfg)
    try:
        yield e
    finally:
        stop_all(e)
        e.close()


def _show_job(slurm_conf: str, slurm_id: str) -> str:
    env = {**os.environ, "SLURM_CONF": slurm_conf}
    return subprocess.run(
        ["scontrol", "show", "job", slurm_id], env=env, capture_output=True, text=True
    ).stdout


@pytest.mark.slurm
def test_limits_reach_slurm_and_the_sandboxed_ranks(sandboxed: SlurmExecutor, slurm_conf: str) -> None:
    limits = {"memory": 256 * MiB, "processes": 64, "cpus": 2}
    cmd = (
        'echo "as=$(ulimit -v) nproc=$(ulimit -p)"; '
        "python3 -c 'bytearray(512 * 2**20)' 2>/dev/null && echo ALLOCATED || echo REFUSED"
    )
    run = launch("lim", cmd, (("s-gpu-0", (0,)),), limits=limits)
    run = Launch(Job("lim", scale=1, max_run_seconds=150.0), run.placement, run.run, 1.0)
    sandboxed.start(run)
    sid = sandboxed.slurm_id("lim")
    assert sid is not None
    shown = _show_job(slurm_conf, sid)
    assert "TimeLimit=00:03:00" in shown and "MinMemoryNode=256M" in shown, shown
    assert "CPUs/Task=2" in shown, shown
    end = end_of(sandboxed, "lim", 60)
    logs = sandboxed.logs("lim")
    assert end.exit_code == 0, (end, logs)
    assert f"as={256 * 1024} nproc=64" in logs and "REFUSED" in logs and "ALLOCATED" not in logs, logs


@pytest.mark.slurm
def test_a_limit_slurm_cannot_meet_fails_the_job_at_start(sandboxed: SlurmExecutor) -> None:
    big = launch("big", "true", (("s-gpu-0", (0,)),), limits={"memory": 1024**4})  # nodes have 2,000 MB
    with pytest.raises(RuntimeError, match="Slurm refuses the job as asked"):
        sandboxed.start(big)
    assert "big" not in sandboxed.active()
    with pytest.raises(sb.SandboxError, match="image"):
        sandboxed.start(launch("img", "true", (("s-gpu-0", (0,)),), image="alpine:3"))
    assert sandboxed.active() == set()


def test_a_limit_over_the_maximum_is_written_as_a_number_a_person_reads() -> None:
    # a tenant's test: "limits.processes = 1e+06 is above the operator's maximum (2048)"
    with pytest.raises(
        sb.SandboxError, match=r"limits.processes = 1,000,000 is above the operator's maximum \(2,048\)"
    ):
        sb.effective_limits(sb.SandboxConfig(max_processes=2048), {"processes": 1e6})
