"""LocalExecutor specifics: environment, logs, SIGTERM grace then SIGKILL, adoption after a restart."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from accelpool.core.rounds import Placement
from accelpool.core.types import Job
from accelpool.executors.local import LocalExecutor, _proc_start_time
from accelpool.executors.sandbox import SandboxConfig
from accelpool.executors.sandbox_wrapper import WRAPPER
from accelpool.ports import EventKind, ExecutorEvent, Launch, RunSpec


def _running(cmdline: str) -> list[int]:
    """Live (not zombie) processes whose command line is ``cmdline`` (pids as the host sees them)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cl = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                if cl == cmdline and _proc_start_time(int(d)) is not None:
                    out.append(int(d))
            except OSError:
                pass
    return out


def launch(job: str, command: str, acc: str = "h100", devices=(("n0", (2, 3)),), **run) -> Launch:
    return Launch(
        Job(job, scale=sum(len(d) for _, d in devices)),
        Placement(job, acc, tuple(devices)),
        RunSpec(command=command, **run),
        steps_per_second=2.5,
        steps_done=40.0,
        attempt=3,
    )


def bare_plan(jdir: Path, command: str, log: str, exit_path: Path) -> dict[str, object]:
    """A wrapper's plan for ``command`` alone (default sandbox, no devices), gated on ``jdir/state.json``."""
    from accelpool.executors import sandbox as sb

    return sb.plan(
        sb.SandboxConfig(),
        command=command,
        env={},
        tenant="t",
        work_dir=str(jdir),
        checkpoint_dir=None,
        workdir=None,
        devices=[],
        log_path=log,
        exit_path=str(exit_path),
        gate=str(jdir / "state.json"),
    )


def wait_log(ex: LocalExecutor, job: str, text: str, timeout: float = 10.0) -> None:
    """Until the job's log shows ``text`` (a job says it has set its traps before a test stops it: on a
    loaded machine a fixed sleep can end before the shell has read its first line)."""
    deadline = time.time() + timeout
    while text not in ex.logs(job):
        assert time.time() < deadline, f"{job}: no {text!r} in its log after {timeout} s"
        time.sleep(0.05)


def wait_end(ex: LocalExecutor, job: str, timeout: float = 10.0) -> tuple[ExecutorEvent, list[ExecutorEvent]]:
    seen: list[ExecutorEvent] = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen += ex.poll()
        for e in seen:
            if e.job == job and e.kind in (EventKind.EXITED, EventKind.LOST):
                return e, seen
        time.sleep(0.05)
    raise AssertionError(f"{job} did not end: {seen}")


def env_of(ex: LocalExecutor, job: str) -> dict[str, str]:
    out = {}
    for line in ex.logs(job).splitlines():
        if "=" in line and not line.startswith("==="):
            k, v = line.split("=", 1)
            out[k] = v
    return out


@pytest.mark.parametrize(
    ("acc", "var"), [("h100", "CUDA_VISIBLE_DEVICES"), ("rngd", "FURIOSA_DEVICES"), ("atom", "RBLN_DEVICES")]
)
def test_devices_and_accelpool_variables_are_in_the_environment(tmp_path: Path, acc: str, var: str) -> None:
    root = str(tmp_path / "ckpts")  # the service's checkpoint root: job dirs are made there
    ex = LocalExecutor(
        tmp_path, extra_env={"ACCELPOOL_API_URL": "http://x"}, sandbox=SandboxConfig(job_roots=(root,))
    )
    ex.start(launch("j", "env", acc=acc, checkpoint_dir=root + "/j", env={"MINE": "1"}))
    end, _ = wait_end(ex, "j")
    assert end.exit_code == 0
    env = env_of(ex, "j")
    assert env[var] == "2,3"
    assert env["ACCELPOOL_JOB_ID"] == "j"
    assert env["ACCELPOOL_ACCELERATOR"] == acc
    assert env["ACCELPOOL_DEVICES"] == "n0:2,3"
    assert env["ACCELPOOL_CHECKPOINT_DIR"] == root + "/j"
    assert env["ACCELPOOL_ATTEMPT"] == "3"
    assert float(env["ACCELPOOL_STEPS_DONE"]) == 40.0
    assert env["ACCELPOOL_API_URL"] == "http://x" and env["MINE"] == "1"
    assert (tmp_path / "ckpts" / "j").is_dir()
    ex.close()


