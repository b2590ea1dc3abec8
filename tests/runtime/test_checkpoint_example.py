"""The preemption contract from the job's side: the example job checkpoints on SIGTERM and resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accelpool import job
from accelpool.executors.procs import read_progress_file

ROOT = Path(__file__).resolve().parents[2]


def start(ckpt: Path, total: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "ACCELPOOL_CHECKPOINT_DIR": str(ckpt),
        "ACCELPOOL_PROGRESS_FILE": str(ckpt.parent / ".progress"),
        "PYTHONPATH": str(ROOT / "src"),
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "checkpoint_job.py"), str(total)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_example_job_checkpoints_on_sigterm_and_resumes(tmp_path: Path) -> None:
    ckpt = tmp_path / "ck"
    first = start(ckpt, 8)
    assert first.stdout is not None
    assert first.stdout.readline().startswith("starting at step 0")
    time.sleep(1.6)
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=20)
    assert first.returncode == 143
    saved = int(out.strip().split()[-1])
    assert 1 <= saved < 8
    assert (ckpt / ".accelpool-checkpoint-done").exists()
    # the steps it reported (cumulative), as the executor reads them
    assert read_progress_file(str(tmp_path / ".progress")) == saved
    second = start(ckpt, 8)
    out2, _ = second.communicate(timeout=30)
    assert second.returncode == 0
    assert out2.splitlines()[0] == f"starting at step {saved} of 8"
    assert out2.splitlines()[-1] == "done"
    assert read_progress_file(str(tmp_path / ".progress")) == 8  # every attempt's steps, not the last one's
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".progress")] == [".progress"]


def test_report_progress_without_a_progress_file_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACCELPOOL_PROGRESS_FILE", raising=False)
    assert job.report_progress(3) is False


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_report_progress_refuses_what_the_executor_would_drop(
    bad: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCELPOOL_PROGRESS_FILE", str(tmp_path / ".progress"))
    with pytest.raises(ValueError, match="finite number >= 0"):
        job.report_progress(bad)
    assert not (tmp_path / ".progress").exists()


def test_report_progress_replaces_the_whole_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / ".progress"
    monkeypatch.setenv("ACCELPOOL_PROGRESS_FILE", str(path))
    assert job.report_progress(123456.5) is True
    assert job.report_progress(7) is True  # shorter than before: no digits of the last number left behind
    assert read_progress_file(str(path)) == 7


def test_report_progress_from_several_threads_at_once_never_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a review: one fixed temporary name made concurrent writers of one rank race (FileNotFoundError)
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / ".progress"
    monkeypatch.setenv("ACCELPOOL_PROGRESS_FILE", str(path))

    def write(k: int) -> None:
        for i in range(200):
            job.report_progress(k * 1000 + i)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))  # a writer's exception is raised here
    assert read_progress_file(str(path)) is not None
    assert [f.name for f in tmp_path.iterdir()] == [".progress"]
