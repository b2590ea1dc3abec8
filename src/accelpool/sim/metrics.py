"""Metrics of one simulated run. Times in seconds, money in KRW, shares as fractions 0..1.

- JCT = end - submit of finished jobs; queueing delay = first start - submit (all started jobs);
  avg, median and p99 of each.
- makespan = last finish - first arrival.
- utilization per type = device-seconds used / (devices x seconds from the first arrival to the end of
  the last metered use): the span the device-seconds were metered over, unfinished jobs' running time
  included, so it is at most 1. (Ending the span at the last finish over-counted when jobs still ran
  after the last one finished.) The time series is per round.
- finish-time fairness (Themis' rho, in our words): a job's JCT over the time it would take alone on an
  equal share of the pool. Equal share: 1/N of every type's devices, N = the average number of jobs
  queued or running over the job's lifetime; on that share the job runs a fraction
  ``min(1, devices / (N x scale))`` of the time at the capacity-weighted mean of its per-type speeds.
  Reported: max and mean.
- tenant share vs entitlement: a tenant's share of used device-seconds against weight / sum of weights of
  the tenants that submitted jobs.
- restarts (live semantics, docs/scheduling.md): preemptions per job-hour run; device-hours lost to
  restarts = sum over jobs of preemptions x restart overhead x devices (the fake executor resumes from the
  exact step a job was stopped at, so a restart loses its overhead, no more); KRW paid for lost work =
  those device-hours at the price of the type the job ran on longest.
- domestic NPU share of public-service work: of the device-seconds public inference jobs used, the part
  on Korean-designed types (``AcceleratorType.domestic``); None when there was no such work.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from accelpool.core.types import JobKind, JobState
from accelpool.sim.engine import SimResult, as_array


def _stats(values: list[float], prefix: str) -> dict[str, float | None]:
    if not values:
        return {
            f"avg_{prefix}_seconds": None,
            f"median_{prefix}_seconds": None,
            f"p99_{prefix}_seconds": None,
        }
    a = np.asarray(values)
    return {
        f"avg_{prefix}_seconds": float(a.mean()),
        f"median_{prefix}_seconds": float(np.median(a)),
        f"p99_{prefix}_seconds": float(np.percentile(a, 99)),
    }


def job_rows(result: SimResult) -> list[dict[str, Any]]:
    """One row per job (for the per-job CSV)."""
    out = []
    for rec in result.records.values():
        s = rec.status
        j = s.job
        end = rec.end_time
        out.append(
            {
                "job": j.id,
                "tenant": j.tenant,
                "kind": j.kind.value,
                "job_type": j.job_type,
                "scale": j.scale,
                "submit_seconds": j.submit_time,
                "start_seconds": rec.start_time,
                "end_seconds": end,
                "jct_seconds": None if end is None or s.state != JobState.SUCCEEDED else end - j.submit_time,
                "queueing_seconds": None if rec.start_time is None else rec.start_time - j.submit_time,
                "state": s.state.value,
                "preemptions": rec.preemptions,
                "seconds_on": ";".join(f"{t}={v:.0f}" for t, v in sorted(s.seconds_on.items())),
                "rho": None,
            }
        )
    return out


def compute(result: SimResult) -> dict[str, Any]:
    """The metrics dict for one policy (what ``--json`` writes)."""
    rows = job_rows(result)
    done = [r for r in rows if r["jct_seconds"] is not None]
    jct = [r["jct_seconds"] for r in done]
    queue = [r["queueing_seconds"] for r in rows if r["queueing_seconds"] is not None]
    tl = result.timeline
    types = tl.types
    t0 = min((r["submit_seconds"] for r in rows), default=0.0)
    t_end = max((r["end_seconds"] for r in rows if r["end_seconds"] is not None), default=t0)
    makespan = max(0.0, t_end - t0)
    busy = as_array(tl.busy, len(types))
    cap = np.array([result.capacity[t] for t in types], dtype=float)
    used = busy.sum(axis=0) if len(busy) else np.zeros(len(types))
    span = max(t_end, tl.busy_until if math.isfinite(tl.busy_until) else t_end) - t0
    util = {t: (float(used[k] / (cap[k] * span)) if cap[k] and span else 0.0) for k, t in enumerate(types)}
    total_util = float(used.sum() / (cap.sum() * span)) if cap.sum() and span else 0.0
    rho = _rho(result, rows)
    m: dict[str, Any] = {
        "policy": result.policy,
        "trace": result.workload.name,
        "jobs_total": len(result.workload.jobs),
        "jobs_completed": len(done),
        "jobs_unfinished": len(result.unfinished),
        "jobs_unschedulable": len(result.unschedulable),
        **_stats(jct, "jct"),
        **_stats(queue, "queueing"),
        "makespan_seconds": makespan,
        "utilization": util,
        "utilization_total": total_util,
        "rho_max": max(rho) if rho else None,
        "rho_mean": float(np.mean(rho)) if rho else None,
        "preemptions": sum(r["preemptions"] for r in rows),
        **_restarts(result),
        "rounds": result.rounds,
        "wall_seconds": result.wall_seconds,
        "policy_seconds": result.policy_seconds,
        "tenants": _tenants(result),
        "cost_krw_total": int(sum(result.charges_krw.values())),
        "cost_krw_by_tenant": dict(sorted(result.charges_krw.items())),
        "grant_spent_krw": result.grant_spent_krw,
        "domestic_npu_share_public_services": _domestic_share(result),
        "config": {
            **result.config.as_dict(),
            "round_seconds": result.round_seconds,
            "restart_overhead_seconds": result.restart_overhead_seconds,
        },
    }
    if result.workload.sites:  # a multi-site pool (--pool): what each site ran and charged
        m["device_hours_by_site"] = {
            s.id: round(result.site_device_hours.get(s.id, 0.0), 6) for s in result.workload.sites
        }
        m["cost_krw_by_site"] = {s.id: int(result.site_krw.get(s.id, 0)) for s in result.workload.sites}
    return m


def _restarts(result: SimResult) -> dict[str, float | int]:
    overhead = result.restart_overhead_seconds
    prices = result.workload.prices_krw_per_hour
    job_seconds = lost = 0.0
    krw = 0.0
    preemptions = 0
    for rec in result.records.values():
        on = rec.status.seconds_on
        job_seconds += sum(on.values())
        preemptions += rec.preemptions
        if rec.preemptions and overhead > 0:
            seconds = rec.preemptions * overhead * rec.status.job.scale
            lost += seconds
            main = max(on, key=on.__getitem__) if on else ""
            krw += seconds * int(prices.get(main, 0)) / 3600.0
    return {
        "preemptions_per_job_hour": preemptions / (job_seconds / 3600.0) if job_seconds else 0.0,
        "device_hours_lost_to_restarts": lost / 3600.0,
        "krw_paid_for_lost_work": int(round(krw)),
    }


def _tenants(result: SimResult) -> dict[str, dict[str, float]]:
    tl = result.timeline
    tb = (
        as_array(tl.tenant_busy, len(tl.tenants)).sum(axis=0) if tl.tenant_busy else np.zeros(len(tl.tenants))
    )
    weights = {t.id: t.weight for t in result.workload.tenants}
    submitted = {r.status.job.tenant for r in result.records.values()}
    wsum = sum(weights.get(t, 1.0) for t in submitted) or 1.0
    total = float(tb.sum()) or 1.0
    return {
        t: {
            "share": float(tb[k] / total),
            "entitlement": (weights.get(t, 1.0) / wsum) if t in submitted else 0.0,
            "device_seconds": float(tb[k]),
        }
        for k, t in enumerate(tl.tenants)
    }


def _domestic_share(result: SimResult) -> float | None:
    accs = result.workload.accelerators
    dom = tot = 0.0
    for rec in result.records.values():
        j = rec.status.job
        if not (j.public and j.kind == JobKind.INFERENCE):
            continue
        for t, secs in rec.status.seconds_on.items():
            ds = secs * j.scale
            tot += ds
            if t in accs and accs[t].domestic:
                dom += ds
    return dom / tot if tot else None


def _rho(result: SimResult, rows: list[dict[str, Any]]) -> list[float]:
    tl = result.timeline
    if not tl.time:
        return []
    times = np.asarray(tl.time)
    active = np.asarray(tl.active, dtype=float)
    csum = np.concatenate([[0.0], np.cumsum(active)])
    types = tl.types
    cap = np.array([result.capacity[t] for t in types], dtype=float)
    total_cap = cap.sum()
    tputs = result.workload.throughputs
    out = []
    for r in rows:
        if r["jct_seconds"] is None:
            continue
        lo = int(np.searchsorted(times, r["submit_seconds"], side="left"))
        hi = int(np.searchsorted(times, r["end_seconds"], side="right"))
        n_avg = max(1.0, (csum[hi] - csum[lo]) / max(1, hi - lo))
        row = tputs[r["job"]]
        rate = sum(cap[k] / total_cap * row.get(t, 0.0) for k, t in enumerate(types))
        frac = min(1.0, total_cap / (n_avg * r["scale"]))
        steps = result.records[r["job"]].status.job.total_steps or 0.0
        if rate <= 0 or steps <= 0:
            continue
        ideal = steps / (rate * frac)
        r["rho"] = r["jct_seconds"] / ideal
        out.append(r["rho"])
    return out


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (inf, nan: an undefined metric) replaced by None.

    Also turns numpy scalars into Python numbers and tuples into lists, so the result is strict JSON.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps_metrics(metrics: Sequence[dict[str, Any]]) -> str:
    """Metrics per policy as strict JSON (``allow_nan=False``: undefined values are ``null``)."""
    data = json_safe({m["policy"]: m for m in metrics})
    return json.dumps(data, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"
