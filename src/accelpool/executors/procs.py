"""Helpers of the executors: recognising a process after a restart (pid + start time), signalling a
process group that may be gone, reading a job's progress file safely, one poll's events in time order,
the executor's own I/O failures as ExecutorFault."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

from accelpool.ports import ExecutorEvent, ExecutorFault


def _proc_start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, from /proc), or None if it does not exist.

    Used with the pid to recognise our own process after a restart (pids are reused)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            data = f.read()
    except OSError:
        return _start_time_fallback(pid)
    fields = data[data.rfind(")") + 2 :].split()
    if fields and fields[0] == "Z":
        return None  # a zombie has exited
    return fields[19] if len(fields) > 19 else None


def _start_time_fallback(pid: int) -> str | None:
    if sys.platform.startswith("linux"):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # it exists but is not ours to signal: alive, start time unknown
        pass
    return "?"


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):  # the group is gone (or no longer ours): nothing to signal
        pass


def read_progress_file(path: str) -> float | None:
    """A job's progress file (its cumulative step count), read without following links or blocking: the job
    owns the file and could make it a FIFO or a link to a file it may not read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, 64).decode("ascii", errors="replace").strip()
        value = float(text) if text else None
        return value if value is not None and math.isfinite(value) and value >= 0 else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def _in_time_order(events: list[ExecutorEvent]) -> list[ExecutorEvent]:
    """One poll's events in time order (exit times come from the wrappers, so jobs scanned in id order can
    report them out of order), each job's own events kept in the order they happened."""
    last: dict[str, float] = {}
    keys = []
    for e in events:
        k = max(e.time, last.get(e.job, e.time))
        last[e.job] = k
        keys.append(k)
    order = sorted(range(len(events)), key=keys.__getitem__)
    return [events[i] for i in order]


@contextlib.contextmanager
def own_io(what: str) -> Iterator[None]:
    """The executor's own file work (its state and log dirs): an OSError there is the executor's fault,
    raised as ExecutorFault without the host path (the reconciler requeues the job, it does not fail it)."""
    try:
        yield
    except OSError as exc:
        raise ExecutorFault(f"the executor could not {what} ({exc.strerror or type(exc).__name__})") from exc


HOST_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.ENOMEM, errno.EMFILE, errno.ENFILE})
"""OSErrors that say the host is in trouble (disk or inodes full, quota, I/O, no memory or file handles),
whatever the path: the executor's fault, not the job's (a read-only file system may be the job's path)."""


def host_trouble(exc: OSError) -> bool:
    """Whether ``exc`` is the host's trouble (HOST_ERRNOS) rather than a bad path of the job's."""
    return exc.errno in HOST_ERRNOS


def live_wrapper(job_dir: Path) -> int | None:
    """The pid of a rank wrapper recorded in ``job_dir`` (state.json, or state.done.json once its end was
    acked) that is still alive (same pid and start time), or None."""
    for name in ("state.json", "state.done.json"):
        try:
            ranks = json.loads((job_dir / name).read_text())["ranks"]
            found = [(int(r["pid"]), str(r["start_time"])) for r in ranks]
        except (OSError, ValueError, KeyError, TypeError):  # no such record (or unreadable): nothing recorded
            continue
        for pid, started in found:
            if started != "?" and _proc_start_time(pid) == started:
                return pid
    return None
