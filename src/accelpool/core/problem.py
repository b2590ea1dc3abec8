"""From domain values (jobs, pool, tenants, programs, grants, prices) to an AllocationProblem.

This is where program rules and job constraints become arrays, once, so that every policy applies them
the same way:

- ``allowed[j,t]``: the job's own list of types; domestic-only jobs (and public inference services under a
  program with ``public_services_domestic_only``) only on Korean types; ``min_memory_gb`` against the
  catalogue (a type whose memory is unknown does not qualify); a positive throughput.
- ``cap_index[j]``, ``cap_limit[c,t]``: a program's per-tenant cap binds the devices a tenant holds under
  that program: cap group c is one (tenant, program) pair, the jobs the tenant charges to grants of that
  program; a job charged elsewhere (another program, no grant) is not limited by it. ``tenant_cap`` (a cap
  on all of a tenant's jobs) stays infinite here: no rule caps a tenant across programs.
- ``public_reserve[t]``: the largest public share any program asks for, times the type's devices, but never
  more than the devices public jobs could use on that type (capacity is kept only while there is demand).
- ``budget_krw[j]``: what is left on the job's grant; ``-1`` when the job draws on no grant.
- ``fair_weight[j]``: with ``fairness="tenant"``, lambda_g x w_j under hierarchical shares
  (``hierarchical_weights``, in devices): the devices of every type some job may use are
  water-filled over programs by program weight w_P (``ProgramRules.weight``; jobs without a grant share
  one program of weight 1), each program's part over its tenants by tenant weight W_g, each tenant's part
  over its jobs by job weight w_j, every level capped at the devices its jobs ask for; lambda_g is the
  tenant's water level, and min(s_j, fair_weight[j]) the job's device target. The fair policies weigh
  jobs by it, so a tenant's part does not depend on how many jobs it splits its work into, and within
  one tenant jobs are weighed as per-job fairness weighs them. With ``fairness="job"`` it is the job's
  own weight (Gavel's per-job fairness).

Zones are not part of the problem: they are honoured when the allocation is placed on nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from accelpool.core.allocation import AllocationProblem, FloatArray
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import (
    AcceleratorType,
    Grant,
    Job,
    JobKind,
    Program,
    Tenant,
)


def needs_domestic(job: Job, program: Program | None) -> bool:
    """Domestic-only by the job's own constraint, or as a public service under a rule that requires it."""
    if job.domestic_only:
        return True
    return bool(
        program is not None
        and job.public
        and job.kind == JobKind.INFERENCE
        and program.rules.public_services_domestic_only
    )


def allowed_mask(
    jobs: Sequence[Job],
    types: Sequence[str],
    accelerators: Mapping[str, AcceleratorType],
    program_of: Mapping[str, Program | None],
) -> np.ndarray:
    """Which (job, type) pairs the job's constraints and program rules permit (before throughput)."""
    mask = np.ones((len(jobs), len(types)), dtype=bool)
    domestic = np.array([accelerators[t].domestic if t in accelerators else False for t in types])
    memory = np.array(
        [
            accelerators[t].memory_gb if t in accelerators and accelerators[t].memory_gb else np.nan
            for t in types
        ]
    )
    for i, job in enumerate(jobs):
        if job.allowed:
            mask[i] &= np.array([t in job.allowed for t in types])
        if needs_domestic(job, program_of.get(job.id)):
            mask[i] &= domestic
        if job.min_memory_gb is not None:
            with np.errstate(invalid="ignore"):
                mask[i] &= np.nan_to_num(memory, nan=-1.0) >= job.min_memory_gb
    return mask


