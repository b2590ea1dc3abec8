"""What Slurm prints, read: ``sinfo`` node lines (GRES types mapped to catalogue types), node states,
``squeue`` rows of our jobs, and exit statuses. Pure functions: the Slurm executor (executors/slurm.py) runs
the commands.

Nodes (``SlurmExecutor.nodes()``, the NodeSource port): every Slurm node of the partition that is up (not
DOWN, DRAIN, FAIL or NOT_RESPONDING), one pool node per recognised GRES type on it. ``Gres=gpu:h100:4``
gives a node of 4 ``h100``; NPUs are GRES of another name (``npu:rngd:4``, ``rbln:atom:4``, ...), the GRES
*type* being matched against catalogue ids and aliases and the executor's ``type_aliases``. The pool node
is named like the Slurm node (``<node>+<type>`` when one Slurm node holds several recognised types). GRES
without a type, or of a type the catalogue does not know, are listed in ``unrecognized()`` and left out
(never guessed)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from accelpool.core.errors import InputError
from accelpool.core.types import Node

# Node states (sinfo/scontrol flags) that take a node out of the pool.
BAD_NODE = ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING", "NO_RESPOND", "POWERED_DOWN", "INVAL", "FUTURE")
ENDED = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "PREEMPTED",
        "OUT_OF_MEMORY",
        "BOOT_FAIL",
        "DEADLINE",
        "SPECIAL_EXIT",
        "REVOKED",
    }
)


@dataclass(frozen=True)
class Row:
    slurm_id: str
    state: str
    exit_status: int | None
    start: float | None
    end: float | None
    nodes: str
    comment: str
    reason: str


def epoch(text: str) -> float | None:
    if not text or text in ("N/A", "Unknown", "None", "(null)"):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def decode_status(status: int | None) -> int | None:
    """Slurm's raw wait status -> exit code (negative: killed by that signal)."""
    if status is None:
        return None
    if status & 0x7F:
        return -(status & 0x7F)
    return (status >> 8) & 0xFF


def split_gres(text: str) -> list[tuple[str, str, int]]:
    """``gpu:h100:4(S:0),npu:rngd:2`` -> [("gpu", "h100", 4), ("npu", "rngd", 2)]."""
    out: list[tuple[str, str, int]] = []
    if not text or text == "(null)":
        return out
    for entry in re.split(r",(?![^()]*\))", text):
        entry = re.sub(r"\(.*\)$", "", entry.strip())
        parts = entry.split(":")
        if len(parts) == 3:
            name, typ, count = parts
        elif len(parts) == 2:
            name, typ, count = parts[0], "", parts[1]
        else:
            continue
        try:
            out.append((name, typ, int(count)))
        except ValueError:
            continue
    return out


def bad_state(state: str) -> bool:
    """Whether a node in this Slurm state is out of the pool (down, drained, not responding, ...)."""
    s = state.upper().replace("+", " ").replace("*", " NOT_RESPONDING")
    return any(b in s for b in BAD_NODE)


def parse_sinfo(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """``sinfo -N -O NodeList:|,StateComplete:|,Gres:|,...`` -> (node -> state, node -> GRES)."""
    states: dict[str, str] = {}
    gres_of: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 3:
            continue
        name, state, gres = parts[0].strip(), parts[1].strip().upper(), parts[2].strip()
        states[name] = state  # a node in several partitions appears once per partition
        gres_of[name] = gres
    return states, gres_of


def pool_nodes(
    states: dict[str, str],
    gres_of: dict[str, str],
    resolve: Callable[[str], str | None],
    *,
    zone: str,
    site: str,
) -> tuple[list[Node], dict[str, tuple[str, str, str]], dict[str, str]]:
    """Pool nodes of the up Slurm nodes (one per recognised GRES type), every pool node's (Slurm node,
    GRES name, GRES type), and the nodes left out with the reason (GRES without a type or of an unknown
    type: never guessed)."""
    pool: dict[str, tuple[str, str, str]] = {}
    out: list[Node] = []
    unknown: dict[str, str] = {}
    for name in sorted(states):
        found: list[tuple[str, str, str, int]] = []
        for gname, gtype, count in split_gres(gres_of[name]):
            if gname not in ("gpu", "npu") and not gtype:
                continue  # not an accelerator (e.g. a licence or a NIC GRES)
            acc = resolve(gtype) if gtype else None
            if acc is None:
                unknown[name] = (
                    f"GRES {gname} has no type (write Gres={gname}:<type>:N)"
                    if not gtype
                    else f"GRES type {gtype} is not in the catalogue"
                )
                continue
            found.append((acc, gname, gtype, count))
        for acc, gname, gtype, count in found:
            pname = name if len(found) == 1 else f"{name}+{acc}"
            pool[pname] = (name, gname, gtype)
            if count > 0 and not bad_state(states[name]):
                labels = (("slurm.node", name), ("slurm.gres", f"{gname}:{gtype}"))
                out.append(Node(pname, acc, count, zone=zone, labels=labels, site=site))
    return out, pool, unknown


def parse_squeue(text: str, tag: str) -> dict[str, Row]:
    """``squeue -O JobID:|,State:|,exit_code:|,StartTime:|,EndTime:|,NodeList:|,Reason:|,Comment:|`` ->
    our jobs (comment starting with ``tag``) by Slurm job id."""
    rows: dict[str, Row] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 8 or not parts[7].startswith(tag):
            continue
        try:
            status: int | None = int(parts[2])
        except ValueError:
            status = None
        rows[parts[0].strip()] = Row(
            parts[0].strip(),
            parts[1].strip(),
            status,
            epoch(parts[3].strip()),
            epoch(parts[4].strip()),
            parts[5].strip(),
            parts[7].strip(),
            parts[6].strip(),
        )
    return rows


def attempt_of(comment: str, tag: str) -> tuple[int, str] | None:
    """``<tag><attempt>:<job, URL-quoted>`` (the comment of a job we submitted) -> (attempt, job id)."""
    attempt, _, safe = comment[len(tag) :].partition(":")
    try:
        return int(attempt), unquote(safe)
    except ValueError:
        return None


def resolve_type(name: str, aliases: Mapping[str, str], catalog: Mapping[str, Any]) -> str | None:
    """A GRES type -> the catalogue id it names (``aliases`` first, keyed in lower case; then the
    catalogue's ids and aliases, also with ``_`` read as ``-``); None when it names none (never guessed)."""
    alias = aliases.get(name.lower())
    if alias is not None:
        return alias if alias in catalog else None
    resolve = getattr(catalog, "resolve", None)
    for cand in (name, name.replace("_", "-")):
        if resolve is not None:
            try:
                return str(resolve(cand))
            except InputError:  # not a catalogue name: try the next spelling
                continue
        elif cand in catalog:
            return cand
    return None
