"""A synthetic modern pool: GPUs and Korean NPUs, training / fine-tuning / inference, programs with grants.

Seeded (``random.Random(seed)``), so the same seed gives the same workload. The shape, all documented
assumptions rather than measurements:

- tenants: ``n_tenants`` (default 8); every third is a public institution, the others companies;
- one public program ("national-ai-compute") with a KRW budget, rules ``public_services_domestic_only``
  and a 20% public share of every type; each tenant holds one grant from it (public tenants get twice
  the amount). ``grant_scale`` multiplies all amounts (1.0: grants cover roughly the pool's work);
- jobs arrive as a Poisson process (``mean_interarrival_seconds``): 35% training (4-32 devices, hours
  to days on H100), 35% fine-tuning (1-8 devices, tens of minutes to hours), 30% inference batches
  (1-2 devices, minutes to hours; public tenants' inference jobs are public services);
- speed (steps/s, whole job) on type t = ``scale * peak_t / 100``, where ``peak_t`` is the catalogue's
  dense BF16 TFLOPS for training and fine-tuning (types not ``training_capable`` are excluded) and dense
  INT8 TOPS for inference (BF16 if INT8 is unknown). A type whose figure is unknown cannot run the job.
  This is a first-order ratio of peak figures, not an estimate of achieved utilisation;
- prices (KRW per device-hour, illustrative): see ``DEFAULT_PRICES``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from accelpool.catalog import load_catalog
from accelpool.core.errors import InputError
from accelpool.core.types import (
    AcceleratorType,
    Cluster,
    Grant,
    Job,
    JobKind,
    Program,
    ProgramRules,
    Tenant,
)
from accelpool.sim.workload import Workload

DEFAULT_CLUSTER = {"h100": 64, "a100": 64, "rngd": 64, "atom": 64}
DEFAULT_PRICES = {
    "h100": 4_000,
    "h200": 5_000,
    "b200": 7_000,
    "a100": 2_500,
    "l40s": 1_500,
    "rngd": 1_800,
    "atom": 600,
    "atom-max": 1_200,
    "rebel-quad": 2_500,
    "warboy": 500,
    "gaudi2": 1_800,
    "gaudi3": 3_000,
    "mi300x": 4_000,
}
"""Illustrative KRW per device-hour (roughly cloud list prices at 1,400 KRW/USD); 1,000 when unlisted."""


def peak_for(acc: AcceleratorType, kind: JobKind) -> float | None:
    if kind in (JobKind.TRAINING, JobKind.FINETUNING):
        return acc.bf16_tflops_dense if acc.training_capable else None
    return acc.int8_tops_dense or acc.bf16_tflops_dense


def generate(
    capacity: Mapping[str, int] | None = None,
    *,
    n_jobs: int = 400,
    seed: int = 0,
    n_tenants: int = 8,
    mean_interarrival_seconds: float = 600.0,
    devices_per_node: int | Mapping[str, int] = 8,
    grant_scale: float = 1.0,
    accelerators: Mapping[str, AcceleratorType] | None = None,
) -> Workload:
    capacity = dict(capacity or DEFAULT_CLUSTER)
    catalog = accelerators if accelerators is not None else load_catalog()
    unknown = [t for t in capacity if t not in catalog]
    if unknown:
        raise InputError(
            f"unknown accelerator type(s) {', '.join(unknown)} (see `accelpool catalog`)", field="cluster"
        )
    accs = {t: catalog[t] for t in capacity}
    rng = random.Random(seed)
    tenants = tuple(
        Tenant(f"t{i:02d}", name=("public" if i % 3 == 0 else "company") + f"-{i}", public=i % 3 == 0)
        for i in range(n_tenants)
    )
    jobs: list[Job] = []
    rows: dict[str, dict[str, float]] = {}
    t = 0.0
    for i in range(n_jobs):
        t += rng.expovariate(1.0 / mean_interarrival_seconds)
        tenant = tenants[rng.randrange(n_tenants)]
        job, row = _job(i, t, tenant, rng, accs, capacity)
        if row:
            jobs.append(job)
            rows[job.id] = row
    left_out = n_jobs - len(jobs)
    work_krw = _work_krw(jobs, rows, accs)
    budget = int(work_krw * grant_scale)
    rules = ProgramRules(public_share={"*": 0.2}, public_services_domestic_only=True)
    program = Program("national-ai-compute", "National AI compute support", budget_krw=budget, rules=rules)
    weights = [2 if x.public else 1 for x in tenants]
    grants = tuple(
        Grant(f"g-{x.id}", program.id, x.id, int(budget * w / sum(weights)))
        for x, w in zip(tenants, weights, strict=True)
    )
    jobs = [_with_grant(j, f"g-{j.tenant}") for j in jobs]
    prices = {tt: DEFAULT_PRICES.get(tt, 1_000) for tt in capacity}
    return Workload(
        name=f"synthetic-{seed}",
        jobs=tuple(jobs),
        throughputs=rows,
        cluster=Cluster.uniform(capacity, devices_per_node),
        accelerators=accs,
        tenants=tenants,
        programs=(program,),
        grants=grants,
        prices_krw_per_hour=prices,
        notes=(
            f"synthetic pool, seed {seed}: speeds from catalogue peak ratios; grants total {budget:,} KRW",
            *(
                [f"{left_out:,} of the {n_jobs:,} generated jobs fit no type of this pool and were left out"]
                if left_out
                else []
            ),
        ),
    )


def _job(
    i: int,
    t: float,
    tenant: Tenant,
    rng: random.Random,
    accs: Mapping[str, AcceleratorType],
    capacity: Mapping[str, int],
) -> tuple[Job, dict[str, float]]:
    roll = rng.random()
    if roll < 0.35:
        kind, scale, hours = (
            JobKind.TRAINING,
            rng.choice([4, 8, 8, 16, 32]),
            math.exp(rng.gauss(math.log(6), 1.0)),
        )
    elif roll < 0.70:
        kind, scale, hours = (
            JobKind.FINETUNING,
            rng.choice([1, 2, 4, 8]),
            math.exp(rng.gauss(math.log(1), 0.8)),
        )
    else:
        kind, scale, hours = JobKind.INFERENCE, rng.choice([1, 1, 2]), math.exp(rng.gauss(math.log(0.5), 0.8))
    row = {}
    for name, acc in accs.items():
        peak = peak_for(acc, kind)
        if peak and capacity[name] >= scale:
            row[name] = scale * peak / 100.0
    ref = max(row.values(), default=1.0)
    job = Job(
        id=f"s{i:05d}",
        tenant=tenant.id,
        kind=kind,
        scale=scale,
        total_steps=hours * 3600.0 * ref,
        submit_time=round(t, 3),
        public=tenant.public and kind == JobKind.INFERENCE,
        job_type=kind.value,
    )
    return job, row


def _work_krw(
    jobs: list[Job], rows: Mapping[str, Mapping[str, float]], accs: Mapping[str, AcceleratorType]
) -> int:
    """KRW to run every job once on its fastest type (a yardstick for sizing grants)."""
    total = 0.0
    for j in jobs:
        best = max(rows[j.id], key=lambda x: rows[j.id][x])
        seconds = (j.total_steps or 0.0) / rows[j.id][best]
        total += j.scale * seconds / 3600.0 * DEFAULT_PRICES.get(best, 1_000)
    return int(total)


def _with_grant(job: Job, grant: str) -> Job:
    from dataclasses import replace

    return replace(job, grant=grant)