def build_problem(
    jobs: Sequence[Job],
    capacity: Mapping[str, int],
    throughput: ThroughputMatrix,
    *,
    accelerators: Mapping[str, AcceleratorType] | None = None,
    tenants: Iterable[Tenant] = (),
    programs: Iterable[Program] = (),
    grants: Iterable[Grant] = (),
    prices_krw_per_hour: Mapping[str, int] | None = None,
    remaining_steps: Mapping[str, float] | None = None,
    now: float = 0.0,
    horizon_seconds: float = 360.0,
    per_device_levels: bool = True,
    fairness: str = "tenant",
) -> AllocationProblem:
    """Assemble the arrays for ``jobs`` (in this order) on the types of ``capacity``."""
    return build_problem_and_mask(
        jobs,
        capacity,
        throughput,
        accelerators=accelerators,
        tenants=tenants,
        programs=programs,
        grants=grants,
        prices_krw_per_hour=prices_krw_per_hour,
        remaining_steps=remaining_steps,
        now=now,
        horizon_seconds=horizon_seconds,
        per_device_levels=per_device_levels,
        fairness=fairness,
    )[0]


def cap_groups(
    jobs: Sequence[Job], types: tuple[str, ...], program_of: Mapping[str, Program | None]
) -> tuple[np.ndarray, np.ndarray]:
    """The per-tenant cap groups: each job's group (-1: none), a (tenant, program) pair in order of first
    appearance among jobs charged to a grant of a program with a cap on some type, and each group's limit
    per type (inf: no cap there)."""
    group_of: dict[tuple[str, str], int] = {}
    limits: list[list[float]] = []
    cap_index = np.full(len(jobs), -1, dtype=np.int64)
    for i, job in enumerate(jobs):
        program = program_of[job.id]
        if program is None or not program.rules.tenant_caps:
            continue
        key = (job.tenant, program.id)
        if key not in group_of:
            group_of[key] = len(limits)
            limits.append(
                [float(lim) if (lim := program.rules.cap_for(t)) is not None else np.inf for t in types]
            )
        cap_index[i] = group_of[key]
    return cap_index, np.array(limits, dtype=np.float64).reshape(len(limits), len(types))


