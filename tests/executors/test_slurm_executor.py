"""SlurmExecutor specifics against a real Slurm (scripts/slurm.sh: three slurmd on this host, s-gpu-0 and
s-gpu-1 with gpu:h100:4, s-npu-0 with npu:rngd:4): discovery, gangs across nodes, device variables, exit
codes, stop with grace, adoption after a restart, node DOWN/DRAIN -> node-lost."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.slurm_nodes import TEST_REASON, USABLE, node_state, states

from accelpool.core.rounds import Placement
from accelpool.core.types import Job
from accelpool.executors.slurm import SlurmExecutor
from accelpool.ports import EventKind, ExecutorEvent, Launch, RunSpec

pytestmark = pytest.mark.slurm


def launch(job: str, command: str, devices, acc: str = "h100", attempt: int = 1, **run) -> Launch:
    return Launch(
        Job(job, scale=sum(len(d) for _, d in devices)),
        Placement(job, acc, tuple(devices)),
        RunSpec(command=command, **run),
        steps_per_second=2.5,
        steps_done=40.0,
        attempt=attempt,
    )


# How long a test waits for Slurm to start or end a job: a bound on waiting, not a claim about speed (30 s
# left little room on a loaded machine); what a test claims about time, it asserts separately.
WAIT = 120.0


def wait_for(ex: SlurmExecutor, pred, seen: list[ExecutorEvent], timeout: float = WAIT) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen += ex.poll()
        if pred(seen):
            return
        time.sleep(0.1)
    raise AssertionError(f"condition not met: {seen}")


def end_of(ex: SlurmExecutor, job: str, timeout: float = WAIT) -> ExecutorEvent:
    seen: list[ExecutorEvent] = []
    wait_for(
        ex,
        lambda s: any(e.job == job and e.kind in (EventKind.EXITED, EventKind.LOST) for e in s),
        seen,
        timeout,
    )
    return next(e for e in seen if e.job == job and e.kind in (EventKind.EXITED, EventKind.LOST))


def rank_envs(out: Path) -> dict[str, dict[str, str]]:
    envs = {}
    for f in sorted(out.glob("env.*")):
        env = {}
        for line in f.read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
        envs[f.name.split(".", 1)[1]] = env
    return envs


def stop_all(e: SlurmExecutor, timeout: float = 30.0) -> None:
    """Teardown: stop every job the executor still runs and poll until they have ended (or ``timeout``)."""
    for j in list(e.active()):
        e.stop(j, "teardown")
    deadline = time.time() + timeout
    while e.active() and time.time() < deadline:
        e.poll()
        time.sleep(0.1)


@pytest.fixture
def ex(tmp_path: Path, slurm_conf: str) -> Iterator[SlurmExecutor]:
    e = SlurmExecutor(
        tmp_path / "state",
        slurm_conf=slurm_conf,
        instance=f"t-{tmp_path.name}",
        extra_env={"ACCELPOOL_URL": "u"},
    )
    yield e
    stop_all(e)


def test_nodes_and_gres_types_are_discovered(ex: SlurmExecutor) -> None:
    nodes = {n.name: (n.accelerator, n.devices) for n in ex.nodes()}
    assert nodes == {"s-gpu-0": ("h100", 4), "s-gpu-1": ("h100", 4), "s-npu-0": ("rngd", 4)}
    assert ex.unrecognized() == {}
    assert ex.reachable()


def test_unknown_gres_types_are_reported_not_guessed() -> None:
    split = SlurmExecutor._split_gres("gpu:h100:4(S:0-1),npu:rngd:2,gpu:4,license:foo:1")
    assert split == [("gpu", "h100", 4), ("npu", "rngd", 2), ("gpu", "", 4), ("license", "foo", 1)]


def test_a_gang_runs_as_one_allocation_across_two_nodes(ex: SlurmExecutor, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    cmd = f'env > {out}/env.$ACCELPOOL_NODE_RANK; echo 7 > "$ACCELPOOL_PROGRESS_FILE"'
    ex.start(
        launch(
            "gang",
            cmd,
            (("s-gpu-0", (0, 1, 2, 3)), ("s-gpu-1", (0, 1, 2, 3))),
            checkpoint_dir=str(tmp_path / "ck"),
        )
    )
    seen: list[ExecutorEvent] = []
    wait_for(ex, lambda s: any(e.kind == EventKind.EXITED for e in s), seen)
    kinds = [e.kind for e in seen if e.job == "gang"]
    assert kinds[0] == EventKind.STARTED and kinds[-1] == EventKind.EXITED
    assert seen[-1].exit_code == 0
    envs = rank_envs(out)
    assert sorted(envs) == ["0", "1"]
    for rank, env in envs.items():
        assert env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"
        assert env["ACCELPOOL_NUM_NODES"] == "2"
        assert env["ACCELPOOL_NODE"] == ("s-gpu-0" if rank == "0" else "s-gpu-1")
        assert env["SLURMD_NODENAME"] == env["ACCELPOOL_NODE"]
        assert env["ACCELPOOL_DEVICES"] == "s-gpu-0:0,1,2,3;s-gpu-1:0,1,2,3"
        assert env["ACCELPOOL_ATTEMPT"] == "1" and env["ACCELPOOL_STEPS_DONE"] == "40.0"
        assert env["ACCELPOOL_URL"] == "u"
        assert env["ACCELPOOL_CHECKPOINT_DIR"] == str(tmp_path / "ck")


def test_npu_devices_come_from_slurms_allocation(ex: SlurmExecutor, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    ex.start(launch("npu", f"env > {out}/env.$ACCELPOOL_NODE_RANK", (("s-npu-0", (0, 1)),), acc="rngd"))
    assert end_of(ex, "npu").exit_code == 0
    env = rank_envs(out)["0"]
    assert env["FURIOSA_DEVICES"] == "0,1"
    assert env["ACCELPOOL_ACCELERATOR"] == "rngd"


def test_different_device_counts_per_node_run_as_a_heterogeneous_job(
    ex: SlurmExecutor, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    ex.start(
        launch("het", f"env > {out}/env.$ACCELPOOL_NODE_RANK", (("s-gpu-0", (0, 1, 2)), ("s-gpu-1", (0,))))
    )
    assert end_of(ex, "het").exit_code == 0
    envs = rank_envs(out)
    assert envs["0"]["CUDA_VISIBLE_DEVICES"] == "0,1,2"
    assert envs["1"]["CUDA_VISIBLE_DEVICES"] == "0"


def test_exit_code_of_a_failing_rank_ends_the_gang(ex: SlurmExecutor, tmp_path: Path) -> None:
    """Rank 1 fails while rank 0 is running its long step: the gang ends with a failure and rank 0 is
    killed, not waited for. No wall-clock bound on Slurm's start-up (the 30 s this test allowed from
    submission included starting both ranks, which a loaded machine can exceed): rank 1 fails only once
    rank 0 has started, and the end must come long before rank 0's 600 s step could, which rank 0's marker
    (written after it) shows."""
    up, done = tmp_path / "rank0-up", tmp_path / "rank0-done"
    cmd = (
        f'if [ "$ACCELPOOL_NODE_RANK" = 1 ]; then'
        f" for _ in $(seq 1200); do [ -e {up} ] && exit 5; sleep 0.1; done; exit 6; fi;"
        f" touch {up}; sleep 600; touch {done}"
    )
    ex.start(launch("bad", cmd, (("s-gpu-0", (0,)), ("s-gpu-1", (0,)))))
    end = end_of(ex, "bad", timeout=300)
    assert end.kind == EventKind.EXITED and end.exit_code not in (0, None), end
    assert up.exists()  # rank 0 was running when rank 1 failed
    assert not done.exists()  # and it was killed with the gang, not run to its end
    assert "bad" not in ex.active()


def test_stop_sends_sigterm_then_kills_after_the_grace_period(ex: SlurmExecutor, tmp_path: Path) -> None:
    marker, ready = tmp_path / "term", tmp_path / "ready"
    cmd = f"trap 'echo got-term > {marker}' TERM; touch {ready}; while true; do sleep 0.2; done"
    ex.start(launch("stub", cmd, (("s-gpu-0", (1,)),), grace_seconds=1.0))
    seen: list[ExecutorEvent] = []
    wait_for(ex, lambda s: any(e.kind == EventKind.STARTED for e in s) and ready.exists(), seen)
    t0 = time.time()
    ex.stop("stub", "preempted")
    end = end_of(ex, "stub")
    assert end.kind == EventKind.EXITED and end.exit_code == -9
    assert end.reason.startswith("stopped: preempted")
    assert marker.exists()  # it got SIGTERM first
    assert time.time() - t0 >= 1.0


def test_a_stop_survives_failed_scancel_commands(tmp_path: Path, slurm_conf: str) -> None:
    """The CI failure of 2026-11-30: a SIGKILL that Slurm refused (nothing to signal yet) meant the cancel
    after it was never sent and the stopped job ran on. Here scancel refuses every SIGKILL and the first
    plain cancel; the job still ends, soon after its grace period."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sbatch", "squeue", "sinfo", "scontrol"):
        real = shutil.which(tool)
        assert real is not None
        (bin_dir / tool).symlink_to(real)
    count = tmp_path / "cancels"
    wrapper = bin_dir / "scancel"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case "$*" in *--signal=KILL*) echo "refused" >&2; exit 1;; *--signal=*) exec '
        f'{shutil.which("scancel")} "$@";; esac\n'
        f"echo x >> {count}\n"
        f'[ "$(wc -l < {count})" -ge 2 ] || {{ echo "timed out" >&2; exit 1; }}\n'
        f'exec {shutil.which("scancel")} "$@"\n'
    )
    wrapper.chmod(0o755)
    e = SlurmExecutor(
        tmp_path / "s", slurm_conf=slurm_conf, instance=f"t-{tmp_path.name}", bin_dir=str(bin_dir)
    )
    # A step that ignores SIGTERM (once its trap is set: a SIGTERM before that would end it), so only the
    # kill path can end it.
    ready = tmp_path / "ready"
    cmd = f"trap '' TERM; touch {ready}; sleep 60"
    e.start(launch("stubborn", cmd, (("s-gpu-1", (1,)),), grace_seconds=0.5))
    seen: list[ExecutorEvent] = []
    wait_for(e, lambda s: any(ev.kind == EventKind.STARTED for ev in s) and ready.exists(), seen)
    t0 = time.time()
    e.stop("stubborn", "preempted")
    end = end_of(e, "stubborn", timeout=30.0)
    assert end.kind == EventKind.EXITED and end.reason.startswith("stopped: preempted")
    assert time.time() - t0 < 20
    assert len(count.read_text().splitlines()) >= 2  # the failed cancel was sent again


