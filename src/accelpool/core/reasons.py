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

Each waiting job gets a sentence with numbers (``explain``): the stores keep it as the job's reason, which
the CLI, API and dashboard show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from accelpool.core.allocation import AllocationProblem
from accelpool.core.types import WaitReason

if TYPE_CHECKING:
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
    short: Mapping[str, tuple[int, int]],
    snapshot: Snapshot,
) -> dict[str, str]:
    """A sentence with numbers for every waiting job (job id -> text), led by its reason code.

    ``"<code>: ..."`` for a job in the queue, ``"blocked (<code>): ..."`` for one that cannot run as things
    stand. The text holds facts that change rarely (what the job needs, its grant's balance against a
    lease's cost, missing node types), not the queue position or free devices of the moment, so a store
    rewrites it only when the facts change; positions come with the decision (``Decision.positions``)."""
    if not waiting:
        return {}
    ids = problem.job_ids
    types = problem.types
    usable = problem.usable()
    tput = np.where(usable, problem.throughput, -1.0)
    best = np.argmax(tput, axis=1) if problem.n_types else np.zeros(problem.n_jobs, dtype=np.int64)
    prices = problem.price_krw_per_hour.tolist()
    horizon = problem.horizon_seconds
    grants = {g.id: g.remaining_krw for g in snapshot.grants}
    healthy = {n.accelerator for n in snapshot.nodes}
    can_run: list[bool] = np.asarray(usable.any(axis=1), dtype=bool).tolist()
    best_list: list[int] = np.asarray(best, dtype=np.int64).tolist()
    index = {j: i for i, j in enumerate(ids)} if len(waiting) < len(ids) // 4 else None
    out: dict[str, str] = {}
    pairs = (
        ((index[j], j, w) for j, w in waiting.items())
        if index is not None
        else ((i, j, w) for i, j in enumerate(ids) if (w := waiting.get(j)) is not None)
    )
    for i, jid, why in pairs:
        job = statuses[i].job
        k = best_list[i]
        runs = can_run[i]
        t = types[k] if runs else "/".join(sorted(job.allowed)) or "a type it runs on"
        need = f"needs {job.scale} x {t}"
        code = str.__str__(why)
        if jid in blocked:
            if why is WaitReason.BUDGET:
                cost = -(-int(job.scale * prices[k] * horizon) // 3600) if runs else 0
                left = grants.get(job.grant or "", 0)
                text = f"{need}; grant {job.grant} has {left} KRW left and a lease ({_seconds(horizon)}) costs {cost} KRW"
            elif why is WaitReason.RULE:
                text = f"{need}; its constraints or its program's rules allow none of the types it runs on"
            else:
                missing = sorted(a for a in job.allowed if a not in healthy)
                if missing and len(missing) == len(job.allowed):
                    down = sum(1 for n in snapshot.nodes_down if n.accelerator in job.allowed)
                    text = f"{need}; no {'/'.join(missing)} node is in service" + (
                        f" ({down} down)" if down else " (the pool has none)"
                    )
                else:
                    text = f"{need}; no node in service can take {job.scale} devices of a type it runs on"
            out[jid] = f"blocked ({code}): {text}"
            continue
        if jid in short:
            left, cost = short[jid]
            text = (
                f"{need}; grant {job.grant} has {left} KRW left after the leases of its running jobs "
                f"and a lease ({_seconds(horizon)}) costs {cost} KRW"
            )
        elif why is WaitReason.GANG:
            text = f"{need} at once; free devices are spread over too many nodes"
        elif why is WaitReason.QUOTA:
            text = f"{need}; its tenant's quota or cap on {t} is in use"
        elif why is WaitReason.SHARE:
            text = f"{need}; waits for its fair share: jobs that have run less go first, at a lease boundary"
        elif why is WaitReason.PRIORITY:
            text = f"{need}; jobs with a higher priority hold the devices"
        else:
            text = f"{need}; every one is in use"
        out[jid] = f"{code}: {text}"
    return out