def build_problem_and_mask(
    jobs: Sequence[Job],
    capacity: Mapping[str, int],
    throughput: ThroughputMatrix,
    *,
    accelerators: Mapping[str, AcceleratorType] | None = None,
    tenants: Iterable[Tenant] = (),
    programs: Iterable[Program] = (),
    grants: Iterable[Grant] = (),
    prices_krw_per_hour: Mapping[str, int] | None = None,
    remaining_steps: Mapping[str, float] | None = None,
    now: float = 0.0,
    horizon_seconds: float = 360.0,
    per_device_levels: bool = True,
    fairness: str = "tenant",
) -> tuple[AllocationProblem, np.ndarray]:
    """``build_problem``, and the jobs' ``allowed_mask`` (what their constraints and program rules permit,
    before throughput), which ``core.problem_cache`` keeps to carry rows over to the next job set."""
    accelerators = accelerators or {}
    types = tuple(sorted(capacity))
    tindex = {t: k for k, t in enumerate(types)}
    programs_by_id = {p.id: p for p in programs}
    grants_by_id = {g.id: g for g in grants}
    tenant_list = _tenant_list(jobs, tenants)
    gindex = {t.id: k for k, t in enumerate(tenant_list)}
    program_of = {
        j.id: programs_by_id.get(grants_by_id[j.grant].program) if j.grant in grants_by_id else None
        for j in jobs
    }

    n, tt = len(jobs), len(types)
    tput = np.zeros((n, tt))
    mrow = {job: i for i, job in enumerate(throughput.jobs)}
    mcol = [throughput.types.index(t) if t in throughput.types else -1 for t in types]
    # each job's row of the matrix on the problem's types (a job or type the matrix lacks: 0), by indexing
    have = [(i, r) for i, job in enumerate(jobs) if (r := mrow.get(job.id)) is not None]
    cols = [k for k, c in enumerate(mcol) if c >= 0]
    if have and cols:
        src_rows = np.array([r for _, r in have], dtype=np.int64)
        dst_rows = np.array([i for i, _ in have], dtype=np.int64)
        src_cols = np.array([mcol[k] for k in cols], dtype=np.int64)
        tput[np.ix_(dst_rows, np.array(cols, dtype=np.int64))] = throughput.values[np.ix_(src_rows, src_cols)]
    mask = allowed_mask(jobs, types, accelerators, program_of)
    allowed = mask & (tput > 0)

    cap = np.array([float(capacity[t]) for t in types])
    g = len(tenant_list)
    quota = np.zeros((g, tt))
    for k, tenant in enumerate(tenant_list):
        for t, q in tenant.quota.items():
            if t in tindex:
                quota[k, tindex[t]] = q
    cap_index, cap_limit = cap_groups(jobs, types, program_of)

    public = np.array([j.public for j in jobs], dtype=bool)
    scale = np.array([float(j.scale) for j in jobs])
    share = np.array(
        [max((p.rules.share_for(t) for p in programs_by_id.values()), default=0.0) for t in types]
    )
    public_demand = (allowed[public] * scale[public, None]).sum(axis=0) if n else np.zeros(tt)
    reserve = np.minimum(np.floor(share * cap), public_demand)

    prices = prices_krw_per_hour or {}
    budget = np.array(
        [grants_by_id[j.grant].remaining_krw if j.grant in grants_by_id else -1 for j in jobs], dtype=np.int64
    )
    remaining = remaining_steps or {}
    steps = np.array(
        [remaining.get(j.id, j.total_steps if j.total_steps is not None else np.inf) for j in jobs],
        dtype=np.float64,
    )
    ttd = np.array([j.deadline - now if j.deadline is not None else np.inf for j in jobs], dtype=np.float64)
    problem = AllocationProblem(
        job_ids=tuple(j.id for j in jobs),
        types=types,
        capacity=cap,
        scale=scale,
        weight=np.array([j.weight for j in jobs], dtype=np.float64),
        throughput=tput,
        allowed=allowed,
        tenant_ids=tuple(t.id for t in tenant_list),
        tenant_index=np.array([gindex[j.tenant] for j in jobs], dtype=np.int64),
        tenant_weight=np.array([t.weight for t in tenant_list], dtype=np.float64),
        quota=quota,
        cap_index=cap_index,
        cap_limit=cap_limit,
        public=public,
        public_reserve=reserve,
        priority=np.array([j.priority for j in jobs], dtype=np.int64),
        submit_time=np.array([j.submit_time for j in jobs], dtype=np.float64),
        price_krw_per_hour=np.array([int(prices.get(t, 0)) for t in types], dtype=np.int64),
        budget_krw=budget,
        remaining_steps=steps,
        time_to_deadline=ttd,
        horizon_seconds=horizon_seconds,
        per_device_levels=per_device_levels,
        fair_weight=(
            hierarchical_weights(
                jobs,
                tenant_list,
                program_of,
                np.where(allowed.any(axis=1), np.minimum(scale, cap.max(initial=0.0)), 0.0),
                float(cap[allowed.any(axis=0)].sum()),
            )
            if fairness == "tenant"
            else np.array([j.weight for j in jobs], dtype=np.float64)
        ),
        fairness=fairness,
    )
    return problem, mask


def water_fill_shares(total: float, demand: FloatArray, weight: FloatArray) -> FloatArray:
    """Split ``total`` in proportion to ``weight`` without giving anyone more than its ``demand``."""
    share = np.zeros(len(demand))
    open_ = demand > 0
    left = float(total)
    while open_.any() and left > 1e-12:
        per_weight = left / weight[open_].sum()
        want = demand - share
        capped = open_ & (want <= per_weight * weight + 1e-12)
        if not capped.any():
            share[open_] += per_weight * weight[open_]
            break
        left -= float(want[capped].sum())
        share[capped] = demand[capped]
        open_ &= ~capped
    return share