def test_a_restarted_executor_adopts_running_jobs(tmp_path: Path, slurm_conf: str) -> None:
    a = SlurmExecutor(tmp_path / "s", slurm_conf=slurm_conf, instance="adopt")
    a.start(launch("keep", "sleep 60", (("s-gpu-1", (0,)),), grace_seconds=0.5))
    seen: list[ExecutorEvent] = []
    wait_for(a, lambda s: any(e.kind == EventKind.STARTED for e in s), seen)
    sid = a.slurm_id("keep")
    a.close()
    b = SlurmExecutor(tmp_path / "s", slurm_conf=slurm_conf, instance="adopt")
    assert b.active() == {"keep"} and b.slurm_id("keep") == sid
    # Another instance does not see it.
    assert SlurmExecutor(tmp_path / "other", slurm_conf=slurm_conf, instance="someone-else").active() == set()
    # Without its state files, the tag in Slurm is enough (a crash between sbatch and the state file).
    shutil.rmtree(tmp_path / "s")
    c = SlurmExecutor(tmp_path / "s", slurm_conf=slurm_conf, instance="adopt")
    assert c.active() == {"keep"} and c.slurm_id("keep") == sid
    c.stop("keep", "done")
    end = end_of(c, "keep")
    assert end.reason.startswith("stopped: done")


