"""Inside a job: the preemption contract's side (see docs/scheduling.md).

A job that declares ``preemptible: true`` may be stopped at a lease boundary and started again later,
possibly on other devices. Before it is stopped it gets the checkpoint signal, SIGTERM, and
``grace_seconds`` (job spec, default 30) to save its state under ``ACCELPOOL_CHECKPOINT_DIR``; then it is
killed. The directory is the same on every attempt, so the next attempt resumes from it.

    from accelpool import job

    state = job.load_checkpoint() or {"step": 0}      # resume
    while state["step"] < total:
        train_one_step(state)
        if job.checkpoint_requested():                # SIGTERM arrived (or the request file exists)
            job.save_checkpoint(state)
            job.checkpoint_done()                     # marks the checkpoint and exits with 143
        job.report_progress(state["step"])            # cumulative steps: `accelpool show` and the bill see them

``checkpoint_requested()`` installs a SIGTERM handler on its first call (call it once early), and also
answers true when the file ``.accelpool-checkpoint-requested`` exists in the checkpoint directory (for
runners that cannot send signals). Exiting with 143 (128 + SIGTERM) tells the scheduler the job stopped
on request and has not finished: exit 0 only when the work is done.

``report_progress(steps)`` tells the executor the job's *cumulative* step count (every attempt's steps,
not this attempt's): it becomes the job's ``steps_done`` (``accelpool show``), its measured speed and its
restart cost (from STARTED to the attempt's first report). It writes ``ACCELPOOL_PROGRESS_FILE``, which
the executor reads at each poll; it does nothing where the executor gives no such file.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REQUEST_FILE = ".accelpool-checkpoint-requested"
DONE_FILE = ".accelpool-checkpoint-done"
STATE_FILE = "accelpool-state.json"
STOPPED_EXIT_CODE = 143
PROGRESS_ENV = "ACCELPOOL_PROGRESS_FILE"


class _Flag:
    """Whether SIGTERM arrived (one per process; set by the handler)."""

    def __init__(self) -> None:
        self.installed = False
        self.requested = False

    def install(self) -> None:
        if self.installed:
            return
        self.installed = True
        try:
            signal.signal(signal.SIGTERM, self._on_term)
        except ValueError:  # not the main thread: the request file still works
            pass

    def _on_term(self, signum: int, frame: object) -> None:
        self.requested = True


_flag = _Flag()


def checkpoint_dir() -> Path | None:
    """The job's checkpoint directory (created if missing), or None when the job has none."""
    raw = os.environ.get("ACCELPOOL_CHECKPOINT_DIR", "")
    if not raw:
        return None
    path = Path(raw)
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_requested() -> bool:
    """True once the scheduler asked the job to checkpoint and stop (SIGTERM, or the request file)."""
    _flag.install()
    if _flag.requested:
        return True
    d = checkpoint_dir()
    return d is not None and (d / REQUEST_FILE).exists()


def save_checkpoint(state: dict[str, Any]) -> Path:
    """Write ``state`` (JSON) atomically to the checkpoint directory; returns the file."""
    d = checkpoint_dir()
    if d is None:
        raise RuntimeError("ACCELPOOL_CHECKPOINT_DIR is not set: give the job a checkpoint_dir")
    tmp = d / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, d / STATE_FILE)
    return d / STATE_FILE


def load_checkpoint() -> dict[str, Any] | None:
    """The state saved by an earlier attempt, or None on a first start."""
    d = checkpoint_dir()
    if d is None or not (d / STATE_FILE).exists():
        return None
    data = json.loads((d / STATE_FILE).read_text())
    return data if isinstance(data, dict) else None


def checkpoint_done(exit: bool = True) -> None:
    """Mark the checkpoint as complete (removes a request file) and, by default, exit with 143."""
    d = checkpoint_dir()
    if d is not None:
        (d / DONE_FILE).write_text(f"{time.time():.3f}\n")
        (d / REQUEST_FILE).unlink(missing_ok=True)
    if exit:
        sys.exit(STOPPED_EXIT_CODE)


def report_progress(steps: float) -> bool:
    """Report the job's cumulative step count (module docstring). The file is replaced whole (written
    beside it, then renamed), so the executor never reads half a number. Returns False when the executor
    gave the job no progress file (run by hand, or an executor that does not read one)."""
    raw = os.environ.get(PROGRESS_ENV, "")
    if not raw:
        return False
    value = float(steps)
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"report_progress: steps must be a finite number >= 0, got {steps!r}")
    # a file of its own per writer (several processes of a rank may report), readable by the executor
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(raw) + ".", dir=os.path.dirname(raw) or ".")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(f"{value:.17g}\n")
        os.replace(tmp, raw)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
