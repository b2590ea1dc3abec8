"""CLI commands for tenants (submit, jobs, show, cancel, logs, usage, grants) and operators (nodes, prices,
programs, grants, tenants, tokens). All go through the SDK; `--json` on every listing."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from accelpool.cli.render import console, emit_json
from accelpool.core.errors import InputError
from accelpool.sdk import Client

Url = Annotated[str | None, typer.Option("--url", help="server URL (env ACCELPOOL_URL)")]
Token = Annotated[str | None, typer.Option("--token", help="API token (env ACCELPOOL_TOKEN)")]
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="read URL/token from this data dir")]
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _client(url: str | None, token: str | None, data_dir: Path | None) -> Client:
    return Client.from_env(url=url, token=token, data_dir=data_dir)


def _ts(t: float | None) -> str:
    return "" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(title: str, cols: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for c in cols:
        table.add_column(c, justify="right" if c in ("KRW", "device-h", "devices", "count", "pos") else "left")
    for r in rows:
        table.add_row(*["" if v is None else str(v) for v in r])
    console.print(table)


def _placement(p: dict[str, Any] | None) -> str:
    if not p:
        return ""
    return str(p["accelerator"]) + " " + ";".join(f"{n}:{','.join(map(str, d))}" for n, d in p["devices"])


def _parse_kv(items: list[str], what: str) -> dict[str, int]:
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not v.strip().lstrip("-").isdigit():
            raise InputError("expected TYPE=INTEGER", field=what, value=it)
        out[k.strip()] = int(v)
    return out


def register(app: typer.Typer) -> None:
    _tenant_commands(app)
    _operator_commands(app)


def _tenant_commands(app: typer.Typer) -> None:
    @app.command("submit")
    def submit(
        spec_file: Annotated[Path, typer.Argument(help="job YAML")],
        idempotency_key: Annotated[str | None, typer.Option(help="retry-safe key")] = None,
        tenant: Annotated[str | None, typer.Option(help="admins: submit for this tenant")] = None,
        url: Url = None, token: Token = None, data_dir: DataDir = None, json: Json = False,
    ) -> None:
        """Submit a job from a YAML file (validated here first: errors name the line and field)."""
        from accelpool.spec.job import parse_job_yaml

        if not spec_file.exists():
            raise InputError("no such file", file=str(spec_file))
        text = spec_file.read_text()
        spec = parse_job_yaml(text, file=str(spec_file))
        c = _client(url, token, data_dir)
        who = c.get("whoami")
        if who["role"] == "admin" and tenant is None:
            tenant = c.tenant
        job = c.submit(spec.model_dump(mode="json", exclude_none=True), idempotency_key=idempotency_key, tenant=tenant)
        if json:
            emit_json(job)
        else:
            console.print(f"submitted {job['id']} ({job['name']}): {job['state']}", highlight=False)

    @app.command("jobs")
    def jobs(
        state: Annotated[list[str] | None, typer.Option("--state", help="repeatable")] = None,
        tenant: Annotated[str | None, typer.Option()] = None,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
        all_pages: Annotated[bool, typer.Option("--all", help="every page")] = False,
        url: Url = None, token: Token = None, data_dir: DataDir = None, json: Json = False,
    ) -> None:
        """List jobs, newest first, with why each waiting job waits and its position."""
        c = _client(url, token, data_dir)
        if all_pages:
            items = list(c.iter_jobs(state=state, tenant=tenant, limit=limit))
        else:
            items = c.jobs(state=state, tenant=tenant, limit=limit)["items"]
        if json:
            emit_json(items)
            return
        _table("jobs", ["id", "name", "tenant", "state", "reason", "pos", "devices", "placement"],
               [[j["id"], j["name"], j["tenant"], j["state"], j["reason"], j["position"], j["count"],
                 _placement(j["placement"])] for j in items])

    @app.command("show")
    def show(job_id: str, url: Url = None, token: Token = None, data_dir: DataDir = None, json: Json = False) -> None:
        """A job's details and its events."""
        j = _client(url, token, data_dir).job(job_id)
        if json:
            emit_json(j)
            return
        _table(f"job {j['id']}", ["field", "value"], [[k, v] for k, v in j.items() if k != "events"])
        _table("events", ["time", "state", "reason"], [[_ts(e["time"]), e["state"], e["reason"]] for e in j["events"]])

    @app.command("cancel")
    def cancel(job_id: str, url: Url = None, token: Token = None, data_dir: DataDir = None, json: Json = False) -> None:
        """Cancel a job (a running one gets SIGTERM, a grace period, then SIGKILL)."""
        j = _client(url, token, data_dir).cancel(job_id)
        emit_json(j) if json else console.print(f"{j['id']}: {j['state']}", highlight=False)

    @app.command("logs")
    def logs(job_id: str, url: Url = None, token: Token = None, data_dir: DataDir = None) -> None:
        """A job's captured output."""
        console.out(_client(url, token, data_dir).logs(job_id), end="", highlight=False)

    @app.command("usage")
    def usage(
        by: Annotated[list[str] | None, typer.Option("--by", help="tenant, program, accelerator (repeatable)")] = None,
        period: Annotated[str | None, typer.Option(help="hour, day, week, month or year")] = None,
        days: Annotated[float | None, typer.Option(help="only the last N days")] = None,
        tenant: Annotated[str | None, typer.Option()] = None,
        program: Annotated[str | None, typer.Option()] = None,
        url: Url = None, token: Token = None, data_dir: DataDir = None, json: Json = False,
    ) -> None:
        """Device-hours and KRW by tenant, program, accelerator type and period (like sreport)."""
        since = time.time() - days * 86400 if days is not None else None
        rep = _client(url, token, data_dir).usage(by=by, period=period, since=since, tenant=tenant, program=program)
        if json:
            emit_json(rep)
            return
        rows = [[r["period"], r["tenant"], r["program"], r["accelerator"], r["jobs"], f"{r['device_hours']:.4f}",
                 f"{r['krw']:,}"] for r in rep["items"]]
        rows.append(["total", "", "", "", "", f"{rep['total_device_hours']:.4f}", f"{rep['total_krw']:,}"])
        _table("usage", ["period", "tenant", "program", "type", "jobs", "device-h", "KRW"], rows)


