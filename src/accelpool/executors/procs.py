"""Process helpers of the LocalExecutor: recognising its own processes after a restart (pid + start time)
and signalling a process group without failing when it is already gone."""

from __future__ import annotations

import os
import sys


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
    except PermissionError:
        pass
    return "?"


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
