"""CLI commands for tenants (submit, jobs, show, cancel, logs, usage, grants) and operators (nodes, prices,
programs, grants, tenants, tokens). All go through the SDK; `--json` on every listing."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from accelpool.cli.render import console, emit_json
from accelpool.core.errors import InputError
from accelpool.sdk import Client, Rejected

Url = Annotated[str | None, typer.Option("--url", help="server URL (env ACCELPOOL_URL)")]
Token = Annotated[str | None, typer.Option("--token", help="API token (env ACCELPOOL_TOKEN)")]
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="read URL/token from this data dir")]
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _client(url: str | None, token: str | None, data_dir: Path | None) -> Client:
    return Client.from_env(url=url, token=token, data_dir=data_dir)


def read_text_file(path: Path) -> str:
    """A UTF-8 text file's content; InputError (exit 2, one line) when it is missing, a directory,
    unreadable or not UTF-8."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise InputError("is a directory, not a file", file=str(path)) from None
    except FileNotFoundError:
        raise InputError("no such file", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})", file=str(path), line=line) from None


def _ts(t: float | None) -> str:
    return "" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


# Columns that hold ids: never cut or wrapped (the other columns wrap to make room), so an id can always be
# copied from an 80-column terminal.
# (a node's ``name`` is its id; a job's ``name`` is free text and wraps).
_ID_COLUMNS = frozenset({"id", "job", "tenant", "program", "grant", "field", "state"})


def _table(title: str, cols: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    ids = _ID_COLUMNS if "id" in cols else _ID_COLUMNS | {"name"}
    for k, c in enumerate(cols):
        right = c in ("KRW", "device-h", "devices", "count", "pos")
        if c in ids:
            width = max([len(c)] + [len(r[k]) for r in cells])
            table.add_column(c, no_wrap=True, min_width=width)
        else:
            table.add_column(c, justify="right" if right else "left", overflow="fold")
    for r in cells:
        table.add_row(*r)
    console.print(table)


def _shown(key: str, value: Any) -> Any:
    """A job field as ``show`` prints it: times as UTC dates, placements as ``type node:devices``."""
    if key.endswith("_time") and isinstance(value, int | float):
        return _ts(float(value)) + " UTC"
    if key == "placement":
        return _placement(value)
    return value


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


def _line_of(text: str, fld: str | None) -> int | None:
    """The YAML line of a field (or of its nearest parent) named by the server."""
    if not fld:
        return None
    from accelpool.spec.job import _lines

    lines = _lines(text)
    path = tuple(fld.split("."))
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path)


def _days(days: float | None, what: str = "--days") -> float | None:
    if days is not None and not (math.isfinite(days) and days > 0):
        raise InputError("must be a finite number of days > 0", field=what, value=days)
    return days


def register(app: typer.Typer) -> None:
    _tenant_commands(app)
    _operator_commands(app)