@pytest.mark.parametrize("state", ["DOWN", "DRAIN"])
def test_a_node_down_or_drained_loses_its_jobs(ex: SlurmExecutor, slurm_conf: str, state: str) -> None:
    ex.start(launch("n", "sleep 60", (("s-gpu-1", (0,)),), grace_seconds=0.5))
    seen: list[ExecutorEvent] = []
    wait_for(ex, lambda s: any(e.kind == EventKind.STARTED for e in s), seen)
    with node_state(slurm_conf, "s-gpu-1", state):  # resumed and back, whatever happens in the block
        end = end_of(ex, "n")
        assert end.kind == EventKind.LOST and end.reason.startswith("node-lost: s-gpu-1")
    deadline = time.time() + 30
    while "s-gpu-1" not in {n.name for n in ex.nodes()} and time.time() < deadline:
        time.sleep(0.5)
    assert "s-gpu-1" in {n.name for n in ex.nodes()}


def test_a_node_set_down_is_given_back_when_the_test_fails_inside(slurm_conf: str) -> None:
    with pytest.raises(RuntimeError), node_state(slurm_conf, "s-npu-0", "DRAIN"):
        assert states(slurm_conf)["s-npu-0"][1] == TEST_REASON
        raise RuntimeError("a test failing while the node is drained")
    assert states(slurm_conf)["s-npu-0"][0] in USABLE
