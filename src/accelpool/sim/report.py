"""Reports of simulated runs: metrics.json, a per-job CSV per policy, PNG plots and an index.html.

Plots (matplotlib, Agg backend, no display needed): completion-time CDF per policy, utilization over
time per type, tenant shares over time, grant burn-down (when the workload has grants).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from accelpool.plotting import pyplot
from accelpool.sim.engine import SimResult, as_array
from accelpool.sim.metrics import dumps_metrics, job_rows

HOUR = 3600.0

_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>accelpool simulation: {{ trace }}</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;color:#1d2330;line-height:1.45}
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #c9cfd8;padding:4px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child,td.dir{text-align:left}th.winner{background:#dff3e4}
td.best{font-weight:700;color:#1b6b34;background:#eef8f0}.winner-box{border-left:4px solid #1b6b34;background:#eef8f0;padding:.6em 1em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3em 1em}dt{font-weight:600}dd{margin:0}
img{max-width:100%;border:1px solid #eee;margin:8px 0}</style></head><body>
<h1>Simulation of {{ trace }}</h1>
<p>Round {{ round_seconds }} s; restart overhead {{ overhead }} s. {% for n in notes %}{{ n }}. {% endfor %}</p>
{% if winner %}<p class="winner-box"><strong>{{ winner.policy }}</strong> does best here: {{ winner.why }}</p>{% endif %}
<div class="scroll"><table><tr><th>metric</th><th>better</th>{% for p in policies %}<th{% if winner and p == winner.policy %} class="winner"{% endif %}>{{ p }}</th>{% endfor %}</tr>
{% for label, better, cells in rows %}<tr><td>{{ label }}</td><td class="dir">{{ better }}</td>{% for text, best in cells %}<td{% if best %} class="best"{% endif %}>{{ text }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
<p>Bold green: the best value in a row. "Same jobs" rows are over the {{ common }} jobs that every policy finished,
so the policies are compared on the same work.</p>
<h2>What the metrics mean</h2><dl>{% for label, text in definitions %}<dt>{{ label }}</dt><dd>{{ text }}</dd>{% endfor %}</dl>
{% for title, file in plots %}<h2>{{ title }}</h2><img src="{{ file }}" alt="{{ title }}">{% endfor %}
{% for n in plot_notes %}<p>{{ n }}</p>{% endfor %}
<h2>Files</h2><ul><li><a href="metrics.json">metrics.json</a> (all metrics, seconds and KRW)</li>
{% for p, f in csvs %}<li><a href="{{ f }}">{{ f }}</a> (per-job, {{ p }})</li>{% endfor %}</ul>
</body></html>
"""