def test_one_process_per_node_share_each_with_its_own_devices(tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path)
    ex.start(
        launch(
            "g",
            'echo "rank=$ACCELPOOL_NODE_RANK node=$ACCELPOOL_NODE dev=$CUDA_VISIBLE_DEVICES"',
            devices=(("a", (0, 1, 2, 3)), ("b", (4, 5, 6, 7))),
        )
    )
    end, _ = wait_end(ex, "g")
    assert end.exit_code == 0
    text = ex.logs("g")
    assert "rank=0 node=a dev=0,1,2,3" in text and "rank=1 node=b dev=4,5,6,7" in text
    ex.close()


def test_progress_file_is_reported_as_cumulative_steps(tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path)
    ex.start(
        launch("p", 'echo 41 > "$ACCELPOOL_PROGRESS_FILE"; sleep 0.3; echo 57 > "$ACCELPOOL_PROGRESS_FILE"')
    )
    _, seen = wait_end(ex, "p")
    steps = [e.steps for e in seen if e.kind == EventKind.PROGRESS]
    assert steps[-1] == 57.0
    ex.close()


def test_job_report_progress_reaches_the_executor_from_inside_the_sandbox(tmp_path: Path) -> None:
    # accelpool.job's own source, run by the system's python3 in the sandbox (the repository itself may sit
    # under a directory the sandbox hides, e.g. a clone in /tmp)
    import accelpool.job as job_module

    source = Path(job_module.__file__).read_text()
    cmd = f"python3 - <<'JOB'\n{source}\nfor n in (5, 12.5):\n    report_progress(n)\nJOB\n"
    ex = LocalExecutor(tmp_path)
    ex.start(launch("jp", cmd))
    end, seen = wait_end(ex, "jp")
    assert end.exit_code == 0, ex.logs("jp")
    assert [e.steps for e in seen if e.kind == EventKind.PROGRESS][-1] == 12.5
    ex.close()


def test_stop_gives_a_grace_period_to_checkpoint(tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path)
    cmd = "trap 'echo checkpointed; exit 0' TERM; echo ready; while true; do sleep 0.05; done"
    ex.start(launch("t", cmd, grace_seconds=5.0))
    wait_log(ex, "t", "ready")
    t0 = time.time()
    ex.stop("t", "preempted")
    assert time.time() - t0 < 0.5  # stop does not block
    end, _ = wait_end(ex, "t")
    assert end.exit_code == -15 and end.reason.startswith("stopped: preempted")
    assert "checkpointed" in ex.logs("t")
    ex.close()


