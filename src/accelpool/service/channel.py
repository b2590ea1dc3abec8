"""What the API process and the scheduler process exchange besides the database: files in the data dir.

The database is the only shared truth (jobs, cancels, progress, charges). Two things live elsewhere:

* **Job logs.** The local executor writes them to ``<data-dir>/executor/logs/<job>.log``: the API reads
  that file directly. Other executors (Ray) hold a running job's logs remotely; the API drops a request
  file in ``<data-dir>/run/log-requests/`` and the scheduler, which polls that folder a few times a second,
  answers with ``<data-dir>/run/log-replies/<job>.log`` (written whole, then renamed). When no answer comes
  in time (scheduler down) the API falls back to the executor's finished-log file
  (``<data-dir>/ray-logs/<job>.log``).
* **The scheduler's status** (``<data-dir>/run/scheduler.json``: pid, rounds, last round's duration and
  time, unrecognized nodes), for the API's ``/metrics``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from accelpool.executors.local import _safe as safe_name


def run_dir(data_dir: Path) -> Path:
    return data_dir / "run"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class LogReader:
    """The API side: a job's logs without the executor in this process."""

    def __init__(self, data_dir: Path, executor: str, wait_seconds: float = 3.0) -> None:
        self.data_dir, self.executor, self.wait_seconds = data_dir, executor, wait_seconds
        self.requests = run_dir(data_dir) / "log-requests"
        self.replies = run_dir(data_dir) / "log-replies"

    def __call__(self, job_id: str) -> str:
        name = safe_name(job_id)
        if self.executor == "local":
            path = self.data_dir / "executor" / "logs" / f"{name}.log"
            # with registered sites (service/sites.py) a job may run at another site: ask the scheduler
            if path.exists() or not (self.data_dir / "sites").exists():
                return _read(path)
        if self.executor == "fake":
            return ""
        self.requests.mkdir(parents=True, exist_ok=True)
        asked = time.time()
        (self.requests / name).write_text(job_id, encoding="utf-8")
        reply = self.replies / f"{name}.log"
        end = asked + self.wait_seconds
        while time.time() < end:
            try:
                if reply.stat().st_mtime >= asked - 0.01:
                    return _read(reply)
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        return _read(self.data_dir / "ray-logs" / f"{name}.log")


def serve_log_requests(data_dir: Path, logs: Callable[[str], str]) -> int:
    """The scheduler side: answer every pending log request with the executor's ``logs(job)``."""
    requests = run_dir(data_dir) / "log-requests"
    try:
        pending = list(os.scandir(requests))
    except FileNotFoundError:
        return 0
    replies = run_dir(data_dir) / "log-replies"
    replies.mkdir(parents=True, exist_ok=True)
    n = 0
    for entry in pending:
        if entry.name.endswith(".tmp"):
            continue
        try:
            job_id = Path(entry.path).read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        try:
            text = logs(job_id)
        except Exception as exc:  # the remote side failed: say so instead of leaving the API waiting
            text = f"(logs not available: {exc})\n"
        _atomic_write(replies / f"{safe_name(job_id)}.log", text)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
        n += 1
    return n


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def write_status(data_dir: Path, status: Mapping[str, object]) -> None:
    d = run_dir(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    _atomic_write(d / "scheduler.json", json.dumps(dict(status), sort_keys=True))


def read_status(data_dir: Path) -> dict[str, float]:
    """The scheduler's last status as numbers ({} when it has not written one)."""
    try:
        raw = json.loads((run_dir(data_dir) / "scheduler.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {k: float(v) for k, v in raw.items() if isinstance(v, int | float)}
