"""CLI commands for operators and program managers: nodes, prices, sites, programs, grants, tenants,
tokens. Each group's bare name lists it; its subcommands change it. All go through the SDK; the connection
options are declared once, in cli/connection.py."""

from __future__ import annotations

import math
import time
from typing import Annotated, Any

import typer

from accelpool.cli.connection import Connection, connected, connection_callback
from accelpool.cli.format import days_option, parse_kv, table, ts
from accelpool.cli.render import emit_json, err_console
from accelpool.core.errors import InputError


def _segment(value: str, field: str) -> str:
    """``accelpool.sdk.segment`` (imported here, as the client is, only by commands that call the server)."""
    from accelpool.sdk import segment

    return segment(value, field)


_GROUPS: list[tuple[str, typer.Typer]] = []


def _listing(name: str, help_text: str, columns: list[str], key: str = "items") -> typer.Typer:
    """A command group whose bare name lists the resource (`accelpool nodes`) and whose subcommands change it."""
    sub = typer.Typer(help=help_text, no_args_is_help=False, invoke_without_command=True)
    _GROUPS.append((name, sub))

    def _list(ctx: typer.Context, conn: Connection) -> None:
        if ctx.invoked_subcommand is not None:
            return
        data = conn.client().get(name)
        items = data.get(key, data) if isinstance(data, dict) else data
        if conn.json:
            emit_json(items)
        elif isinstance(items, dict):
            table(name, ["type", "KRW"], [[k, f"{v:,}"] for k, v in items.items()])
        else:
            table(name, columns, [[_cell(c, i.get(c)) for c in columns] for i in items])

    sub.callback()(connection_callback(_list))
    return sub


def _cell(column: str, value: Any) -> Any:
    """A listing's cell as a person reads it: KRW with thousands separators, times as UTC dates (--json
    keeps the numbers)."""
    if column.endswith("_krw") and isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if column in ("start", "end") and isinstance(value, int | float) and not isinstance(value, bool):
        return ts(float(value)) + " UTC"
    return value


def register(app: typer.Typer) -> None:
    for name, sub in _GROUPS:
        app.add_typer(sub, name=name)


nodes_cli = _listing(
    "nodes",
    "Nodes of the pool (operators add them).",
    ["name", "accelerator", "devices", "busy", "zone", "site", "down"],
)
prices_cli = _listing("prices", "KRW per device-hour by type.", [], key="krw_per_device_hour")
sites_cli = _listing(
    "sites",
    "Sites: operators' clusters (region, certified data classes, executor, own prices).",
    ["id", "operator", "region", "data_classes", "executor", "prices", "down"],
)


@sites_cli.command("add")
@connected
def add_site(
    conn: Connection,
    site_id: Annotated[str, typer.Argument(metavar="ID")],
    operator: Annotated[str, typer.Option(help="who runs it")] = "",
    region: Annotated[str, typer.Option(help="region name (letters, digits, - _ .)")] = "",
    data_class: Annotated[
        list[str] | None,
        typer.Option(
            "--data-class", help="certified for (repeat): public, personal, financial, public-sector"
        ),
    ] = None,
    executor: Annotated[str, typer.Option(help="local, ray, slurm or fake")] = "local",
    price: Annotated[
        list[str] | None, typer.Option("--price", help="TYPE=KRW per device-hour at this site (repeat)")
    ] = None,
    connection: Annotated[
        list[str] | None,
        typer.Option(
            "--connection",
            help="KEY=VALUE for its executor (repeat), e.g. slurm_conf=/etc/slurm/slurm.conf "
            "(docs/sites.md lists the keys)",
        ),
    ] = None,
) -> None:
    """Register a site (refused if the id exists); `accelpool up` drives it from its next round."""
    body = {
        "id": site_id,
        "operator": operator,
        "region": region,
        "data_classes": data_class or ["public"],
        "executor": executor,
        "connection": _pairs(connection, "--connection"),
        "prices": _site_prices(price),
    }
    d = conn.client().post("sites", body)
    conn.out(d, f"site {d['id']}: {', '.join(d['data_classes'])} data, {d['executor']} executor")


