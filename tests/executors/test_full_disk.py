"""A review filled the data dir's disk under a running local executor: a job printing output was killed
(the wrapper died on its log write, and its death signal ended the sandbox), a job that ended then was
recorded failed, or, with its exit record unwritten, lost and run again after a restart; a full disk at a
start failed the job instead of requeuing it (and its next start was refused as "already running here");
and a cancel while a moved job's next attempt waited for the old one still launched that attempt."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.executors.test_local_executor import bare_plan, launch, wait_end, wait_log

from accelpool.executors import local as local_mod
from accelpool.executors import sandbox as sb
from accelpool.executors.local import LocalExecutor
from accelpool.executors.sandbox_wrapper import WRAPPER
from accelpool.ports import EventKind, ExecutorEvent, ExecutorFault


def _wrapper(tmp_path: Path, command: str, log: str, exit_path: Path) -> subprocess.Popen[bytes]:
    jdir = tmp_path / "j"
    jdir.mkdir(exist_ok=True)
    plan = bare_plan(jdir, command, log, exit_path)
    (jdir / "state.json").write_text("{}")  # the gate is open: the command runs at once
    (jdir / "plan.json").write_text(json.dumps(plan))
    return subprocess.Popen([sys.executable, "-I", "-S", "-c", WRAPPER, str(jdir / "plan.json")])


def test_a_log_the_disk_refuses_loses_output_not_the_job(tmp_path: Path) -> None:
    exit_path = tmp_path / "exit.0"
    # /dev/full refuses every write with ENOSPC, as a full disk does
    w = _wrapper(
        tmp_path, "for i in 1 2 3; do echo line $i; done; sleep 0.3; echo end; exit 0", "/dev/full", exit_path
    )
    assert w.wait(timeout=30) == 0
    assert sb.read_exit(str(exit_path))[0] == 0


def test_an_exit_record_the_disk_refuses_is_written_once_it_can_be(tmp_path: Path) -> None:
    later = tmp_path / "later"  # missing at first: every write of the record fails until it is made
    w = _wrapper(tmp_path, "echo hi; exit 3", str(tmp_path / "log"), later / "exit.0")
    time.sleep(1.5)
    assert w.poll() is None  # still trying: the job's outcome is not given up
    later.mkdir()
    assert w.wait(timeout=30) == 3
    assert sb.read_exit(str(later / "exit.0"))[0] == 3


def test_a_full_disk_at_a_start_is_the_executors_fault_and_the_next_start_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = LocalExecutor(tmp_path)
    full = OSError(errno.ENOSPC, "No space left on device")

    def no_room(*_a: object, **_k: object) -> None:
        raise full

    with monkeypatch.context() as m:  # the job's dirs
        m.setattr(sb, "prepare_dirs", no_room)
        with pytest.raises(ExecutorFault, match="No space left"):
            ex.start(launch("d", "echo first; exit 0", devices=(("n0", (0,)),)))
    with monkeypatch.context() as m:  # the executor's state file (it opens the wrappers' gate)
        m.setattr(LocalExecutor, "_save", no_room)
        with pytest.raises(ExecutorFault, match="No space left"):
            ex.start(launch("d", "echo second; exit 0", devices=(("n0", (0,)),)))
    assert ex.active() == set()
    ex.start(launch("d", "echo third; exit 0", devices=(("n0", (0,)),)))  # not "already running here"
    end, seen = wait_end(ex, "d")
    assert end.kind == EventKind.EXITED and end.exit_code == 0
    assert "third" in ex.logs("d") and "first" not in ex.logs("d") and "second" not in ex.logs("d")
    ex.close()


def test_a_bad_path_of_the_job_is_still_the_jobs_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = LocalExecutor(tmp_path)

    def loop(*_a: object, **_k: object) -> None:
        raise OSError(errno.ELOOP, "Too many levels of symbolic links")

    monkeypatch.setattr(sb, "prepare_dirs", loop)
    with pytest.raises(OSError) as err:
        ex.start(launch("b", "exit 0", devices=(("n0", (0,)),)))
    assert not isinstance(err.value, ExecutorFault) and local_mod.host_trouble(err.value) is False
    ex.close()


def test_a_cancel_while_the_next_attempt_waits_drops_that_attempt(tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path)
    ex.start(
        launch(
            "c", "trap 'sleep 1; exit 0' TERM; echo up; while true; do sleep 0.05; done", grace_seconds=5.0
        )
    )
    wait_log(ex, "c", "up")
    ex.stop("c", "moved")
    ex.start(launch("c", "echo second-attempt; exit 0"))  # waits for the old run to end
    ex.stop("c", "cancelled")
    seen: list[ExecutorEvent] = []
    deadline = time.time() + 10
    while time.time() < deadline and ex.active():
        seen += ex.poll()
        time.sleep(0.05)
    for _ in range(3):
        time.sleep(0.1)
        seen += ex.poll()
    assert [e.kind for e in seen if e.kind is not EventKind.PROGRESS] == [EventKind.STARTED, EventKind.EXITED]
    assert "second-attempt" not in ex.logs("c") and "attempt 3 on" in ex.logs("c")
    assert ex.logs("c").count("=== accelpool: attempt") == 1
    ex.close()


def test_a_stop_while_the_exit_record_waits_ends_the_wrapper_with_the_jobs_code(tmp_path: Path) -> None:
    """A review: a job that ended while the disk was full showed as running, and a stop then waited out
    its grace and killed the wrapper (-9: the job's code lost). The wrapper leaves the retry at a stop and
    exits with the job's code, which the executor reads when there is no record."""
    import signal

    w = _wrapper(tmp_path, "echo hi; exit 3", str(tmp_path / "log"), tmp_path / "missing" / "exit.0")
    time.sleep(1.5)
    assert w.poll() is None
    w.send_signal(signal.SIGTERM)
    assert w.wait(timeout=5) == 3