# (key, label, unit, better, definition). unit: duration (seconds, shown in hours or days), count, share
# (0..1), ratio, krw, seconds (wall-clock, shown as is).
METRICS: tuple[tuple[str, str, str, str, str], ...] = (
    ("jobs_completed", "jobs finished", "count", "higher", "jobs that ran to completion"),
    (
        "jobs_unfinished",
        "jobs not finished",
        "count",
        "lower",
        "jobs still waiting or running when the simulation ended (their grant ran out, or they never fit)",
    ),
    (
        "common_avg_jct_seconds",
        "average completion time, same jobs",
        "duration",
        "lower",
        "mean of (finish - submit) over the jobs every policy finished",
    ),
    (
        "common_median_jct_seconds",
        "median completion time, same jobs",
        "duration",
        "lower",
        "median of (finish - submit) over the jobs every policy finished",
    ),
    (
        "avg_jct_seconds",
        "average completion time, own finished jobs",
        "duration",
        "lower",
        "mean of (finish - submit) over the jobs this policy finished (a different set per policy)",
    ),
    (
        "p99_jct_seconds",
        "99th percentile completion time",
        "duration",
        "lower",
        "the completion time 99% of this policy's finished jobs stay under",
    ),
    (
        "avg_queueing_seconds",
        "average wait before first start",
        "duration",
        "lower",
        "mean of (first start - submit) over the jobs that started",
    ),
    (
        "p99_queueing_seconds",
        "99th percentile wait",
        "duration",
        "lower",
        "the wait 99% of the started jobs stay under",
    ),
    ("makespan_seconds", "makespan", "duration", "lower", "from the first arrival to the last finish"),
    (
        "utilization_total",
        "utilization",
        "share",
        "higher",
        "device-seconds used / (devices x the time the simulation covers), all types; at most 100%",
    ),
    (
        "rho_max",
        "worst finish-time fairness",
        "ratio",
        "lower",
        "largest ratio of a job's completion time to the time it would take alone on an equal share of the "
        "pool (1 = as fast as its fair share; Themis' rho)",
    ),
    ("rho_mean", "average finish-time fairness", "ratio", "lower", "mean of that ratio over finished jobs"),
    ("preemptions", "preemptions", "count", "lower", "times a running job was stopped to make room"),
    (
        "preemptions_per_job_hour",
        "preemptions per job-hour",
        "ratio",
        "lower",
        "preemptions over the hours jobs ran",
    ),
    (
        "device_hours_lost_to_restarts",
        "device-hours lost to restarts",
        "ratio",
        "lower",
        "preemptions x restart overhead x devices, in device-hours",
    ),
    ("krw_paid_for_lost_work", "KRW paid for lost work", "krw", "lower", "those device-hours at their price"),
    (
        "cost_krw_total",
        "cost",
        "krw",
        "lower",
        "KRW charged for the device-hours used at the configured prices",
    ),
    (
        "domestic_npu_share_public_services",
        "domestic NPU share of public services",
        "share",
        "higher",
        "of the device-seconds public inference jobs used, the part on Korean-designed accelerators",
    ),
    ("wall_seconds", "simulator wall time", "seconds", "lower", "how long the simulation itself took"),
)
# kept for callers that listed the table's keys
TABLE_KEYS = tuple(k for k, *_ in METRICS)


