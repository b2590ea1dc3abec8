"""Alibaba cluster-trace-gpu-v2023 (Weng et al., ATC 2023): a node list and a pod list.

Nodes (``sn, cpu_milli, memory_mib, gpu, model``) become the pool: one node per line, its GPU model
(lower-cased, e.g. ``v100m16``, ``g2``) is the accelerator type. Pods (``name, cpu_milli, memory_mib,
num_gpu, gpu_milli, gpu_spec, qos, pod_phase, creation_time, deletion_time, scheduled_time``) become jobs:

- submit time = ``creation_time``; work = ``deletion_time - scheduled_time`` seconds at 1 step/s on every
  type it may use (the trace records no per-model speed, so types are equally fast);
- allowed types = ``gpu_spec`` (``|``-separated models; empty = any model in the node list);
- tenant = the pod's QoS class (LS, BE, Burstable, Guaranteed): the trace names no owners;
- skipped (counted, not errors): CPU-only pods (``num_gpu = 0``) and pods never scheduled (no
  ``scheduled_time``) or with no run time;
- fractional-GPU pods (``num_gpu = 1`` and ``gpu_milli < 1000``): devices are whole in this scheduler, so by
  default each takes one whole GPU (``fractional="round-up"``, counted in the notes); with
  ``fractional="reject"`` the first one raises InputError naming its file and line.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path

from accelpool.core.errors import InputError
from accelpool.core.types import Cluster, Job, JobKind, Node, Tenant
from accelpool.sim.workload import Workload

NODE_COLUMNS = ("sn", "gpu", "model")
POD_COLUMNS = (
    "name",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "creation_time",
    "deletion_time",
    "scheduled_time",
)


def _rows(path: str | Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    name = str(path)
    try:
        fh = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", file=name) from None
    with fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in columns if c not in header]
        if missing:
            raise InputError(f"missing column(s) {', '.join(missing)}", file=name, line=1)
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(f"expected {len(header)} fields, found {len(row)}", file=name, line=lineno)
            yield lineno, dict(zip(header, row, strict=True))


def read_alibaba_nodes(path: str | Path) -> Cluster:
    nodes = []
    for lineno, r in _rows(path, NODE_COLUMNS):
        try:
            gpus = int(r["gpu"])
        except ValueError:
            raise InputError(
                f"gpu {r['gpu']!r} is not an integer", file=str(path), line=lineno, field="gpu"
            ) from None
        model = r["model"].strip().lower()
        if gpus < 0 or (gpus > 0 and not model):
            raise InputError("gpu must be >= 0 and model non-empty", file=str(path), line=lineno)
        if gpus > 0:
            nodes.append(Node(r["sn"].strip(), model, gpus))
    if not nodes:
        raise InputError("node list holds no GPU nodes", file=str(path))
    return Cluster(tuple(nodes))


def read_alibaba(
    pods: str | Path, nodes: str | Path, *, fractional: str = "round-up", limit: int | None = None
) -> Workload:
    if fractional not in ("round-up", "reject"):
        raise InputError(f"fractional must be 'round-up' or 'reject', got {fractional!r}", field="fractional")
    cluster = read_alibaba_nodes(nodes)
    models = sorted(cluster.capacity())
    jobs: list[Job] = []
    rows: dict[str, dict[str, float]] = {}
    skipped = rounded = 0
    name = str(pods)
    for lineno, r in _rows(pods, POD_COLUMNS):
        try:
            gpus = int(r["num_gpu"])
            milli = int(r["gpu_milli"])
            created = float(r["creation_time"])
            deleted = float(r["deletion_time"]) if r["deletion_time"].strip() else None
            scheduled = float(r["scheduled_time"]) if r["scheduled_time"].strip() else None
        except ValueError as exc:
            raise InputError(f"not a number: {exc}", file=name, line=lineno) from None
        times = [x for x in (created, deleted, scheduled) if x is not None]
        if not all(math.isfinite(x) and x >= 0 for x in times):
            raise InputError(
                "creation_time, scheduled_time and deletion_time must be finite numbers >= 0",
                file=name,
                line=lineno,
            )
        if gpus < 0 or milli < 0 or milli > 1000:
            raise InputError("num_gpu must be >= 0 and gpu_milli in 0..1000", file=name, line=lineno)
        if gpus == 0 or scheduled is None or deleted is None or deleted <= scheduled:
            skipped += 1
            continue
        if gpus == 1 and milli < 1000:
            if fractional == "reject":
                raise InputError(
                    f"pod {r['name']} asks for {milli}/1000 of a GPU; this scheduler places whole "
                    "devices (use fractional='round-up' to give it one whole GPU)",
                    file=name,
                    line=lineno,
                    field="gpu_milli",
                )
            rounded += 1
        spec = [m.strip().lower() for m in r["gpu_spec"].split("|") if m.strip()]
        allowed = sorted(set(spec) & set(models)) if spec else models
        if not allowed:
            raise InputError(
                f"gpu_spec {r['gpu_spec']!r} names no model in the node list ({', '.join(models)})",
                file=name,
                line=lineno,
                field="gpu_spec",
            )
        job = Job(
            id=r["name"].strip() or f"pod{lineno}",
            tenant=r["qos"].strip() or "default",
            kind=JobKind.BATCH,
            scale=gpus,
            allowed=frozenset(allowed),
            total_steps=deleted - scheduled,
            submit_time=created,
        )
        jobs.append(job)
        rows[job.id] = {m: 1.0 for m in allowed}
        if limit is not None and len(jobs) >= limit:
            break
    if not jobs:
        raise InputError("pod list holds no GPU pods that ran", file=name)
    jobs.sort(key=lambda j: (j.submit_time, j.id))
    return Workload(
        name=Path(pods).name,
        jobs=tuple(jobs),
        throughputs=rows,
        cluster=cluster,
        tenants=tuple(Tenant(t) for t in sorted({j.tenant for j in jobs})),
        skipped=skipped,
        notes=(
            f"Alibaba 2023: tenant = QoS class; equal speed on every allowed model; {rounded} fractional-GPU "
            f"pods given one whole GPU; {skipped} CPU-only or never-run pods skipped",
        ),
    )
