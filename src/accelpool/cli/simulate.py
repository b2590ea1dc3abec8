"""CLI command: ``accelpool simulate`` (replay a trace under one or more policies)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from accelpool.cli.render import console
from accelpool.core.allocation import Policy
from accelpool.core.errors import InputError
from accelpool.core.round_config import RoundConfig
from accelpool.sim.engine import SimResult, simulate
from accelpool.sim.metrics import compute, dumps_metrics
from accelpool.sim.report import TABLE_KEYS, fmt, write_report
from accelpool.sim.workload import Workload, parse_cluster, parse_devices_per_node

FORMATS = ("gavel", "philly", "alibaba", "synthetic")
DEFAULT_CLUSTERS = {"gavel": "v100=36,p100=36,k80=36", "philly": "v100=840,p100=840,k80=840"}

# Bounds of the numeric options (docs/simulator.md, "Input validation").
ROUND_SECONDS = (1.0, 7 * 86400.0)
MAX_RESTART_OVERHEAD = 7 * 86400.0
MAX_SYNTHETIC_JOBS = 1_000_000
MAX_SEED = 2**63 - 1


def validate_options(*, round_seconds: float, overhead: float, seed: int, jobs: int) -> None:
    """Refuse nonsense numbers before any work: nan/inf, out-of-range rounds and overheads, bad counts."""
    lo, hi = ROUND_SECONDS
    if not math.isfinite(round_seconds) or not lo <= round_seconds <= hi:
        raise InputError(
            f"--round must be a finite number of seconds in [{lo:g}, {hi:g}], got {round_seconds}",
            field="round",
            value=round_seconds,
        )
    if not math.isfinite(overhead) or not 0 <= overhead <= MAX_RESTART_OVERHEAD:
        raise InputError(
            f"--restart-overhead must be a finite number of seconds in [0, {MAX_RESTART_OVERHEAD:g}], "
            f"got {overhead}",
            field="restart-overhead",
            value=overhead,
        )
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"--seed must be in [0, 2**63-1], got {seed}", field="seed", value=seed)
    if not 1 <= jobs <= MAX_SYNTHETIC_JOBS:
        raise InputError(
            f"--jobs must be in [1, {MAX_SYNTHETIC_JOBS:,}], got {jobs}", field="jobs", value=jobs
        )


def resolve_policy(name: str) -> Policy:
    try:
        from accelpool.core.policies import get_policy
    except ImportError:
        raise InputError(
            "the policy registry (accelpool.core.policies.get_policy) is not available", field="policy"
        ) from None
    try:
        policy: Policy = get_policy(name)
    except KeyError:
        raise InputError(f"unknown policy {name!r}", field="policy", value=name) from None
    return policy


def load_workload(
    fmt_name: str,
    trace: Path | None,
    *,
    cluster: str | None,
    throughputs: Path | None,
    seed: int,
    devices_per_node: str | None,
    nodes: Path | None,
    jobs: int,
    fractional: str,
) -> Workload:
    from accelpool.sim import alibaba, gavel, philly, synthetic

    if fmt_name not in FORMATS:
        raise InputError(f"unknown format {fmt_name!r} (one of {', '.join(FORMATS)})", field="format")
    if fmt_name != "synthetic" and trace is None:
        raise InputError(f"--trace FILE is required for --format {fmt_name}", field="trace")
    dpn = parse_devices_per_node(devices_per_node, default=4 if fmt_name == "gavel" else 8)
    spec = cluster or DEFAULT_CLUSTERS.get(fmt_name)
    capacity = parse_cluster(spec) if spec else None
    table = gavel.read_throughputs(throughputs) if throughputs is not None else None
    if fmt_name == "gavel":
        assert trace is not None and capacity is not None
        return gavel.read_gavel_trace(trace, capacity, table, dpn)
    if fmt_name == "philly":
        assert trace is not None and capacity is not None
        return philly.read_philly_csv(trace, capacity, seed=seed, throughputs=table, devices_per_node=dpn)
    if fmt_name == "alibaba":
        assert trace is not None
        default_nodes = trace.with_name("openb_node_list_gpu_node.csv")
        if nodes is not None:
            if not nodes.is_file():
                raise InputError(f"--nodes {nodes}: no such file", field="nodes", file=str(nodes))
            node_file = nodes
        elif default_nodes.is_file():
            node_file = default_nodes
        else:
            raise InputError(
                f"Alibaba pods need a node list: pass --nodes FILE (the node CSV, e.g. "
                f"openb_node_list_gpu_node.csv; none was given and there is none next to {trace})",
                field="nodes",
            )
        return alibaba.read_alibaba(trace, node_file, fractional=fractional)
    return synthetic.generate(capacity, n_jobs=jobs, seed=seed, devices_per_node=dpn)


def check_output_dir(path: Path, option: str) -> None:
    """Create ``path`` (a folder) or say, before any simulation runs, why it cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"{option} {path}: cannot create folder: {exc.strerror}", field=option.lstrip("-"), file=str(path)
        ) from None
    if not path.is_dir():
        raise InputError(f"{option} {path}: not a folder", field=option.lstrip("-"), file=str(path))