def _tenant_commands(app: typer.Typer) -> None:
    @app.command("submit")
    def submit(
        spec_file: Annotated[Path, typer.Argument(help="job YAML")],
        idempotency_key: Annotated[str | None, typer.Option(help="retry-safe key")] = None,
        tenant: Annotated[str | None, typer.Option(help="admins: submit for this tenant")] = None,
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Submit a job from a YAML file (validated here first: errors name the line and field)."""
        from accelpool.spec.job import parse_job_yaml

        text = read_text_file(spec_file)
        spec = parse_job_yaml(text, file=str(spec_file))
        c = _client(url, token, data_dir)
        who = c.get("whoami")
        if who["role"] == "admin" and tenant is None:
            tenant = c.tenant
        try:
            job = c.submit(
                spec.model_dump(mode="json", exclude_none=True),
                idempotency_key=idempotency_key,
                tenant=tenant,
            )
        except Rejected as exc:
            raise InputError(
                f"refused by the server: {exc.message}",
                file=str(spec_file),
                line=_line_of(text, exc.field),
                field=exc.field,
            ) from None
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
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
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
        _table(
            "jobs",
            ["id", "name", "tenant", "state", "reason", "pos", "devices", "placement"],
            [
                [
                    j["id"],
                    j["name"],
                    j["tenant"],
                    j["state"],
                    j["reason"],
                    j["position"],
                    j["count"],
                    _placement(j["placement"]),
                ]
                for j in items
            ],
        )

    @app.command("show")
    def show(
        job_id: str, url: Url = None, token: Token = None, data_dir: DataDir = None, json: Json = False
    ) -> None:
        """A job's details and its events."""
        j = _client(url, token, data_dir).job(job_id)
        if json:
            emit_json(j)
            return
        _table(f"job {j['id']}", ["field", "value"], [[k, _shown(k, v)] for k, v in j.items() if k != "events"])
        _table(
            "events (UTC)",
            ["time", "state", "reason", "cause"],
            [[_ts(e["time"]), e["state"], e["reason"], e.get("cause")] for e in j["events"]],
        )

    @app.command("cancel")
    def cancel(
        job_id: str, url: Url = None, token: Token = None, data_dir: DataDir = None, json: Json = False
    ) -> None:
        """Cancel a job (a running one gets SIGTERM, a grace period, then SIGKILL)."""
        j = _client(url, token, data_dir).cancel(job_id)
        emit_json(j) if json else console.print(f"{j['id']}: {j['state']}", highlight=False)

    @app.command("logs")
    def logs(job_id: str, url: Url = None, token: Token = None, data_dir: DataDir = None) -> None:
        """A job's captured output."""
        console.out(_client(url, token, data_dir).logs(job_id), end="", highlight=False)

    @app.command("usage")
    def usage(
        by: Annotated[
            list[str] | None, typer.Option("--by", help="tenant, program, accelerator (repeatable)")
        ] = None,
        period: Annotated[str | None, typer.Option(help="hour, day, week, month or year")] = None,
        days: Annotated[float | None, typer.Option(help="only the last N days")] = None,
        tenant: Annotated[str | None, typer.Option()] = None,
        program: Annotated[str | None, typer.Option()] = None,
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Device-hours and KRW by tenant, program, accelerator type and period (like sreport)."""
        if days is not None and not (math.isfinite(days) and days > 0):
            raise InputError("must be a finite number of days > 0", field="--days", value=days)
        since = time.time() - days * 86400 if days is not None else None
        rep = _client(url, token, data_dir).usage(
            by=by, period=period, since=since, tenant=tenant, program=program
        )
        if json:
            emit_json(rep)
            return
        rows = [
            [
                r["period"],
                r["tenant"],
                r["program"],
                r["accelerator"],
                r["jobs"],
                f"{r['device_hours']:.4f}",
                f"{r['krw']:,}",
            ]
            for r in rep["items"]
        ]
        rows.append(["total", "", "", "", "", f"{rep['total_device_hours']:.4f}", f"{rep['total_krw']:,}"])
        _table("usage", ["period", "tenant", "program", "type", "jobs", "device-h", "KRW"], rows)


def _listing(
    app: typer.Typer, name: str, help_text: str, columns: list[str], key: str = "items"
) -> typer.Typer:
    sub = typer.Typer(help=help_text, no_args_is_help=False, invoke_without_command=True)
    app.add_typer(sub, name=name)

    @sub.callback()
    def _list(
        ctx: typer.Context, url: Url = None, token: Token = None, data_dir: DataDir = None, json: Json = False
    ) -> None:
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


class _Op:
    """A subcommand's connection: its own options (given after the arguments) win over the group's
    (given before the subcommand)."""

    def __init__(
        self, ctx: typer.Context, url: str | None, token: str | None, data_dir: Path | None, json: bool
    ) -> None:
        o = ctx.obj or {}
        self.client = _client(url or o.get("url"), token or o.get("token"), data_dir or o.get("data_dir"))
        self.json = json or bool(o.get("json"))

    def out(self, data: Any, line: str) -> None:
        emit_json(data) if self.json else console.print(line, highlight=False)


def _operator_commands(app: typer.Typer) -> None:
    nodes = _listing(
        app,
        "nodes",
        "Nodes of the pool (operators add them).",
        ["name", "accelerator", "devices", "busy", "zone", "site", "down"],
    )
    prices = _listing(app, "prices", "KRW per device-hour by type.", [], key="krw_per_device_hour")
    sites = _listing(
        app,
        "sites",
        "Sites: operators' clusters (region, certified data classes, executor, own prices).",
        ["id", "operator", "region", "data_classes", "executor", "prices", "down"],
    )

    @sites.command("add")
    def add_site(
        ctx: typer.Context,
        site_id: Annotated[str, typer.Argument(metavar="ID")],
        operator: Annotated[str, typer.Option(help="who runs it")] = "",
        region: Annotated[str, typer.Option(help="region name (letters, digits, - _ .)")] = "",
        data_class: Annotated[
            list[str] | None,
            typer.Option("--data-class", help="certified for (repeat): public, personal, financial, public-sector"),
        ] = None,
        executor: Annotated[str, typer.Option(help="local, ray, slurm or fake")] = "local",
        price: Annotated[
            list[str] | None, typer.Option("--price", help="TYPE=KRW per device-hour at this site (repeat)")
        ] = None,
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Register a site (refused if the id exists)."""
        op = _Op(ctx, url, token, data_dir, json)
        prices: dict[str, int] = {}
        for item in price or []:
            k, sep, v = item.partition("=")
            if not sep or not v.strip().isdigit():
                raise InputError(f"--price wants TYPE=KRW (whole won), got '{item}'", field="--price", value=item)
            prices[k.strip()] = int(v)
        body = {
            "id": site_id,
            "operator": operator,
            "region": region,
            "data_classes": data_class or ["public"],
            "executor": executor,
            "prices": prices,
        }
        d = op.client.post("sites", body)
        op.out(d, f"site {d['id']}: {', '.join(d['data_classes'])} data, {d['executor']} executor")
    programs = _listing(
        app,
        "programs",
        "Programs (budget in KRW, rules).",
        ["id", "name", "budget_krw", "granted_krw", "public", "rules"],
    )
    grants = _listing(
        app,
        "grants",
        "Grants from programs to tenants.",
        ["id", "program", "tenant", "amount_krw", "spent_krw", "remaining_krw"],
    )
    tenants = _listing(app, "tenants", "Tenants.", ["id", "name", "weight", "quota", "public"])
    tokens = _listing(
        app,
        "tokens",
        "API tokens (hashed; secrets are shown once).",
        ["id", "name", "role", "tenant", "program", "revoked"],
    )

    @nodes.command("add")
    def add_node(
        ctx: typer.Context,
        name: str,
        accelerator: str,
        devices: int,
        zone: Annotated[str, typer.Option(help="zone name (letters, digits, - _ .)")] = "default",
        site: Annotated[str, typer.Option(help="the site it belongs to (see `accelpool sites`)")] = "default",
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Add a node of DEVICES accelerators of one type (refused if the name exists: use update)."""
        op = _Op(ctx, url, token, data_dir, json)
        d = op.client.post(
            "nodes",
            {"name": name, "accelerator": accelerator, "devices": devices, "zone": zone, "site": site},
        )
        op.out(d, f"node {d['name']}: {d['devices']} x {d['accelerator']}")

    @nodes.command("update")
    def update_node(
        ctx: typer.Context,
        name: str,
        devices: Annotated[int | None, typer.Option(help="new device count (not below those in use)")] = None,
        zone: Annotated[str | None, typer.Option(help="new zone (only while no job runs on it)")] = None,
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Resize a node or move it to another zone; drain it first if running jobs hold what would go."""
        op = _Op(ctx, url, token, data_dir, json)
        body = {k: v for k, v in (("devices", devices), ("zone", zone)) if v is not None}
        if not body:
            raise InputError("give --devices and/or --zone", field="nodes update")
        d = op.client.put(f"nodes/{name}", body)
        op.out(d, f"node {d['name']}: {d['devices']} x {d['accelerator']} in {d['zone']}")

    @nodes.command("drain")
    def drain(
        ctx: typer.Context,
        name: str,
        undo: Annotated[bool, typer.Option("--undo", help="bring the node back")] = False,
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Mark a node down (its devices leave the pool; its jobs are requeued), or up again with --undo."""
        op = _Op(ctx, url, token, data_dir, json)
        d = op.client.put(f"nodes/{name}", {"down": not undo})
        op.out(d, f"node {name}: {'down' if d['down'] else 'up'}")

    @prices.command("set")
    def set_prices(
        ctx: typer.Context,
        items: Annotated[list[str], typer.Argument(help="TYPE=KRW ...")],
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Set KRW per device-hour (integers) for the types given."""
        op = _Op(ctx, url, token, data_dir, json)
        d = op.client.put("prices", _parse_kv(items, "prices"))
        op.out(d, "prices: " + ", ".join(f"{k}={v:,}" for k, v in d["krw_per_device_hour"].items()))

    @programs.command("create")
    def create_program(
        ctx: typer.Context,
        program_id: str,
        budget_krw: int,
        name: Annotated[str, typer.Option(help="display name")] = "",
        domestic_public_services: Annotated[
            bool, typer.Option(help="public services run on Korean NPUs only")
        ] = False,
        public_share: Annotated[
            float, typer.Option(min=0, max=1, help="share reserved for public use")
        ] = 0.0,
        cap: Annotated[list[str] | None, typer.Option(help="TYPE=DEVICES per tenant")] = None,
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Create a program with a budget in KRW (refused if the id exists: use update / PUT rules)."""
        if not math.isfinite(public_share):
            raise InputError("must be a fraction between 0 and 1", field="--public-share", value=public_share)
        op = _Op(ctx, url, token, data_dir, json)
        rules = {
            "public_share": {"*": public_share} if public_share else {},
            "public_services_domestic_only": domestic_public_services,
            "tenant_caps": _parse_kv(cap or [], "cap"),
        }
        d = op.client.post(
            "programs", {"id": program_id, "name": name, "budget_krw": budget_krw, "rules": rules}
        )
        op.out(d, f"program {d['id']}: {d['budget_krw']:,} KRW")

    @programs.command("update")
    def update_program(
        ctx: typer.Context,
        program_id: str,
        budget_krw: Annotated[
            int | None, typer.Option("--budget", help="KRW (not below what is granted)")
        ] = None,
        name: Annotated[str | None, typer.Option(help="display name")] = None,
        days: Annotated[float | None, typer.Option(help="ends N days from now")] = None,
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Change a program's budget, name or end."""
        op = _Op(ctx, url, token, data_dir, json)
        body: dict[str, Any] = {"budget_krw": budget_krw, "name": name}
        if _days(days) is not None:
            body["end"] = time.time() + days * 86400  # type: ignore[operator]
        d = op.client.patch(f"programs/{program_id}", {k: v for k, v in body.items() if v is not None})
        op.out(d, f"program {d['id']}: {d['budget_krw']:,} KRW")

    @grants.command("create")
    def create_grant(
        ctx: typer.Context,
        program: str,
        tenant: str,
        amount_krw: int,
        days: Annotated[float | None, typer.Option(help="lasts N days from now")] = None,
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Grant AMOUNT_KRW from PROGRAM's budget to TENANT."""
        _days(days)
        op = _Op(ctx, url, token, data_dir, json)
        now = time.time()
        body: dict[str, Any] = {"program": program, "tenant": tenant, "amount_krw": amount_krw, "start": now}
        if days is not None:
            body["end"] = now + days * 86400
        d = op.client.post("grants", body)
        op.out(d, f"grant {d['id']}: {d['amount_krw']:,} KRW from {d['program']} to {d['tenant']}")

    @grants.command("update")
    def update_grant(
        ctx: typer.Context,
        grant_id: str,
        amount_krw: Annotated[int | None, typer.Option("--amount", help="new amount in KRW")] = None,
        days: Annotated[float | None, typer.Option(help="ends N days from now")] = None,
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Change a grant's amount (within its program's budget) or end; what it has spent stays."""
        _days(days)
        op = _Op(ctx, url, token, data_dir, json)
        body: dict[str, Any] = {}
        if amount_krw is not None:
            body["amount_krw"] = amount_krw
        if days is not None:
            body["end"] = time.time() + days * 86400
        if not body:
            raise InputError("give --amount and/or --days", field="grants update")
        d = op.client.patch(f"grants/{grant_id}", body)
        op.out(d, f"grant {d['id']}: {d['amount_krw']:,} KRW ({d['spent_krw']:,} spent)")

    @tenants.command("create")
    def create_tenant(
        ctx: typer.Context,
        tenant_id: str,
        name: Annotated[str, typer.Option(help="display name")] = "",
        public: Annotated[
            bool, typer.Option(help="a public-service tenant (may use the public reserve)")
        ] = False,
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Create a tenant (refused if the id exists: use update)."""
        op = _Op(ctx, url, token, data_dir, json)
        d = op.client.post("tenants", {"id": tenant_id, "name": name, "public": public})
        op.out(d, f"tenant {d['id']}")

    @tenants.command("update")
    def update_tenant(
        ctx: typer.Context,
        tenant_id: str,
        name: Annotated[str | None, typer.Option(help="display name")] = None,
        weight: Annotated[float | None, typer.Option(help="fair-share weight (> 0)")] = None,
        public: Annotated[
            bool | None, typer.Option("--public/--not-public", help="a public-service tenant")
        ] = None,
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Change a tenant's name, weight or public flag."""
        if weight is not None and not (math.isfinite(weight) and weight > 0):
            raise InputError("must be a finite number > 0", field="--weight", value=weight)
        op = _Op(ctx, url, token, data_dir, json)
        body = {k: v for k, v in (("name", name), ("weight", weight), ("public", public)) if v is not None}
        d = op.client.patch(f"tenants/{tenant_id}", body)
        op.out(d, f"tenant {d['id']}")

    @tokens.command("create")
    def create_token(
        ctx: typer.Context,
        role: Annotated[str, typer.Argument(help="admin, program-manager or member")],
        tenant: Annotated[str | None, typer.Option(help="the member's tenant")] = None,
        program: Annotated[str | None, typer.Option(help="the program manager's program")] = None,
        name: Annotated[str, typer.Option(help="who holds it")] = "",
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Create an API token; its secret is shown once."""
        op = _Op(ctx, url, token, data_dir, json)
        d = op.client.post("tokens", {"role": role, "tenant": tenant, "program": program, "name": name})
        op.out(d, f"token {d['id']} ({d['role']}): {d['secret']}\n(shown once: store it now)")

    @tokens.command("revoke")
    def revoke(
        ctx: typer.Context,
        token_id: str,
        url: Url = None,
        token: Token = None,
        data_dir: DataDir = None,
        json: Json = False,
    ) -> None:
        """Revoke a token (at once for this server)."""
        op = _Op(ctx, url, token, data_dir, json)
        d = op.client.delete(f"tokens/{token_id}")
        op.out(d, f"token {token_id} revoked")
