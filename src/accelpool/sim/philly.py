"""The Philly job table (CSV: ``timestamp, duration, num_gpus, gpu_time, cluster``).

Source: the table shipped with the Sia (SOSP 2023) and Pollux (OSDI 2021) artifacts, derived from
Microsoft's Philly trace (Jeon et al., ATC 2019). It has no GPU types, so the reader assigns them,
seeded and reproducible:

- tenant = the virtual cluster id (``cluster`` column);
- submit time = seconds after the earliest timestamp in the file (UTC);
- each job draws a model (a Gavel job type with a scale-1 measurement on every pool type) uniformly
  with ``random.Random(seed)``; its speed on type t relative to V100 is that model's measured
  ``tput[t] / tput[v100]`` from Gavel's throughput table;
- the trace's ``duration`` is taken as the job's run time on V100: ``total_steps = duration`` at
  1 step/s on V100 (whole job), so on type t the job runs at ``tput[t] / tput[v100]`` steps/s.

Pool types must be ones the throughput table knows (v100, p100, k80 in the bundled one).
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from accelpool.core.errors import InputError
from accelpool.core.types import Cluster, Job, JobKind, Tenant
from accelpool.sim.gavel import GavelThroughputs, read_throughputs
from accelpool.sim.workload import Workload

COLUMNS = ("timestamp", "duration", "num_gpus", "cluster")
REFERENCE = "v100"


def speed_profiles(table: GavelThroughputs, types: list[str]) -> list[tuple[str, dict[str, float]]]:
    """(model, {type: speed relative to the reference}) for models measured at scale 1 on every type."""
    ref = REFERENCE if REFERENCE in table else types[0]
    models = sorted(m for (m, s) in table[ref] if s == 1)
    out = []
    for m in models:
        if all((m, 1) in table[t] and table[t][(m, 1)] > 0 for t in {*types, ref}):
            base = table[ref][(m, 1)]
            out.append((m, {t: table[t][(m, 1)] / base for t in types}))
    return out


def read_philly_csv(
    path: str | Path,
    capacity: Mapping[str, int],
    *,
    seed: int = 0,
    throughputs: GavelThroughputs | None = None,
    devices_per_node: int | Mapping[str, int] = 8,
    limit: int | None = None,
) -> Workload:
    table = throughputs if throughputs is not None else read_throughputs()
    types = sorted(capacity)
    unknown = [t for t in types if t not in table]
    if unknown:
        raise InputError(
            f"Philly jobs get speeds from the throughput table, which has no {', '.join(unknown)}"
            f" (known: {', '.join(sorted(table))})",
            field="cluster",
        )
    profiles = speed_profiles(table, types)
    if not profiles:
        raise InputError("the throughput table has no model measured on every pool type", field="throughputs")
    rng = random.Random(seed)
    name = str(path)
    raw: list[tuple[float, float, int, str, int]] = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise InputError("empty file", file=name, line=1)
            col = {h.strip(): i for i, h in enumerate(header)}
            missing = [c for c in COLUMNS if c not in col]
            if missing:
                raise InputError(
                    f"missing column(s) {', '.join(missing)} (expected {', '.join(COLUMNS)})",
                    file=name,
                    line=1,
                )
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                raw.append((*_parse_row(row, col, name, lineno), lineno))
                if limit is not None and len(raw) >= limit:
                    break
    except OSError as exc:
        raise InputError(f"cannot read trace: {exc.strerror}", file=name) from None
    if not raw:
        raise InputError("trace holds no jobs", file=name)
    t0 = min(r[0] for r in raw)
    jobs, rows = [], {}
    for i, (ts, duration, gpus, vc, _) in enumerate(raw):
        model, speed = profiles[rng.randrange(len(profiles))]
        job = Job(
            id=f"p{i:06d}",
            tenant=vc,
            kind=JobKind.TRAINING,
            scale=gpus,
            total_steps=duration,
            submit_time=ts - t0,
            job_type=model,
            preemptible=True,  # DNN training that checkpoints, as Gavel's simulator assumes
        )
        jobs.append(job)
        rows[job.id] = dict(speed)
    jobs.sort(key=lambda j: (j.submit_time, j.id))
    tenants = tuple(Tenant(t) for t in sorted({j.tenant for j in jobs}))
    return Workload(
        name=Path(path).name,
        jobs=tuple(jobs),
        throughputs=rows,
        cluster=Cluster.uniform(capacity, devices_per_node),
        tenants=tenants,
        notes=(
            f"Philly CSV: tenant = virtual cluster; duration taken as V100 run time; per-job model drawn "
            f"with seed {seed} from {len(profiles)} Gavel models for V100:P100:K80 speed ratios",
        ),
    )


def _parse_row(row: list[str], col: dict[str, int], name: str, lineno: int) -> tuple[float, float, int, str]:
    try:
        stamp = row[col["timestamp"]].strip()
        ts = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    except (ValueError, IndexError):
        raise InputError(
            "timestamp is not 'YYYY-MM-DD HH:MM:SS'", file=name, line=lineno, field="timestamp"
        ) from None
    try:
        duration = float(row[col["duration"]])
        gpus = int(float(row[col["num_gpus"]]))
        vc = row[col["cluster"]].strip()
    except (ValueError, IndexError, OverflowError):
        raise InputError(
            "duration or num_gpus is not a number (or is not finite, or the row is short)",
            file=name,
            line=lineno,
        ) from None
    if not math.isfinite(duration):
        raise InputError(f"duration must be a finite number, got {duration}", file=name, line=lineno)
    if duration <= 0 or gpus < 1 or not vc:
        raise InputError(
            f"duration must be > 0, num_gpus >= 1 and cluster non-empty (got {duration}, {gpus}, {vc!r})",
            file=name,
            line=lineno,
        )
    return ts, duration, gpus, vc
