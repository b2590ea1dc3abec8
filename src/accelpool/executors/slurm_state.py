"""The Slurm executor's record of each job it submitted (kept in files so that a restarted control plane
adopts its jobs), and how a job that Slurm has ended is reported (exit code, reason, stop cause)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

from accelpool.executors.slurm_parse import Row, bad_state, decode_status
from accelpool.ports import EventKind, StopCause


@dataclass
class SlurmJob:
    job_id: str
    slurm_id: str
    attempt: int
    grace: float
    nodes: list[str]  # Slurm node names of the placement
    submitted: float  # wall time (time.time())
    started: bool = False
    stop_reason: str | None = None
    kill_at: float | None = None  # wall time
    killed: bool = False
    lost_reason: str | None = None  # a node of the job went bad: report LOST when Slurm has ended it
    last_steps: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SlurmJob:
        d = json.loads(text)
        return cls(**d)


def _path(jobs_dir: Path, job_id: str) -> Path:
    return jobs_dir / f"{quote(job_id, safe='')}.json"


def save_job(jobs_dir: Path, job: SlurmJob) -> None:
    """Write the job's record atomically (``<jobs_dir>/<job>.json``)."""
    path = _path(jobs_dir, job.job_id)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(job.to_json())
    os.replace(tmp, path)


def forget_job(jobs_dir: Path, job_id: str) -> None:
    """The job has ended and been reported: its record is kept as ``.done`` (not adopted again)."""
    path = _path(jobs_dir, job_id)
    try:
        os.replace(path, path.with_suffix(".done"))
    except OSError:  # no record (never written, or finished already): nothing left to close
        pass


def recorded_end(job: SlurmJob, path: str) -> Row | None:
    """The end the job's batch script recorded (``slurm_batch.exit_record``), as the row Slurm would have
    shown for it (COMPLETED or FAILED, its exit code, its start and end), for a job Slurm no longer lists
    (purged after ``MinJobAge``); None without a record (the batch script was killed, or never ran)."""
    try:
        with open(path) as f:
            code_s, end_s, start_s = f.read().split()[:3]
        code, end, start = int(code_s), float(end_s), float(start_s)
    except (OSError, ValueError):
        return None
    status = (-code & 0x7F) if code < 0 else (code & 0xFF) << 8  # a wait status, as Slurm keeps it
    state = "COMPLETED" if code == 0 else "FAILED"  # end_of calls it NODE_FAIL where a node is bad now
    return Row(job.slurm_id, state, status, start, end, ",".join(job.nodes) or "recorded", "", RECORDED)


RECORDED = "accelpool exit record"  # Row.reason of an end read from the batch script's record


def load_jobs(jobs_dir: Path) -> Iterator[SlurmJob]:
    """The records of jobs not yet reported ended (unreadable ones are skipped)."""
    for f in sorted(jobs_dir.glob("*.json")):
        try:
            yield SlurmJob.from_json(f.read_text())
        except (OSError, ValueError, TypeError):
            continue


def end_of(
    job: SlurmJob, row: Row, state: str, node_state: Mapping[str, str], deadline: str | None = None
) -> tuple[EventKind, int | None, str, StopCause | None]:
    """How a job Slurm has ended (``state``) is reported: (event kind, exit code, reason, stop cause).

    A node of the job lost -> LOST ``node-lost``; stopped by accelpool -> EXITED -15 (-9 if killed) with
    ``stopped: <reason>``; ended by its sandboxed rank at its max_run_time (``deadline``: the reason the
    rank recorded) -> that reason, never a success; else its exit code (negative: killed by that signal),
    never a success unless Slurm says COMPLETED."""
    if job.lost_reason is not None:
        return EventKind.LOST, None, job.lost_reason, None
    down = [n for n in job.nodes if bad_state(node_state.get(n, "DOWN"))]
    if row.reason == RECORDED and down and decode_status(row.exit_status) != 0:  # read from the exit record
        why = f"node-lost: {', '.join(down)} (down, and the job ended badly; Slurm has purged it)"
        return EventKind.LOST, None, why, StopCause.NODE_LOST  # its node failed it, not the tenant's code
    if state in ("NODE_FAIL", "BOOT_FAIL"):
        bad = [n for n in job.nodes if bad_state(node_state.get(n, "DOWN"))] or job.nodes
        return (
            EventKind.LOST,
            None,
            f"node-lost: {', '.join(bad)} (Slurm ended it {state})",
            StopCause.NODE_LOST,
        )
    code = decode_status(row.exit_status)
    if job.stop_reason is not None:
        forced = -9 if job.killed else -15
        why = f"stopped: {job.stop_reason} (Slurm {state}, exit code {code})"
        return EventKind.EXITED, forced, why, StopCause.REQUESTED
    if code is None:
        code = 0 if state == "COMPLETED" else 1
    if state != "COMPLETED" and code == 0:
        code = 1  # ended badly (TIMEOUT, CANCELLED by someone else, ...) but no code: never a success
    if deadline is not None:  # the rank's own deadline, to the second (slurm_batch._RUN_UNTIL)
        return EventKind.EXITED, code or -15, deadline, None
    reason = "" if code == 0 else (f"killed by signal {-code}" if code < 0 else f"exit code {code}")
    if state == "TIMEOUT":  # its --time, from max_run_time (whole minutes): a limit, like the wrapper's
        reason = f"max_run_time exceeded (Slurm TIMEOUT at its time limit; {reason})"
    elif state not in ("COMPLETED", "FAILED"):
        reason = f"{reason} (Slurm {state})".strip()
    return EventKind.EXITED, code, reason, None


def slurm_available(slurm_conf: str | None = None) -> bool:
    """Whether Slurm's commands are installed and its controller answers (for tests, the CLI and benchmarks)."""
    if shutil.which("sinfo") is None:
        return False
    env = dict(os.environ)
    if slurm_conf:
        env["SLURM_CONF"] = slurm_conf
    try:
        p = subprocess.run(["sinfo", "-h", "-o", "%P"], env=env, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0
