"""Gavel-format traces (10 tab-separated fields a line) and Gavel's throughput JSON.

Trace line (Narayanan et al., OSDI 2020, artifact stanford-futuredata/gavel):

    job_type  command  working_directory  num_steps_arg  needs_data_dir  total_steps  scale_factor
    priority_weight  SLO  arrival_time_seconds

A job's duration on type t is ``total_steps / throughput[t][(job_type, scale_factor)]["null"]`` seconds.
Throughput JSON: ``{type: {"('<job type>', <scale>)": {"null": steps/s, ...}}}``; the bundled default is a
trimmed copy (``accelpool/data/gavel_throughputs.json``). Every job belongs to tenant ``default``; its
weight is the trace's priority weight. Malformed lines raise InputError naming file and line.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from accelpool.core.errors import InputError
from accelpool.core.types import Cluster, Job, JobKind
from accelpool.sim.workload import Workload

GavelThroughputs = dict[str, dict[tuple[str, int], float]]
"""type -> (job type, scale factor) -> steps/s running alone."""


def bundled_throughputs_text() -> str:
    return resources.files("accelpool.data").joinpath("gavel_throughputs.json").read_text(encoding="utf-8")


def read_throughputs(path: str | Path | None = None) -> GavelThroughputs:
    """Parse a Gavel throughput JSON (``None``: the bundled copy)."""
    name = "accelpool/data/gavel_throughputs.json" if path is None else str(path)
    try:
        text = bundled_throughputs_text() if path is None else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read throughput file: {exc.strerror}", file=name) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=name, line=exc.lineno) from None
    if not isinstance(raw, dict):
        raise InputError("expected an object {gpu type: {job key: {...}}}", file=name)
    out: GavelThroughputs = {}
    for acc, entries in raw.items():
        if acc.endswith("_unconsolidated") or not isinstance(entries, dict):
            continue
        table: dict[tuple[str, int], float] = {}
        for key, value in entries.items():
            try:
                job_type, scale = ast.literal_eval(key)
                tput = float(value["null"]) if isinstance(value, dict) else float(value)
            except (ValueError, SyntaxError, TypeError, KeyError):
                raise InputError(
                    f"bad entry {key!r} under {acc!r}: expected \"('<job type>', <scale>)\": "
                    '{"null": steps/s}',
                    file=name,
                ) from None
            if not math.isfinite(tput) or tput < 0:
                raise InputError(
                    f"throughput for {key!r} under {acc!r} must be a finite number >= 0, got {tput}",
                    file=name,
                )
            table[(str(job_type), int(scale))] = tput
        out[acc.lower()] = table
    if not out:
        raise InputError("no GPU types found", file=name)
    return out


def read_gavel_trace(
    path: str | Path,
    capacity: Mapping[str, int],
    throughputs: GavelThroughputs | None = None,
    devices_per_node: int | Mapping[str, int] = 4,
) -> Workload:
    """Read a Gavel trace for a pool of ``capacity`` devices per type."""
    table = throughputs if throughputs is not None else read_throughputs()
    missing = sorted(t for t in capacity if t not in table)
    if missing:
        raise InputError(
            f"no throughputs for type(s) {', '.join(missing)} (known: {', '.join(sorted(table))})",
            field="cluster",
        )
    jobs: list[Job] = []
    rows: dict[str, dict[str, float]] = {}
    name = str(path)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read trace: {exc.strerror}", file=name) from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        job, row = _parse_line(line, name, lineno, len(jobs), capacity, table)
        jobs.append(job)
        rows[job.id] = row
    if not jobs:
        raise InputError("trace holds no jobs", file=name)
    return Workload(
        name=Path(path).name,
        jobs=tuple(jobs),
        throughputs=rows,
        cluster=Cluster.uniform(capacity, devices_per_node),
        notes=("Gavel format: one tenant 'default'; job weight = priority_weight",),
    )


def _parse_line(
    line: str, name: str, lineno: int, index: int, capacity: Mapping[str, int], table: GavelThroughputs
) -> tuple[Job, dict[str, float]]:
    fields = line.rstrip("\n").split("\t")
    if len(fields) != 10:
        raise InputError(f"expected 10 tab-separated fields, found {len(fields)}", file=name, line=lineno)
    job_type = fields[0].strip()
    try:
        total_steps = float(fields[5])
        scale = int(fields[6])
        weight = float(fields[7])
        arrival = float(fields[9])
    except ValueError as exc:
        raise InputError(f"not a number: {exc}", file=name, line=lineno) from None
    if not all(math.isfinite(x) for x in (total_steps, weight, arrival)):
        raise InputError(
            "total_steps, priority_weight and arrival_time must be finite numbers "
            f"(got {fields[5]!r}, {fields[7]!r}, {fields[9]!r})",
            file=name,
            line=lineno,
        )
    if total_steps <= 0 or scale < 1 or weight <= 0 or arrival < 0:
        raise InputError(
            "total_steps, scale_factor and priority_weight must be > 0, arrival_time >= 0",
            file=name,
            line=lineno,
        )
    row = {t: table[t][(job_type, scale)] for t in capacity if (job_type, scale) in table[t]}
    row = {t: v for t, v in row.items() if v > 0}
    if not row:
        raise InputError(
            f"no throughput for job type {job_type!r} at scale {scale} on any of "
            f"{', '.join(sorted(capacity))}",
            file=name,
            line=lineno,
            field="job_type",
        )
    job = Job(
        id=f"j{index:06d}",
        tenant="default",
        kind=JobKind.TRAINING,
        scale=scale,
        weight=weight,
        total_steps=total_steps,
        submit_time=arrival,
        job_type=job_type,
        preemptible=True,  # DNN training that checkpoints, as Gavel's simulator assumes
    )
    return job, row
