"""Queue order and wait reasons in words, with the numbers behind them.

Fair order (the order idle devices are handed out in, and the queue positions users see):

    key_j = (D_g + A_j) / W_g      for job j of tenant g
    D_g   devices tenant g's jobs hold now
    A_j   devices asked for by g's waiting jobs ahead of j in g's own order (priority, submit time, id)
    W_g   tenant g's effective weight: the sum of its jobs' fair weights (program -> tenant -> job shares,
          see core.problem); with per-job fairness every key is 0 (order: priority, then submit time)

    order: priority field (high first), then key_j, then submit time, then id.

This is start-time fair queueing over devices: a tenant's k jobs of one device each queue exactly as one
job of k devices would, so splitting work gains nothing; the priority field is the only thing that jumps
the queue. A job that cannot run as things stand (no usable type, or its grant cannot pay for one lease)
is *blocked*: it gets no position.

Each waiting job gets a sentence with numbers (``explain``), shown by the CLI, API and dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from accelpool.core.allocation import AllocationProblem
from accelpool.core.types import WaitReason

if TYPE_CHECKING:
    from accelpool.core.round_config import RoundConfig
    from accelpool.core.rounds import JobStatus, Snapshot


def fair_order(problem: AllocationProblem, running: np.ndarray, id_rank: np.ndarray) -> np.ndarray:
    """Job indices in fair order (see the module notation); ``running[j]``: job j holds devices now."""
    n = problem.n_jobs
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.zeros(n)
    if problem.fairness == "tenant":
        g = problem.tenant_index
        groups = len(problem.tenant_ids)
        weight = np.bincount(g, weights=problem.fair_weight, minlength=groups)
        held = np.bincount(g, weights=problem.scale * running, minlength=groups)
        inner = np.lexsort((id_rank, problem.submit_time, -problem.priority, g))
        asked = np.where(running, 0.0, problem.scale)[inner]
        ahead = np.cumsum(asked) - asked
        gi = g[inner]
        first = np.ones(n, dtype=bool)
        first[1:] = gi[1:] != gi[:-1]
        offset = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        ahead = ahead - ahead[offset]
        keys[inner] = (held[gi] + ahead) / np.maximum(weight[gi], 1e-300)
    return np.lexsort((id_rank, problem.submit_time, keys, -problem.priority))


def _seconds(s: float) -> str:
    s = max(0.0, s)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def explain(
    problem: AllocationProblem,
    statuses: Sequence[JobStatus],
    waiting: Mapping[str, WaitReason],
    blocked: Mapping[str, WaitReason],
    queue: Sequence[int],
    short: Mapping[str, tuple[int, int]],
    type_free: Mapping[str, int],
    snapshot: Snapshot,
    config: RoundConfig,
) -> dict[str, str]:
    """A sentence with numbers for every waiting job (job id -> text)."""
    if not waiting:
        return {}
    ids = problem.job_ids
    types = problem.types
    usable = problem.usable()
    tput = np.where(usable, problem.throughput, -1.0)
    best = np.argmax(tput, axis=1) if problem.n_types else np.zeros(problem.n_jobs, dtype=np.int64)
    pool_total = len(queue)
    tenant_of = problem.tenant_index
    tenant_total = np.bincount(tenant_of[list(queue)], minlength=len(problem.tenant_ids)) if queue else None
    tenant_seen = np.zeros(len(problem.tenant_ids), dtype=np.int64)
    where: dict[int, str] = {}
    for p, i in enumerate(queue):
        g = int(tenant_of[i])
        tenant_seen[g] += 1
        mine = int(tenant_total[g]) if tenant_total is not None else 0
        where[i] = f"position {tenant_seen[g]} of {mine} in your tenant, {p + 1} of {pool_total} in the pool"
    lease_end = snapshot.lease_end
    next_lease = (
        f"; the next lease starts in {_seconds(lease_end - snapshot.now)}"
        if lease_end is not None and lease_end > snapshot.now
        else ""
    )
    prices = problem.price_krw_per_hour
    horizon = problem.horizon_seconds
    grants = {g.id: g.remaining_krw for g in snapshot.grants}
    all_types = {n.accelerator for n in snapshot.nodes}
    out: dict[str, str] = {}
    for i, s in enumerate(statuses):
        jid = ids[i]
        why = waiting.get(jid)
        if why is None:
            continue
        job = s.job
        k = int(best[i])
        t = types[k] if usable[i].any() else (sorted(job.allowed)[0] if job.allowed else "any type")
        need = f"needs {job.scale} x {t}"
        free = type_free.get(t, 0)
        if jid in blocked:
            if why is WaitReason.BUDGET:
                cost = -(-int(job.scale * int(prices[k]) * horizon) // 3600) if usable[i].any() else 0
                left = grants.get(job.grant or "", 0)
                text = (
                    f"blocked: {need}; grant {job.grant} has {left} KRW left and a lease "
                    f"({_seconds(horizon)}) costs {cost} KRW"
                )
            elif why is WaitReason.RULE:
                text = f"blocked: {need}; its constraints or its program's rules allow none of its types"
            else:
                wanted = sorted(job.allowed) if job.allowed else []
                missing = [w for w in wanted if w not in all_types]
                text = (
                    f"blocked: no healthy node of {', '.join(missing or wanted)} can take {job.scale} devices"
                    if wanted
                    else f"blocked: no healthy node can take {job.scale} devices of a type it runs on"
                )
            out[jid] = text
            continue
        if jid in short:
            left, cost = short[jid]
            text = (
                f"{need}; {free} free, but grant {job.grant} has {left} KRW left after the leases of "
                f"its running jobs and a lease costs {cost} KRW"
            )
        elif why is WaitReason.GANG:
            text = f"{need} together; {free} free, but not on few enough nodes"
        elif why is WaitReason.QUOTA:
            text = f"{need}; its tenant's quota or cap on {t} is in use"
        elif why is WaitReason.SHARE:
            text = f"{need}; waits for its fair share: jobs that have run less go first{next_lease}"
        elif why is WaitReason.PRIORITY:
            text = f"{need}; jobs with a higher priority hold the devices"
        else:
            text = f"{need}; {free} free" + (
                next_lease if config.lease_seconds is not None and free < job.scale else ""
            )
        out[jid] = f"{text}; {where[i]}" if i in where else text
    return out