def check_schedulable(workload: Workload) -> None:
    """Exit 2 when no job of the trace can ever run on the pool; warn when some cannot."""
    from accelpool.sim.engine import schedulable

    cap = workload.capacity()
    stuck = [j for j in workload.jobs if not schedulable(j, dict(workload.throughputs.get(j.id, {})), cap)]
    pool = ", ".join(f"{t}={n}" for t, n in sorted(cap.items()))
    if workload.jobs and len(stuck) == len(workload.jobs):
        biggest = max(j.scale for j in workload.jobs)
        raise InputError(
            f"no job of the trace can run on this pool ({pool}): each needs a type it may use with at least "
            f"its gang size (up to {biggest} devices) of devices",
            field="cluster",
            value=pool,
        )
    if stuck:
        console.print(
            f"[bold yellow]warning:[/bold yellow] {len(stuck):,} of {len(workload.jobs):,} jobs can never run "
            f"on this pool ({pool}) and are reported as unschedulable",
            highlight=False,
        )


def run_policies(
    workload: Workload,
    names: list[str],
    *,
    round_seconds: float,
    overhead: float,
    config: RoundConfig | None = None,
) -> tuple[list[SimResult], list[dict[str, Any]]]:
    policies = [(n, resolve_policy(n)) for n in names]
    results, metrics = [], []
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} jobs"),
        TextColumn("day {task.fields[day]:.1f}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        for name, policy in policies:
            task = bar.add_task(name, total=len(workload.jobs), day=0.0)
            t0 = workload.jobs[0].submit_time if workload.jobs else 0.0

            def tick(now: float, done: int, total: int, task: Any = task, t0: float = t0) -> None:
                bar.update(task, completed=done, total=total, day=(now - t0) / 86400.0)

            r = simulate(
                workload,
                policy,
                policy_name=name,
                round_seconds=round_seconds,
                restart_overhead_seconds=overhead,
                progress=tick,
                config=config,
            )
            m = compute(r)
            bar.update(task, completed=m["jobs_completed"])
            results.append(r)
            metrics.append(m)
    return results, metrics


def site_table(workload: Workload, results: list[SimResult]) -> Table:
    """Per site: where it is, what it may hold, and each policy's device-hours and KRW there."""
    t = Table(title="per site")
    for col in ("site", "region", "data classes", "devices"):
        t.add_column(col)
    for r in results:
        t.add_column(f"{r.policy} device-h", justify="right")
        t.add_column(f"{r.policy} KRW", justify="right")
    devices: dict[str, int] = {}
    for n in workload.cluster.nodes:
        devices[n.site] = devices.get(n.site, 0) + n.devices
    for s in workload.sites:
        row = [s.id, s.region, ", ".join(sorted(s.data_classes)), str(devices.get(s.id, 0))]
        for r in results:
            row += [f"{r.site_device_hours.get(s.id, 0.0):,.1f}", f"{r.site_krw.get(s.id, 0):,}"]
        t.add_row(*row)
    return t


def table(metrics: list[dict[str, Any]]) -> Table:
    t = Table(title="simulation results (times in seconds)")
    t.add_column("metric")
    for m in metrics:
        t.add_column(m["policy"], justify="right")
    for key in TABLE_KEYS:
        t.add_row(key, *[fmt(m.get(key)) for m in metrics])
    if metrics:
        for ty in sorted(metrics[0]["utilization"]):
            t.add_row(f"utilization \\[{ty}]", *[fmt(m["utilization"].get(ty)) for m in metrics])
    return t


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""

    @app.command("simulate")
    def simulate_cmd(
        trace: Path = typer.Option(
            None, "--trace", help="trace file (pods CSV for alibaba; none for synthetic)"
        ),
        fmt_name: str = typer.Option("gavel", "--format", help="gavel | philly | alibaba | synthetic"),
        throughputs: Path = typer.Option(
            None, "--throughputs", help="Gavel throughput JSON (default: bundled)"
        ),
        cluster: str = typer.Option(None, "--cluster", help="devices per type, e.g. v100=36,p100=36,k80=36"),
        policy: str = typer.Option("max-min-fairness", "--policy", help="policy name(s), comma-separated"),
        round_seconds: float = typer.Option(360.0, "--round", help="round length (seconds)"),
        seed: int = typer.Option(0, "--seed", help="seed for synthetic choices"),
        json_out: Path = typer.Option(None, "--json", help="write metrics per policy to this JSON file"),
        report: Path = typer.Option(
            None, "--report", help="write metrics, per-job CSV, plots, index.html here"
        ),
        devices_per_node: str = typer.Option(None, "--devices-per-node", help="e.g. 4, or v100=4,k80=8"),
        restart_overhead: float = typer.Option(
            60.0,
            "--restart-overhead",
            help="seconds lost per resume/move (also the restart cost decisions assume)",
        ),
        lease: float = typer.Option(
            None, "--lease", help="lease length in seconds (default: the round); preemption only at its end"
        ),
        per_round: bool = typer.Option(
            False,
            "--per-round",
            help="Gavel's semantics: every round re-decides and may preempt, no minimum run, per-job fairness",
        ),
        nodes: Path = typer.Option(None, "--nodes", help="Alibaba node list CSV"),
        jobs: int = typer.Option(400, "--jobs", help="number of synthetic jobs"),
        fractional: str = typer.Option(
            "round-up", "--fractional", help="Alibaba fractional GPUs: round-up|reject"
        ),
        pool: Path = typer.Option(
            None,
            "--pool",
            help="multi-site pool file (sites, their devices, prices, data classes; see docs/simulator.md); "
            "replaces --cluster",
        ),
    ) -> None:
        """Replay a trace on a pool under one or more policies and compare the outcomes."""
        validate_options(round_seconds=round_seconds, overhead=restart_overhead, seed=seed, jobs=jobs)
        if lease is not None and (not math.isfinite(lease) or not lease >= round_seconds):
            raise InputError(
                f"--lease must be a finite number of seconds >= --round ({round_seconds:g}), got {lease}",
                field="lease",
                value=lease,
            )
        config = (
            RoundConfig.per_round()
            if per_round
            else RoundConfig(
                lease_seconds=lease if lease is not None else round_seconds, restart_seconds=restart_overhead
            )
        )
        if json_out is not None:
            if json_out.is_dir():
                raise InputError(f"--json {json_out}: is a folder, expected a file name", field="json")
            check_output_dir(json_out.parent, "--json")
        if report is not None:
            check_output_dir(report, "--report")
        names = [p.strip() for p in policy.split(",") if p.strip()]
        if not names:
            raise InputError("--policy needs at least one name", field="policy")
        pool_spec = None
        if pool is not None:
            from accelpool.sim.pool import load_pool

            pool_spec = load_pool(pool)
            if cluster is None:  # the trace is read for the pool's types and totals
                totals: dict[str, int] = {}
                for n in pool_spec.nodes:
                    totals[n.accelerator] = totals.get(n.accelerator, 0) + n.devices
                cluster = ",".join(f"{t}={k}" for t, k in sorted(totals.items()) if k > 0)
        workload = load_workload(
            fmt_name,
            trace,
            cluster=cluster,
            throughputs=throughputs,
            seed=seed,
            devices_per_node=devices_per_node,
            nodes=nodes,
            jobs=jobs,
            fractional=fractional,
        )
        if pool_spec is not None:
            from accelpool.sim.pool import apply_pool

            workload = apply_pool(workload, pool_spec, seed)
        cap = workload.capacity()
        check_schedulable(workload)
        for note in workload.notes:
            if "left out" in note:  # synthetic jobs no type of the pool could run (an operator's test)
                console.print(f"[bold yellow]warning:[/bold yellow] {note}", highlight=False)
        console.print(
            f"[bold]{workload.name}[/bold]: {len(workload.jobs):,} jobs on "
            + ", ".join(f"{n} x {t}" for t, n in sorted(cap.items())),
            highlight=False,
        )
        results, metrics = run_policies(
            workload, names, round_seconds=round_seconds, overhead=restart_overhead, config=config
        )
        console.print(table(metrics))
        if workload.sites:
            console.print(site_table(workload, results))
        if json_out is not None:
            try:
                json_out.write_text(dumps_metrics(metrics), encoding="utf-8")
            except OSError as exc:
                raise InputError(f"cannot write: {exc.strerror}", field="json", file=str(json_out)) from None
            console.print(f"metrics written to {json_out}")
        if report is not None:
            try:
                write_report(
                    report, results, metrics, round_seconds=round_seconds, overhead_seconds=restart_overhead
                )
            except OSError as exc:
                raise InputError(
                    f"cannot write report: {exc.strerror}", field="report", file=str(report)
                ) from None
            console.print(f"report written to {report / 'index.html'}")
