"""Reports of simulated runs: metrics.json, a per-job CSV per policy, PNG plots and an index.html.

Plots (matplotlib, Agg backend, no display needed): completion-time CDF per policy, utilization over
time per type, tenant shares over time, grant burn-down (when the workload has grants).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from jinja2 import Environment, select_autoescape  # noqa: E402

from accelpool.sim.engine import SimResult, as_array  # noqa: E402
from accelpool.sim.metrics import dumps_metrics, job_rows  # noqa: E402

HOUR = 3600.0

_INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>accelpool simulation: {{ trace }}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th:first-child,td:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:8px 0}</style></head><body>
<h1>Simulation of {{ trace }}</h1>
<p>Round {{ round_seconds }} s; restart overhead {{ overhead }} s. {% for n in notes %}{{ n }}. {% endfor %}</p>
<table><tr><th>metric</th>{% for p in policies %}<th>{{ p }}</th>{% endfor %}</tr>
{% for key, values in rows %}<tr><td>{{ key }}</td>{% for v in values %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% for title, file in plots %}<h2>{{ title }}</h2><img src="{{ file }}" alt="{{ title }}">{% endfor %}
<h2>Files</h2><ul><li><a href="metrics.json">metrics.json</a></li>
{% for p, f in csvs %}<li><a href="{{ f }}">{{ f }}</a> (per-job, {{ p }})</li>{% endfor %}</ul>
</body></html>
"""

TABLE_KEYS = (
    "jobs_completed",
    "avg_jct_seconds",
    "median_jct_seconds",
    "p99_jct_seconds",
    "avg_queueing_seconds",
    "p99_queueing_seconds",
    "makespan_seconds",
    "utilization_total",
    "rho_max",
    "rho_mean",
    "preemptions",
    "cost_krw_total",
    "domestic_npu_share_public_services",
    "wall_seconds",
)


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
    plots = [
        ("Job completion time CDF", _plot_cdf(out, results)),
        ("Utilization over time per type", _plot_util(out, results)),
        ("Tenant shares over time", _plot_tenants(out, results)),
    ]
    if any(r.timeline.grants for r in results):
        plots.append(("Grant burn-down", _plot_grants(out, results)))
    written += [out / f for _, f in plots]
    env = Environment(autoescape=select_autoescape(default=True))
    html = env.from_string(_INDEX).render(
        trace=results[0].workload.name if results else "",
        round_seconds=round_seconds,
        overhead=overhead_seconds,
        notes=results[0].workload.notes if results else (),
        policies=[m["policy"] for m in metrics],
        rows=[(k, [fmt(m.get(k)) for m in metrics]) for k in TABLE_KEYS],
        plots=plots,
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
    plt.close(fig)
    return name


def _plot_cdf(out: Path, results: Sequence[SimResult]) -> str:
    fig, ax = plt.subplots(figsize=(8, 4.5))
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
    fig, axes = plt.subplots(len(results), 1, figsize=(9, 2.6 * len(results)), squeeze=False)
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


def _plot_tenants(out: Path, results: Sequence[SimResult]) -> str:
    fig, axes = plt.subplots(len(results), 1, figsize=(9, 2.6 * len(results)), squeeze=False)
    for ax, r in zip(axes[:, 0], results, strict=True):
        tl = r.timeline
        tb = as_array(tl.tenant_busy, len(tl.tenants))
        tot = tb.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(tot > 0, tb / tot, 0.0)
        t, s = _smooth(np.asarray(tl.time) / HOUR, share)
        if len(t) and len(tl.tenants):
            ax.stackplot(t, s.T, labels=list(tl.tenants))
        ax.set_ylim(0, 1)
        ax.set_title(r.policy, fontsize=10)
        ax.set_ylabel("share of used devices")
        if len(tl.tenants) <= 16:
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axes[-1, 0].set_xlabel("simulated time (hours)")
    return _save(fig, out, "tenant_shares.png")


def _plot_grants(out: Path, results: Sequence[SimResult]) -> str:
    fig, ax = plt.subplots(figsize=(8, 4.5))
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