def _listing(app: typer.Typer, name: str, help_text: str, columns: list[str], key: str = "items") -> typer.Typer:
    sub = typer.Typer(help=help_text, no_args_is_help=False, invoke_without_command=True)
    app.add_typer(sub, name=name)

    @sub.callback()
    def _list(ctx: typer.Context, url: Url = None, token: Token = None, data_dir: DataDir = None,
              json: Json = False) -> None:
        ctx.obj = {"url": url, "token": token, "data_dir": data_dir, "json": json}
        if ctx.invoked_subcommand is not None:
            return
        data = _client(url, token, data_dir).get(name)
        items = data.get(key, data) if isinstance(data, dict) else data
        if json:
            emit_json(items)
            return
        if isinstance(items, dict):
            _table(name, ["type", "KRW"], [[k, f"{v:,}"] for k, v in items.items()])
            return
        _table(name, columns, [[i.get(c) for c in columns] for i in items])

    return sub


def _ctx_client(ctx: typer.Context) -> Client:
    o = ctx.obj or {}
    return _client(o.get("url"), o.get("token"), o.get("data_dir"))


def _operator_commands(app: typer.Typer) -> None:
    nodes = _listing(app, "nodes", "Nodes of the pool (operators add them).",
                     ["name", "accelerator", "devices", "busy", "zone", "down"])
    prices = _listing(app, "prices", "KRW per device-hour by type.", [], key="krw_per_device_hour")
    programs = _listing(app, "programs", "Programs (budget in KRW, rules).",
                        ["id", "name", "budget_krw", "granted_krw", "public", "rules"])
    grants = _listing(app, "grants", "Grants from programs to tenants.",
                      ["id", "program", "tenant", "amount_krw", "spent_krw", "remaining_krw"])
    tenants = _listing(app, "tenants", "Tenants.", ["id", "name", "weight", "quota", "public"])
    tokens = _listing(app, "tokens", "API tokens (hashed; secrets are shown once).",
                      ["id", "name", "role", "tenant", "program", "revoked"])

    def out(ctx: typer.Context, data: Any, line: str) -> None:
        emit_json(data) if (ctx.obj or {}).get("json") else console.print(line, highlight=False)

    @nodes.command("add")
    def add_node(ctx: typer.Context, name: str, accelerator: str, devices: int,
                 zone: Annotated[str, typer.Option()] = "default") -> None:
        d = _ctx_client(ctx).post("nodes", {"name": name, "accelerator": accelerator, "devices": devices, "zone": zone})
        out(ctx, d, f"node {d['name']}: {d['devices']} x {d['accelerator']}")

    @nodes.command("drain")
    def drain(ctx: typer.Context, name: str, undo: Annotated[bool, typer.Option("--undo")] = False) -> None:
        d = _ctx_client(ctx).put(f"nodes/{name}", {"down": not undo})
        out(ctx, d, f"node {name}: {'down' if d['down'] else 'up'}")

    @prices.command("set")
    def set_prices(ctx: typer.Context, items: Annotated[list[str], typer.Argument(help="TYPE=KRW ...")]) -> None:
        d = _ctx_client(ctx).put("prices", _parse_kv(items, "prices"))
        out(ctx, d, "prices: " + ", ".join(f"{k}={v:,}" for k, v in d["krw_per_device_hour"].items()))

    @programs.command("create")
    def create_program(ctx: typer.Context, program_id: str, budget_krw: int,
                       name: Annotated[str, typer.Option()] = "",
                       domestic_public_services: Annotated[bool, typer.Option()] = False,
                       public_share: Annotated[float, typer.Option(min=0, max=1)] = 0.0,
                       cap: Annotated[list[str] | None, typer.Option(help="TYPE=DEVICES per tenant")] = None) -> None:
        rules = {"public_share": {"*": public_share} if public_share else {},
                 "public_services_domestic_only": domestic_public_services,
                 "tenant_caps": _parse_kv(cap or [], "cap")}
        d = _ctx_client(ctx).post("programs", {"id": program_id, "name": name, "budget_krw": budget_krw,
                                               "rules": rules})
        out(ctx, d, f"program {d['id']}: {d['budget_krw']:,} KRW")

    @grants.command("create")
    def create_grant(ctx: typer.Context, program: str, tenant: str, amount_krw: int,
                     days: Annotated[float | None, typer.Option(help="lasts N days from now")] = None) -> None:
        body: dict[str, Any] = {"program": program, "tenant": tenant, "amount_krw": amount_krw, "start": time.time()}
        if days is not None:
            body["end"] = time.time() + days * 86400
        d = _ctx_client(ctx).post("grants", body)
        out(ctx, d, f"grant {d['id']}: {d['amount_krw']:,} KRW from {d['program']} to {d['tenant']}")

    @tenants.command("create")
    def create_tenant(ctx: typer.Context, tenant_id: str, name: Annotated[str, typer.Option()] = "",
                      public: Annotated[bool, typer.Option()] = False) -> None:
        d = _ctx_client(ctx).post("tenants", {"id": tenant_id, "name": name, "public": public})
        out(ctx, d, f"tenant {d['id']}")

    @tokens.command("create")
    def create_token(ctx: typer.Context, role: str, tenant: Annotated[str | None, typer.Option()] = None,
                     program: Annotated[str | None, typer.Option()] = None,
                     name: Annotated[str, typer.Option()] = "") -> None:
        d = _ctx_client(ctx).post("tokens", {"role": role, "tenant": tenant, "program": program, "name": name})
        out(ctx, d, f"token {d['id']} ({d['role']}): {d['secret']}\n(shown once: store it now)")

    @tokens.command("revoke")
    def revoke(ctx: typer.Context, token_id: str) -> None:
        d = _ctx_client(ctx).delete(f"tokens/{token_id}")
        out(ctx, d, f"token {token_id} revoked")