@pytest.mark.parametrize("env", [{}, {"s": "1", "j": "1", "rc": "7"}])  # the init's names, set by a job
def test_stop_gives_the_grace_period_to_a_program_the_shell_started(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # `sh -c 'python3 ...'`: dash forks python rather than exec it, and dies at once on the stop's SIGTERM;
    # the sandbox must live on until python has saved (a tenant's checkpoint example lost its state so)
    prog = (
        "import signal, sys, time\n"
        "def term(*_):\n"
        "    time.sleep(1.0)\n"
        '    print("saved after the stop", flush=True)\n'
        "    sys.exit(143)\n"
        "signal.signal(signal.SIGTERM, term)\n"
        'print("ready", flush=True)\n'
        "while True:\n"
        "    time.sleep(0.05)\n"
    )
    ex = LocalExecutor(tmp_path)
    ex.start(launch("py", f"python3 -c '{prog}'", grace_seconds=10.0, env=env))
    wait_log(ex, "py", "ready")
    t0 = time.time()
    ex.stop("py", "preempted")
    end, _ = wait_end(ex, "py", timeout=15.0)
    assert "saved after the stop" in ex.logs("py")
    assert end.reason.startswith("stopped: preempted") and end.exit_code == -15
    assert time.time() - t0 < 8.0  # ended when python did, not at the end of the grace period
    ex.close()


def test_a_finished_command_still_ends_its_sandbox_at_once(tmp_path: Path) -> None:
    # not stopped: the command's end ends the job, whatever it left running in the background
    ex = LocalExecutor(tmp_path)
    t0 = time.time()
    ex.start(launch("bg", "sleep 300 & echo done"))
    end, _ = wait_end(ex, "bg")
    assert end.exit_code == 0 and time.time() - t0 < 8.0
    assert not _running("sleep 300")
    ex.close()


def test_stop_kills_the_process_group_after_the_grace_period(tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path)
    # ignores SIGTERM, and has a grandchild in the same group that must die too
    ex.start(
        launch(
            "k",
            "trap '' TERM; sleep 100.417 & echo child=$!; while true; do sleep 0.05; done",
            grace_seconds=0.5,
        )
    )
    t_end = time.time() + 5
    while not _running("sleep 100.417") and time.time() < t_end:
        time.sleep(0.05)
    assert _running("sleep 100.417")
    t0 = time.time()
    ex.stop("k", "cancelled")
    end, _ = wait_end(ex, "k")
    assert end.exit_code == -9
    assert 0.4 <= time.time() - t0 < 5.0
    time.sleep(0.1)
    assert not _running("sleep 100.417")  # gone
    ex.close()


def test_running_job_is_adopted_after_restart_not_started_twice(tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path)
    ex.start(launch("r", 'echo started; sleep 1; echo 9 > "$ACCELPOOL_PROGRESS_FILE"; exit 4'))
    time.sleep(0.2)
    pids = ex.pids("r")
    ex.close()
    del ex
    ex2 = LocalExecutor(tmp_path)
    assert ex2.active() == {"r"}
    assert ex2.pids("r") == pids
    with pytest.raises(RuntimeError):
        ex2.start(launch("r", "true"))
    end, seen = wait_end(ex2, "r")
    assert end.kind == EventKind.EXITED and end.exit_code == 4
    assert any(e.kind == EventKind.PROGRESS and e.steps == 9.0 for e in seen)
    assert ex2.logs("r").count("started") == 1
    assert ex2.active() == set()
    ex2.close()


def test_exit_while_control_plane_was_down_is_reported_after_restart(tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path)
    ex.start(launch("d", "exit 0"))
    ex.close()
    time.sleep(0.5)
    ex2 = LocalExecutor(tmp_path)
    assert ex2.active() == {"d"}  # so recover() does not call it lost
    end, _ = wait_end(ex2, "d")
    assert end.exit_code == 0
    ex2.close()


def test_stop_deadline_survives_a_restart(tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path)
    ex.start(launch("z", "trap '' TERM; echo ready; while true; do sleep 0.05; done", grace_seconds=0.5))
    wait_log(ex, "z", "ready")
    ex.stop("z", "cancelled")
    ex.close()
    ex2 = LocalExecutor(tmp_path)
    end, _ = wait_end(ex2, "z")
    assert end.exit_code == -9 and end.reason.startswith("stopped: cancelled")
    ex2.close()


def test_vanished_process_without_exit_record_is_lost(tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path)
    ex.start(launch("v", "sleep 30"))
    time.sleep(0.2)
    pids = ex.pids("v")
    ex.close()
    import signal

    os.killpg(pids[0], signal.SIGKILL)  # the wrapper dies too: no exit record
    time.sleep(0.2)
    ex2 = LocalExecutor(tmp_path)
    end, _ = wait_end(ex2, "v")
    assert end.kind == EventKind.LOST
    ex2.close()


def test_job_started_again_while_being_stopped_restarts_after_the_old_attempt_ends(tmp_path: Path) -> None:
    """The scheduler may preempt a job and place it again (or move it) in one round: the reconciler then
    calls stop() and start() on it back to back. The new attempt starts once the old one has ended."""
    ex = LocalExecutor(tmp_path)
    ex.start(
        launch(
            "m",
            "trap 'echo term; sleep 0.3; exit 0' TERM; echo run-$ACCELPOOL_ATTEMPT; "
            "while true; do sleep 0.05; done",
            grace_seconds=5.0,
        )
    )
    wait_log(ex, "m", "run-3")
    ex.stop("m", "moved")
    again = launch("m", "echo run-$ACCELPOOL_ATTEMPT; exit 0")
    ex.start(Launch(again.job, again.placement, again.run, 1.0, 0.0, attempt=4))  # no RuntimeError
    assert ex.active() == {"m"}
    seen: list[ExecutorEvent] = []
    deadline = time.time() + 10
    while time.time() < deadline and not any(e.kind == EventKind.EXITED and e.exit_code == 0 for e in seen):
        seen += ex.poll()
        time.sleep(0.05)
    kinds = [(e.kind, e.exit_code) for e in seen if e.kind != EventKind.PROGRESS]
    assert kinds == [
        (EventKind.STARTED, None),
        (EventKind.EXITED, -15),
        (EventKind.STARTED, None),
        (EventKind.EXITED, 0),
    ], seen
    assert next(e for e in seen if e.kind == EventKind.EXITED).reason.startswith("stopped: moved")
    text = ex.logs("m")
    assert text.index("run-3") < text.index("term") < text.index("run-4")
    assert ex.active() == set()
    ex.close()


def test_job_that_finished_before_its_stop_reports_its_real_exit_and_is_not_restarted(tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path)
    ex.start(launch("f", "echo done"))
    time.sleep(0.5)  # it has exited; no poll() has seen it yet
    ex.stop("f", "moved")
    ex.start(launch("f", "echo second"))
    end, seen = wait_end(ex, "f")
    assert end.kind == EventKind.EXITED and end.exit_code == 0 and not end.reason.startswith("stopped")
    for _ in range(3):
        seen += ex.poll()
    assert [e.kind for e in seen].count(EventKind.STARTED) == 1  # the first attempt only
    assert "second" not in ex.logs("f") and ex.active() == set()
    ex.close()


def test_an_end_reported_but_not_yet_acknowledged_is_reported_again_after_a_crash(tmp_path: Path) -> None:
    """poll() reported the exit, then the control plane died before recording it: the next executor on the
    same state dir reports it again (instead of the store calling a finished job lost and rerunning it)."""
    ex = LocalExecutor(tmp_path)
    ex.start(launch("a", "exit 0"))
    wait_end(ex, "a")
    ex._closed.set()  # a crash: no close(), so nothing is acknowledged
    ex2 = LocalExecutor(tmp_path)
    assert ex2.active() == {"a"}
    end, seen = wait_end(ex2, "a")
    assert end.exit_code == 0
    ex2.poll()  # a poll is no acknowledgement: the store may not have it yet
    ex2.close()
    ex3 = LocalExecutor(tmp_path)
    assert ex3.active() == {"a"}
    end, seen = wait_end(ex3, "a")
    ex3.ack(seen)  # the store has recorded it
    ex3.close()
    assert LocalExecutor(tmp_path).active() == set()


def test_a_process_spawned_but_not_recorded_never_runs_its_command(tmp_path: Path) -> None:
    """The wrapper waits for the job's state file; if the control plane dies before writing it, the command
    never runs, so a restarted control plane cannot end up with an unknown copy of the job."""
    import json
    import subprocess
    import sys

    jdir = tmp_path / "j"
    jdir.mkdir()
    marker = tmp_path / "ran"
    plan = bare_plan(jdir, f"touch {marker}", str(jdir / "log"), jdir / "exit.0")
    (jdir / "plan.json").write_text(json.dumps(plan))
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); time.sleep(0.3)",
            sys.executable,
            "-c",
            WRAPPER,
            str(jdir / "plan.json"),
        ]
    )
    parent.wait()
    time.sleep(0.5)
    (jdir / "state.json").write_text("{}")  # too late: the wrapper has gone
    time.sleep(0.3)
    assert not marker.exists() and not (jdir / "exit.0").exists()


def test_an_exit_while_the_control_plane_is_down_is_reported_with_its_real_time(tmp_path: Path) -> None:
    """The wrapper records the exit time: billing after a restart stops when the job really ended."""
    ex = LocalExecutor(tmp_path)
    ex.start(launch("e", "sleep 0.3"))
    ex.close()
    time.sleep(3.0)
    restarted_at = time.time()
    end, _ = wait_end(LocalExecutor(tmp_path), "e")
    assert end.exit_code == 0
    assert end.time < restarted_at - 2.0, (end.time, restarted_at)


def test_max_run_time_is_enforced_by_the_sandbox(tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path)
    p = Placement("m", "h100", (("n0", (0,)),))
    job = Job("m", scale=1, max_run_seconds=1.0)
    t0 = time.time()
    ex.start(Launch(job, p, RunSpec(command="trap '' TERM; sleep 30", grace_seconds=0.5), 1.0))
    end, _ = wait_end(ex, "m")
    assert end.exit_code != 0 and end.reason.startswith("max_run_time exceeded"), end
    assert time.time() - t0 < 4.0
