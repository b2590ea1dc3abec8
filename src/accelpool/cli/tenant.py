"""CLI commands for tenants: submit, jobs, show, cancel, logs, usage. All go through the SDK; `--json` on
every one (the connection options are declared once, in cli/connection.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from accelpool.cli.connection import Connection, connected
from accelpool.cli.format import days_option, line_of, placement, position, read_text_file, shown, table, ts
from accelpool.cli.render import console, emit_json, err_console
from accelpool.core.errors import InputError


def register(app: typer.Typer) -> None:
    for command in (submit, jobs, show, cancel, logs, usage):
        app.command(command.__name__)(command)


@connected
def submit(
    spec_file: Annotated[Path, typer.Argument(help="job YAML")],
    conn: Connection,
    idempotency_key: Annotated[str | None, typer.Option(help="retry-safe key")] = None,
    tenant: Annotated[str | None, typer.Option(help="admins: submit for this tenant")] = None,
) -> None:
    """Submit a job from a YAML file (validated here first: errors name the line and field)."""
    from accelpool.sdk import Rejected  # here: the SDK (httpx) is not imported with every command
    from accelpool.spec.job import parse_job_yaml

    text = read_text_file(spec_file)
    spec = parse_job_yaml(text, file=str(spec_file))
    # a relative workdir or checkpoint_dir is relative to the job file (the server, which may run
    # elsewhere and in another directory, is sent absolute paths)
    here = spec_file.resolve().parent
    spec = spec.model_copy(
        update={
            k: os.path.normpath(here / v)
            for k, v in (("workdir", spec.workdir), ("checkpoint_dir", spec.checkpoint_dir))
            if v is not None and not Path(v).is_absolute()
        }
    )
    c = conn.client()
    if tenant is None and c.get("whoami")["role"] == "admin":
        tenant = c.tenant
    try:
        job = c.submit(
            spec.model_dump(mode="json", exclude_none=True), idempotency_key=idempotency_key, tenant=tenant
        )
    except Rejected as exc:
        line = line_of(text, exc.field)
        raise InputError(
            f"refused by the server: {exc.message}", file=str(spec_file), line=line, field=exc.field
        ) from None
    conn.out(job, f"submitted {job['id']} ({job['name']}): {job['state']}")


@connected
def jobs(
    conn: Connection,
    state: Annotated[list[str] | None, typer.Option("--state", help="repeatable")] = None,
    tenant: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    all_pages: Annotated[bool, typer.Option("--all", help="every page")] = False,
) -> None:
    """List jobs, newest first, with why each waiting job waits and its position."""
    c = conn.client()
    if all_pages:
        items = list(c.iter_jobs(state=state, tenant=tenant, limit=limit))
    else:
        items = c.jobs(state=state, tenant=tenant, limit=limit)["items"]
    if conn.json:
        emit_json(items)
        return
    cols = ["id", "name", "tenant", "state", "reason", "pos", "devices", "placement"]
    table("jobs", cols, [_job_row(j) for j in items])


def _job_row(j: dict[str, Any]) -> list[Any]:
    return [
        j["id"],
        j["name"],
        j["tenant"],
        j["state"],
        j["reason"],
        position(j),
        j["count"],
        placement(j["placement"]),
    ]


@connected
def show(job_id: str, conn: Connection) -> None:
    """A job's details and its events."""
    j = conn.client().job(job_id)
    if conn.json:
        emit_json(j)
        return
    rows = [[k, shown(k, v, j)] for k, v in j.items() if k not in ("events", "runs")]
    table(f"job {j['id']}", ["field", "value"], rows)
    events = [[ts(e["time"]), e["state"], e["reason"], e.get("cause")] for e in j["events"]]
    table("events (UTC)", ["time", "state", "reason", "cause"], events)
    runs = [
        [
            r["number"],
            ts(r["start"]),
            ts(r["end"]) if r["end"] is not None else "running",
            r["accelerator"] or "-",
            r["site"] or "-",
            f"{r['device_seconds']:,.1f}",
            f"{r['charged_krw']:,}",
            r["ended_by"] or "",
        ]
        for r in j.get("runs") or ()
    ]
    if runs:
        table("runs (UTC)", ["#", "start", "end", "type", "site", "device-s", "KRW", "ended by"], runs)


@connected
def cancel(job_id: str, conn: Connection) -> None:
    """Cancel a job (a running one gets SIGTERM, a grace period, then SIGKILL)."""
    j = conn.client().cancel(job_id)
    conn.out(j, f"{j['id']}: {j['state']}")


@connected
def logs(
    job_id: str,
    conn: Connection,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing new output until the job ends")
    ] = False,
) -> None:
    """A job's captured output (read in pages; --follow streams it until the job ends). --json: the whole
    output so far as one object (id, state, logs)."""
    c = conn.client()
    if conn.json:
        if follow:
            raise InputError(
                "--json prints the output so far once; it does not go with --follow", field="--json"
            )
        text = c.logs(job_id)
        emit_json({"id": job_id, "state": c.job(job_id)["state"], "logs": text})
        return
    offset = 0
    while True:
        page = c.logs_page(job_id, offset)
        console.out(page["logs"], end="", highlight=False)
        offset = int(page["offset"]) + len(page["logs"])
        if page.get("next_offset") is not None:
            continue
        if not follow or c.job(job_id)["state"] in ("succeeded", "failed", "cancelled"):
            if follow:  # the last lines, written as it ended
                console.out(c.logs_page(job_id, offset)["logs"], end="", highlight=False)
            if offset == 0 and not follow:
                job = c.job(job_id)
                if (
                    job.get("start_time") is None
                ):  # say why there is nothing, on stderr (stdout stays the log)
                    why = f"(no output: the job has not started; {job['state']}: {job.get('reason', '')})"
                    err_console.print(why, markup=False, highlight=False)
            return
        time.sleep(1.0)


@connected
def usage(
    conn: Connection,
    by: Annotated[
        list[str] | None,
        typer.Option("--by", help="tenant, program, accelerator, site (repeatable; default: all four)"),
    ] = None,
    period: Annotated[str | None, typer.Option(help="hour, day, week, month or year")] = None,
    days: Annotated[float | None, typer.Option(help="only the last N days")] = None,
    tenant: Annotated[str | None, typer.Option()] = None,
    program: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Device-hours and KRW by tenant, program, accelerator type, site and period (like sreport)."""
    days = days_option(days)
    since = None if days is None else time.time() - days * 86400
    rep = conn.client().usage(by=by, period=period, since=since, tenant=tenant, program=program)
    if conn.json:
        emit_json(rep)
        return
    rows = [
        [
            r["period"],
            r["tenant"],
            r["program"],
            r["accelerator"],
            r.get("site") or "",
            r["jobs"],
            f"{r['device_hours']:.4f}",
            f"{r['krw']:,}",
        ]
        for r in rep["items"]
    ]
    rows.append(["total", "", "", "", "", "", f"{rep['total_device_hours']:.4f}", f"{rep['total_krw']:,}"])
    table("usage", ["period", "tenant", "program", "type", "site", "jobs", "device-h", "KRW"], rows)