@sites_cli.command("set")
@connected
def set_site(
    conn: Connection,
    site_id: Annotated[str, typer.Argument(metavar="ID")],
    data_class: Annotated[
        list[str] | None, typer.Option("--data-class", help="certified for (repeat; replaces the list)")
    ] = None,
    executor: Annotated[str | None, typer.Option(help="local, ray, slurm or fake")] = None,
    price: Annotated[
        list[str] | None, typer.Option("--price", help="TYPE=KRW per device-hour (repeat; replaces them)")
    ] = None,
    connection: Annotated[
        list[str] | None, typer.Option("--connection", help="KEY=VALUE (repeat; replaces the connection)")
    ] = None,
    down: Annotated[
        bool | None,
        typer.Option(
            "--down/--up",
            help="take the site out by hand (it stays down, across restarts, until --up), or bring it back",
        ),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="why it is taken out (with --down; recorded)")] = None,
) -> None:
    """Change a site: certifications, executor, connection, prices, down/up."""
    if reason is not None and down is not True:
        raise InputError("--reason goes with --down", field="--reason", value=reason)
    body: dict[str, Any] = {}
    if data_class:
        body["data_classes"] = data_class
    if executor is not None:
        body["executor"] = executor
    if price is not None:
        body["prices"] = _site_prices(price)
    if connection is not None:
        body["connection"] = _pairs(connection, "--connection")
    if down is not None:
        body["down"] = down
    if reason is not None:
        body["reason"] = reason
    d = conn.client().put(f"sites/{_segment(site_id, 'site')}", body)
    state = "down" if d["down"] else "up"
    held = d.get("down_by_hand")
    if held:
        state += f" (by hand: {held['by']}{': ' + held['reason'] if held['reason'] else ''})"
    conn.out(d, f"site {d['id']}: {', '.join(d['data_classes'])} data, {d['executor']} executor, {state}")


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise InputError(f"{option} wants KEY=VALUE, got '{item}'", field=option, value=item)
        out[k.strip()] = v
    return out


def _site_prices(items: list[str] | None) -> dict[str, int]:
    prices: dict[str, int] = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep or not (v.strip().isascii() and v.strip().isdigit()) or len(v.strip()) > 18:
            raise InputError(
                f"--price wants TYPE=KRW (whole won, at most 18 digits), got '{item}'",
                field="--price",
                value=item,
            )
        prices[k.strip()] = int(v)
    return prices


programs_cli = _listing(
    "programs",
    "Programs (budget in KRW, rules).",
    ["id", "name", "budget_krw", "granted_krw", "public", "rules"],
)
grants_cli = _listing(
    "grants",
    "Grants from programs to tenants.",
    ["id", "program", "tenant", "amount_krw", "spent_krw", "held_krw", "available_krw", "state", "end"],
)
tenants_cli = _listing("tenants", "Tenants.", ["id", "name", "weight", "quota", "public"])
tokens_cli = _listing(
    "tokens",
    "API tokens (hashed; secrets are shown once).",
    ["id", "name", "role", "tenant", "program", "revoked"],
)


@nodes_cli.command("add")
@connected
def add_node(
    conn: Connection,
    name: str,
    accelerator: str,
    devices: int,
    zone: Annotated[str, typer.Option(help="zone name (letters, digits, - _ .)")] = "default",
    site: Annotated[str, typer.Option(help="the site it belongs to (see `accelpool sites`)")] = "default",
) -> None:
    """Add a node of DEVICES accelerators of one type (refused if the name exists: use update)."""
    d = conn.client().post(
        "nodes",
        {"name": name, "accelerator": accelerator, "devices": devices, "zone": zone, "site": site},
    )
    conn.out(d, f"node {d['name']}: {d['devices']} x {d['accelerator']}")
    if not conn.json:
        for note in d.get("notes", ()):
            err_console.print(f"warning: {note}", markup=False, highlight=False)


