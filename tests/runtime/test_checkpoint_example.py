"""The preemption contract from the job's side: the example job checkpoints on SIGTERM and resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start(ckpt: Path, total: int) -> subprocess.Popen[str]:
    env = {**os.environ, "ACCELPOOL_CHECKPOINT_DIR": str(ckpt), "PYTHONPATH": str(ROOT / "src")}
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
    second = start(ckpt, 8)
    out2, _ = second.communicate(timeout=30)
    assert second.returncode == 0
    assert out2.splitlines()[0] == f"starting at step {saved} of 8"
    assert out2.splitlines()[-1] == "done"