def human_duration(seconds: float | None) -> str:
    """Seconds in the unit a reader thinks in: s, min, h or days."""
    if seconds is None:
        return "-"
    s = float(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * HOUR:
        return f"{s / 60:.0f} min"
    if s < 48 * HOUR:
        return f"{s / HOUR:.1f} h"
    return f"{s / 86400:.1f} days"


def fmt_metric(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "duration":
        return human_duration(value)
    if unit == "share":
        return f"{float(value):.1%}"
    if unit == "krw":
        return f"₩{int(value):,}"
    if unit == "seconds":
        return f"{float(value):.2f} s"
    return fmt(value)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _finished(r: SimResult) -> dict[str, float]:
    """Completion time (s) per job this run finished."""
    return {
        jid: rec.end_time - rec.status.job.submit_time
        for jid, rec in r.records.items()
        if rec.end_time is not None and rec.status.state.value == "succeeded"
    }


def common_job_metrics(results: Sequence[SimResult]) -> tuple[int, list[dict[str, float | None]]]:
    """Average and median completion time per run over the jobs every run finished (the same work)."""
    done = [_finished(r) for r in results]
    common = set.intersection(*(set(d) for d in done)) if done else set()
    out: list[dict[str, float | None]] = []
    for d in done:
        vals = np.array([d[j] for j in sorted(common)], dtype=float)
        out.append(
            {
                "common_avg_jct_seconds": float(vals.mean()) if len(vals) else None,
                "common_median_jct_seconds": float(np.median(vals)) if len(vals) else None,
            }
        )
    return len(common), out


def _winner(policies: Sequence[str], table: Sequence[dict[str, Any]], common: int) -> dict[str, str] | None:
    """The policy with the shortest average completion time over the same jobs, and one sentence why."""
    scored: list[tuple[float, str, dict[str, Any]]] = [
        (float(m["common_avg_jct_seconds"]), p, m)
        for p, m in zip(policies, table, strict=True)
        if m.get("common_avg_jct_seconds") is not None
    ]
    if len(scored) < 2:
        return None
    scored.sort(key=lambda x: x[0])
    (best, p, m), (second, q, m2) = scored[0], scored[1]
    if second <= 0 or best == second:
        return None
    why = (
        f"on the {common} jobs every policy finished, its average completion time is {human_duration(best)}, "
        f"{(1 - best / second):.0%} shorter than {q}'s {human_duration(second)}"
    )
    u1, u2 = m.get("utilization_total"), m2.get("utilization_total")
    if u1 is not None and u2 is not None:
        why += f", with the devices {u1:.0%} busy against {u2:.0%}"
    return {"policy": p, "why": why + "."}


def write_report(
    out_dir: str | Path,
    results: Sequence[SimResult],
    metrics: Sequence[dict[str, Any]],
    *,
    round_seconds: float,
    overhead_seconds: float,
) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "metrics.json"]
    (out / "metrics.json").write_text(
        dumps_metrics(metrics),
        encoding="utf-8",
    )
    csvs = []
    for r in results:
        name = f"jobs-{r.policy}.csv"
        _write_jobs_csv(out / name, r)
        csvs.append((r.policy, name))
        written.append(out / name)
    plot_notes: list[str] = []
    plots = [
        ("Job completion time, cumulative (hours, log scale)", _plot_cdf(out, results)),
        ("Utilization over time per type (same time axis for every policy)", _plot_util(out, results)),
    ]
    tenants = _plot_tenants(out, results)
    if tenants is None:
        plot_notes.append(
            "One tenant used the pool, so its share of used devices is 100% throughout (no chart)."
        )
    else:
        plots.append(("Share of used devices per tenant over time", tenants))
    if any(r.timeline.grants for r in results):
        plots.append(("KRW left on all grants over time", _plot_grants(out, results)))
    written += [out / f for _, f in plots]
    common, extra = common_job_metrics(results)
    table = [{**m, **e} for m, e in zip(metrics, extra, strict=False)] if extra else list(metrics)
    policies = [m["policy"] for m in metrics]
    rows = []
    for key, label, unit, better, _ in METRICS:
        values = [m.get(key) for m in table]
        if all(v is None for v in values):
            continue
        nums = [float(v) for v in values if isinstance(v, int | float)]
        best = None
        if len(nums) > 1 and len(set(nums)) > 1:
            best = min(nums) if better == "lower" else max(nums)
        cells = [
            (fmt_metric(v, unit), best is not None and v is not None and float(v) == best) for v in values
        ]
        rows.append((label, f"{better} is better", cells))
    from jinja2 import Environment, select_autoescape  # here: only a report needs it (not every CLI start)

    env = Environment(autoescape=select_autoescape(default=True))
    html = env.from_string(_INDEX).render(
        trace=results[0].workload.name if results else "",
        round_seconds=round_seconds,
        overhead=overhead_seconds,
        notes=results[0].workload.notes if results else (),
        policies=policies,
        rows=rows,
        common=common,
        winner=_winner(policies, table, common),
        definitions=[(label, text) for _, label, _, _, text in METRICS],
        plots=plots,
        plot_notes=plot_notes,
        csvs=csvs,
    )
    (out / "index.html").write_text(html, encoding="utf-8")
    written.append(out / "index.html")
    return written


def _write_jobs_csv(path: Path, result: SimResult) -> None:
    rows = job_rows(result)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        if not rows:
            return
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _save(fig: Any, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name, dpi=100)
    pyplot().close(fig)
    return name


def _plot_cdf(out: Path, results: Sequence[SimResult]) -> str:
    fig, ax = pyplot().subplots(figsize=(8, 4.5))
    for r in results:
        jct = np.sort(
            [
                rec.end_time - rec.status.job.submit_time
                for rec in r.records.values()
                if rec.end_time is not None and rec.status.state.value == "succeeded"
            ]
        )
        if len(jct):
            ax.plot(jct / HOUR, np.arange(1, len(jct) + 1) / len(jct), label=r.policy)
    ax.set_xscale("log")
    ax.set_xlabel("job completion time (hours, log scale)")
    ax.set_ylabel("fraction of jobs")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, out, "jct_cdf.png")