@nodes_cli.command("update")
@connected
def update_node(
    conn: Connection,
    name: str,
    devices: Annotated[int | None, typer.Option(help="new device count (not below those in use)")] = None,
    zone: Annotated[str | None, typer.Option(help="new zone (only while no job runs on it)")] = None,
) -> None:
    """Resize a node or move it to another zone; drain it first if running jobs hold what would go."""
    body = {k: v for k, v in (("devices", devices), ("zone", zone)) if v is not None}
    if not body:
        raise InputError("give --devices and/or --zone", field="nodes update")
    d = conn.client().put(f"nodes/{_segment(name, 'node')}", body)
    conn.out(d, f"node {d['name']}: {d['devices']} x {d['accelerator']} in {d['zone']}")


@nodes_cli.command("drain")
@connected
def drain(
    conn: Connection,
    name: str,
    undo: Annotated[bool, typer.Option("--undo", help="bring the node back")] = False,
) -> None:
    """Mark a node down (its devices leave the pool; its jobs are requeued), or up again with --undo."""
    d = conn.client().put(f"nodes/{_segment(name, 'node')}", {"down": not undo})
    conn.out(d, f"node {name}: {'down' if d['down'] else 'up'}")


@nodes_cli.command("remove")
@connected
def remove_node(conn: Connection, name: str) -> None:
    """Take a node out of the pool for good (refused while jobs run on it: drain it first)."""
    conn.out(conn.client().delete(f"nodes/{_segment(name, 'node')}"), f"node {name}: removed")


@prices_cli.command("set")
@connected
def set_prices(
    conn: Connection,
    items: Annotated[list[str], typer.Argument(help="TYPE=KRW ...")],
) -> None:
    """Set KRW per device-hour (integers) for the types given."""
    d = conn.client().put("prices", parse_kv(items, "prices"))
    conn.out(d, "prices: " + ", ".join(f"{k}={v:,}" for k, v in d["krw_per_device_hour"].items()))


@programs_cli.command("create")
@connected
def create_program(
    conn: Connection,
    program_id: str,
    budget_krw: int,
    name: Annotated[str, typer.Option(help="display name")] = "",
    domestic_public_services: Annotated[
        bool, typer.Option(help="public services run on Korean NPUs only")
    ] = False,
    public_share: Annotated[float, typer.Option(min=0, max=1, help="share reserved for public use")] = 0.0,
    cap: Annotated[list[str] | None, typer.Option(help="TYPE=DEVICES per tenant")] = None,
) -> None:
    """Create a program with a budget in KRW (refused if the id exists: use update / PUT rules)."""
    if not math.isfinite(public_share):
        raise InputError("must be a fraction between 0 and 1", field="--public-share", value=public_share)
    rules = {
        "public_share": {"*": public_share} if public_share else {},
        "public_services_domestic_only": domestic_public_services,
        "tenant_caps": parse_kv(cap or [], "cap"),
    }
    d = conn.client().post(
        "programs", {"id": program_id, "name": name, "budget_krw": budget_krw, "rules": rules}
    )
    conn.out(d, f"program {d['id']}: {d['budget_krw']:,} KRW")