def water_level(total: float, demand: FloatArray, weight: FloatArray) -> float:
    """The level lambda of ``water_fill_shares``: each of these gets min(demand, lambda x weight), summing to
    ``total``; when ``total`` covers every demand, the smallest lambda that does (max demand / weight)."""
    open_ = (demand > 0) & (weight > 0)
    if not open_.any():
        return 0.0
    d, w = demand[open_], weight[open_]
    if float(total) >= float(d.sum()) - 1e-12:
        return float((d / w).max())
    share = water_fill_shares(total, d, w)
    unmet = share < d - 1e-9
    return float((share[unmet] / w[unmet]).max()) if unmet.any() else float((d / w).max())


def hierarchical_weights(
    jobs: Sequence[Job],
    tenants: Sequence[Tenant],
    program_of: Mapping[str, Program | None],
    demand: FloatArray,
    total: float,
) -> FloatArray:
    """Each job's fair weight under shares program -> tenant -> job: its job weight x its tenant's level.

    ``total`` devices are water-filled over programs by weight (each capped at the devices its jobs ask
    for, ``demand[j]``: 0 for a job that cannot run), each program's part over its tenants by tenant
    weight, each tenant's part over its jobs by job weight: job j of tenant g gets the device target
    min(demand_j, lambda_g x w_j), lambda_g the tenant's water level (devices per unit of job weight). The
    weight returned is lambda_g x w_j, whose minimum with the job's devices is that target: within a tenant
    the jobs are weighed by their own weights exactly as Gavel's per-job fairness weighs them (one tenant
    with one program gives the same allocation as ``fairness="job"``), and between tenants by their
    levels, so a tenant's part does not depend on how many jobs it asks for it with (splitting gains
    nothing) and a job whose demand is met leaves the rest of its tenant's part to its siblings first."""
    n = len(jobs)
    if n == 0:
        return np.zeros(0)
    tenant_weight = {t.id: t.weight for t in tenants}
    pid = [p.id if (p := program_of.get(j.id)) is not None else "" for j in jobs]
    programs = sorted(set(pid))
    p_weight = np.array(
        [
            next((p.rules.weight for j in jobs if (p := program_of.get(j.id)) and p.id == k), 1.0)
            for k in programs
        ]
    )
    p_of = np.array([programs.index(k) for k in pid], dtype=np.int64)
    p_demand = np.bincount(p_of, weights=demand, minlength=len(programs)).astype(np.float64)
    p_share = water_fill_shares(total, p_demand, p_weight)
    out = np.zeros(n)
    job_weight = np.array([j.weight for j in jobs], dtype=np.float64)
    for k in range(len(programs)):
        in_p = np.nonzero(p_of == k)[0]
        names = sorted({jobs[i].tenant for i in in_p.tolist()})
        g_of = np.array([names.index(jobs[i].tenant) for i in in_p.tolist()], dtype=np.int64)
        g_demand = np.bincount(g_of, weights=demand[in_p], minlength=len(names)).astype(np.float64)
        g_weight = np.array([tenant_weight.get(t, 1.0) for t in names], dtype=np.float64)
        g_share = water_fill_shares(float(p_share[k]), g_demand, g_weight)
        for g in range(len(names)):
            mine = in_p[g_of == g]
            level = water_level(float(g_share[g]), demand[mine], job_weight[mine])
            out[mine] = np.where(demand[mine] > 0, level * job_weight[mine], 0.0)
    positive = out > 1e-12
    if not positive.any():
        return np.ones(n)
    # jobs that cannot run (or get nothing) keep a small weight: they never bind a level
    weights: FloatArray = np.where(positive, out, out[positive].min() * 1e-3).astype(np.float64)
    return weights


def _tenant_list(jobs: Sequence[Job], tenants: Iterable[Tenant]) -> list[Tenant]:
    known = {t.id: t for t in tenants}
    for job in jobs:
        if job.tenant not in known:  # (not setdefault: a Tenant built per job only to be dropped)
            known[job.tenant] = Tenant(job.tenant)
    if not known:
        known["default"] = Tenant("default")
    return [known[k] for k in sorted(known)]
