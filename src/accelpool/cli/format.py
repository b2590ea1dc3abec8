"""What the tenant and operator commands share: reading input files, parsing TYPE=N lists, and printing
tables whose id columns are never cut."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from accelpool.cli.render import console
from accelpool.core.errors import InputError


def read_text_file(path: Path) -> str:
    """A UTF-8 text file's content; InputError (exit 2, one line) when it is missing, a directory,
    unreadable or not UTF-8."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise InputError("is a directory, not a file", file=str(path)) from None
    except FileNotFoundError:
        raise InputError("no such file", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r})",
            file=str(path),
            line=line,
        ) from None


def ts(t: float | None) -> str:
    return "" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


# Columns that hold ids: never cut or wrapped (the other columns wrap to make room), so an id can always be
# copied from an 80-column terminal.
# (a node's ``name`` is its id; a job's ``name`` is free text and wraps).
_ID_COLUMNS = frozenset({"id", "job", "tenant", "program", "grant", "field", "state"})


def table(title: str, cols: list[str], rows: list[list[Any]]) -> None:
    out = Table(title=title)
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    ids = _ID_COLUMNS if "id" in cols else _ID_COLUMNS | {"name"}
    for k, c in enumerate(cols):
        right = c in ("KRW", "device-h", "devices", "count", "pos")
        if c in ids:
            width = max([len(c)] + [len(r[k]) for r in cells])
            out.add_column(c, no_wrap=True, min_width=width)
        else:
            out.add_column(c, justify="right" if right else "left", overflow="fold")
    for r in cells:
        out.add_row(*r)
    console.print(out)


BLOCKED = "none: blocked, it cannot start as things stand (see its reason)"


def shown(key: str, value: Any, job: dict[str, Any] | None = None) -> Any:
    """A job field as ``show`` prints it: times as UTC dates, placements as ``type node:devices``; a
    blocked job (``job``: the whole job, for its reason) has no place in the queue and says so."""
    if key == "queue" and value is None and job is not None and position(job) == "blocked":
        return BLOCKED
    if key.endswith("_time") and isinstance(value, int | float):
        return ts(float(value)) + " UTC"
    if key == "placement":
        return placement(value)
    if key == "queue":
        return queue_place(value)
    if key == "start_estimate":
        return start_estimate(value)
    return value


def queue_place(q: dict[str, Any] | None) -> str:
    """``position 3 of 5 in your tenant, 41 of 230 in the pool`` (empty when not queued or blocked)."""
    if not q:
        return ""
    return (
        f"position {q['tenant_position']} of {q['tenant_of']} in your tenant, "
        f"{q['position']} of {q['of']} in the pool"
    )


def start_estimate(e: dict[str, Any] | None) -> str:
    """A start range as ``squeue --start`` would give it, in UTC; honest about what is not known."""
    if e is None:
        return ""
    lo, hi = e.get("earliest"), e.get("latest")
    if hi is None:
        if lo is None:
            return "unknown: devices it needs are held by jobs without a max_run_time"
        return f"from {ts(float(lo))} UTC, no upper bound (jobs ahead have no max_run_time)"
    if lo is None or abs(float(hi) - float(lo)) < 1:
        return f"by {ts(float(hi))} UTC"
    return f"between {ts(float(lo))} and {ts(float(hi))} UTC"


def position(j: dict[str, Any]) -> Any:
    """``41/230 (3/5)``: place in the pool's queue, then in the tenant's (the position alone from an older
    server)."""
    q = j.get("queue")
    if not q:
        if j.get("state") == "queued" and str(j.get("reason") or "").startswith("blocked"):
            return "blocked"
        return j.get("position")
    return f"{q['position']}/{q['of']} ({q['tenant_position']}/{q['tenant_of']})"


def placement(p: dict[str, Any] | None) -> str:
    if not p:
        return ""
    return str(p["accelerator"]) + " " + ";".join(f"{n}:{','.join(map(str, d))}" for n, d in p["devices"])


def parse_kv(items: list[str], what: str) -> dict[str, int]:
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        w = v.strip().lstrip("-")
        if not sep or not (w.isascii() and w.isdigit()) or len(w) > 18:
            raise InputError(f"expected TYPE=INTEGER (at most 18 digits), got '{it}'", field=what, value=it)
        out[k.strip()] = int(v)
    return out


def line_of(text: str, fld: str | None) -> int | None:
    """The YAML line of a field (or of its nearest parent) named by the server."""
    if not fld:
        return None
    from accelpool.spec.job import _lines

    lines = _lines(text)
    path = tuple(fld.split("."))
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path)


MAX_DAYS = 36_600.0
"""The most days an option takes (100 years; the API's bound on ``days``)."""


def days_option(days: float | None, what: str = "--days") -> float | None:
    if days is not None and not (math.isfinite(days) and 0 < days <= MAX_DAYS):
        raise InputError(f"must be a number of days > 0 and at most {MAX_DAYS:,.0f}", field=what, value=days)
    return days