@programs_cli.command("update")
@connected
def update_program(
    conn: Connection,
    program_id: str,
    budget_krw: Annotated[
        int | None, typer.Option("--budget", help="KRW (not below what is granted)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    days: Annotated[float | None, typer.Option(help="ends N days from now")] = None,
) -> None:
    """Change a program's budget, name or end."""
    body: dict[str, Any] = {"budget_krw": budget_krw, "name": name}
    days = days_option(days)
    if days is not None:
        body["end"] = time.time() + days * 86400
    change = {k: v for k, v in body.items() if v is not None}
    if not change:  # as grants update: nothing to change is not a success
        raise InputError("give --budget, --name and/or --days", field="options")
    d = conn.client().patch(f"programs/{_segment(program_id, 'program')}", change)
    conn.out(d, f"program {d['id']}: {d['budget_krw']:,} KRW")


@grants_cli.command("create")
@connected
def create_grant(
    conn: Connection,
    program: str,
    tenant: str,
    amount_krw: int,
    days: Annotated[float | None, typer.Option(help="lasts N days from now")] = None,
) -> None:
    """Grant AMOUNT_KRW from PROGRAM's budget to TENANT."""
    days_option(days)
    now = time.time()
    body: dict[str, Any] = {"program": program, "tenant": tenant, "amount_krw": amount_krw, "start": now}
    if days is not None:
        body["end"] = now + days * 86400
    d = conn.client().post("grants", body)
    conn.out(d, f"grant {d['id']}: {d['amount_krw']:,} KRW from {d['program']} to {d['tenant']}")


@grants_cli.command("update")
@connected
def update_grant(
    conn: Connection,
    grant_id: str,
    amount_krw: Annotated[int | None, typer.Option("--amount", help="new amount in KRW")] = None,
    days: Annotated[float | None, typer.Option(help="ends N days from now")] = None,
) -> None:
    """Change a grant's amount (within its program's budget) or end; what it has spent stays."""
    days_option(days)
    body: dict[str, Any] = {}
    if amount_krw is not None:
        body["amount_krw"] = amount_krw
    if days is not None:
        body["end"] = time.time() + days * 86400
    if not body:
        raise InputError("give --amount and/or --days", field="grants update")
    d = conn.client().patch(f"grants/{_segment(grant_id, 'grant')}", body)
    conn.out(d, f"grant {d['id']}: {d['amount_krw']:,} KRW ({d['spent_krw']:,} spent)")


@tenants_cli.command("create")
@connected
def create_tenant(
    conn: Connection,
    tenant_id: str,
    name: Annotated[str, typer.Option(help="display name")] = "",
    public: Annotated[
        bool, typer.Option(help="a public-service tenant (may use the public reserve)")
    ] = False,
) -> None:
    """Create a tenant (refused if the id exists: use update)."""
    d = conn.client().post("tenants", {"id": tenant_id, "name": name, "public": public})
    conn.out(d, f"tenant {d['id']}")


@tenants_cli.command("update")
@connected
def update_tenant(
    conn: Connection,
    tenant_id: str,
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    weight: Annotated[float | None, typer.Option(help="fair-share weight (> 0)")] = None,
    public: Annotated[
        bool | None, typer.Option("--public/--not-public", help="a public-service tenant")
    ] = None,
) -> None:
    """Change a tenant's name, weight or public flag."""
    if weight is not None and not (math.isfinite(weight) and weight > 0):
        raise InputError("must be a finite number > 0", field="--weight", value=weight)
    body = {k: v for k, v in (("name", name), ("weight", weight), ("public", public)) if v is not None}
    d = conn.client().patch(f"tenants/{_segment(tenant_id, 'tenant')}", body)
    conn.out(d, f"tenant {d['id']}")


@tokens_cli.command("create")
@connected
def create_token(
    conn: Connection,
    role: Annotated[str, typer.Argument(help="admin, operator, program-manager or member")],
    tenant: Annotated[str | None, typer.Option(help="the member's tenant")] = None,
    program: Annotated[str | None, typer.Option(help="the program manager's program")] = None,
    name: Annotated[str, typer.Option(help="who holds it")] = "",
) -> None:
    """Create an API token; its secret is shown once."""
    d = conn.client().post("tokens", {"role": role, "tenant": tenant, "program": program, "name": name})
    conn.out(d, f"token {d['id']} ({d['role']}): {d['secret']}\n(shown once: store it now)")


@tokens_cli.command("revoke")
@connected
def revoke(
    conn: Connection,
    token_id: str,
) -> None:
    """Revoke a token (at once for this server)."""
    d = conn.client().delete(f"tokens/{_segment(token_id, 'token')}")
    conn.out(d, f"token {token_id} revoked")