def _smooth(t: np.ndarray, y: np.ndarray, points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Thin a long per-round series to about ``points`` averaged buckets so plots stay light."""
    if len(t) <= points:
        return t, y
    edges = np.linspace(0, len(t), points + 1).astype(int)
    tt = np.array([t[a:b].mean() for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a])
    yy = np.array([y[a:b].mean(axis=0) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a])
    return tt, yy


def _plot_util(out: Path, results: Sequence[SimResult]) -> str:
    fig, axes = pyplot().subplots(
        len(results), 1, figsize=(9, 2.6 * len(results)), squeeze=False, sharex=True, sharey=True
    )
    for ax, r in zip(axes[:, 0], results, strict=True):
        tl = r.timeline
        busy = as_array(tl.busy, len(tl.types))
        iv = np.asarray(tl.interval)
        cap = np.array([r.capacity[t] for t in tl.types], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            util = np.where(iv[:, None] > 0, busy / (iv[:, None] * cap[None, :]), 0.0)
        t, u = _smooth(np.asarray(tl.time) / HOUR, util)
        for k, name in enumerate(tl.types):
            if len(t):
                ax.plot(t, u[:, k], label=name, lw=1)
        ax.set_ylim(0, 1.05)
        ax.set_title(r.policy, fontsize=10)
        ax.set_ylabel("utilization")
        ax.legend(fontsize=8, loc="lower right")
    axes[-1, 0].set_xlabel("simulated time (hours)")
    return _save(fig, out, "utilization.png")


# Distinct, colour-blind-aware colours (Okabe and Ito's, then Tableau's); more tenants than colours are
# drawn as "other tenants" in grey, so no two tenants share a colour.
TENANT_COLOURS = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#d55e00",
    "#56b4e9",
    "#9467bd",
    "#000000",
    "#8c564b",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _plot_tenants(out: Path, results: Sequence[SimResult]) -> str | None:
    """Shares of used devices per tenant, one panel per policy on shared axes; None with one tenant."""
    if all(len(r.timeline.tenants) <= 1 for r in results):
        return None
    fig, axes = pyplot().subplots(
        len(results), 1, figsize=(9, 2.6 * len(results)), squeeze=False, sharex=True, sharey=True
    )
    for ax, r in zip(axes[:, 0], results, strict=True):
        tl = r.timeline
        tb = as_array(tl.tenant_busy, len(tl.tenants))
        names = list(tl.tenants)
        order = np.argsort(-tb.sum(axis=0)) if len(tb) else np.arange(len(names))
        keep = (
            [int(k) for k in order[: len(TENANT_COLOURS) - 1]]
            if len(names) > len(TENANT_COLOURS)
            else [int(k) for k in order]
        )
        rest = [k for k in range(len(names)) if k not in keep]
        cols = [tb[:, k] for k in keep] + ([tb[:, rest].sum(axis=1)] if rest else [])
        labels = [names[k] for k in keep] + ([f"{len(rest)} other tenants"] if rest else [])
        colours = list(TENANT_COLOURS[: len(keep)]) + (["#bbbbbb"] if rest else [])
        data = np.stack(cols, axis=1) if cols else np.zeros((len(tl.time), 0))
        tot = data.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(tot > 0, data / tot, 0.0)
        t, sh = _smooth(np.asarray(tl.time) / HOUR, share)
        if len(t) and len(labels):
            ax.stackplot(t, sh.T, labels=labels, colors=colours, linewidth=0)
        ax.set_ylim(0, 1)
        ax.set_title(r.policy, fontsize=10)
        ax.set_ylabel("share of used devices")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axes[-1, 0].set_xlabel("simulated time (hours)")
    return _save(fig, out, "tenant_shares.png")


def _plot_grants(out: Path, results: Sequence[SimResult]) -> str:
    fig, ax = pyplot().subplots(figsize=(8, 4.5))
    for r in results:
        tl = r.timeline
        if not tl.grant_left:
            continue
        left = np.asarray(tl.grant_left, dtype=float).sum(axis=1)
        ax.plot(np.asarray(tl.time) / HOUR, left / 1e6, label=r.policy)
    ax.set_xlabel("simulated time (hours)")
    ax.set_ylabel("KRW left on all grants (millions)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, out, "grant_burndown.png")
