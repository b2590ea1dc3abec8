"""Routes under /api/v1. Each handler: who may call it, what it may see (others' objects are 404)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from accelpool.api.admission import admit
from accelpool.api.auth import ROLES, Principal, principal, visible_programs, visible_tenants
from accelpool.api.errors import ApiError, json_response, not_found
from accelpool.core.types import Grant, Node, Program, ProgramRules, Tenant
from accelpool.spec.job import JobSpec
from accelpool.storage import codec
from accelpool.storage.queries import PERIODS
from accelpool.storage.sql import SqlStore, Submission
from accelpool.storage.views import JobView, row_view

router = APIRouter()
Who = Annotated[Principal, Depends(principal)]
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def _store(request: Request) -> SqlStore:
    return request.app.state.store  # type: ignore[no-any-return]


def job_json(v: JobView, events: list[Any] | None = None) -> dict[str, Any]:
    s = v.spec
    out: dict[str, Any] = {
        "id": v.id,
        "name": v.name,
        "tenant": v.tenant,
        "state": v.state.value,
        "reason": v.reason,
        "position": v.position,
        "kind": s.get("kind"),
        "count": s.get("scale"),
        "types": s.get("allowed"),
        "grant": s.get("grant"),
        "priority": s.get("priority"),
        "placement": v.placement,
        "steps_done": v.steps_done,
        "total_steps": s.get("total_steps"),
        "submit_time": v.submit_time,
        "start_time": v.start_time,
        "end_time": v.end_time,
        "preemptions": v.preemptions,
        "attempts": v.attempts,
        "reserved_krw": v.reserved_krw,
        "command": v.run.get("command"),
    }
    if v.charged_krw is not None:
        out["charged_krw"] = v.charged_krw
    if events is not None:
        out["events"] = [asdict(e) for e in events]
    return out


def _visible_job(request: Request, who: Principal, job_id: str) -> JobView:
    store = _store(request)
    v = store.get_job(job_id, visible_tenants(store, who))
    if v is None:
        raise not_found("job")
    return v


# -- jobs ---------------------------------------------------------------------------------------------


@router.post("/jobs", status_code=201, tags=["jobs"])
async def submit_job(
    spec: JobSpec,
    request: Request,
    who: Who,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    tenant: Annotated[str | None, Query(description="admins: the tenant to submit for")] = None,
) -> Response:
    """Queue a job (201). A job that could never run is refused with the reason. Retrying with the same
    ``Idempotency-Key`` returns the first job (200) instead of a second one.

    Runs on the event loop: admission reads only cached reference data, and the write goes to the store's
    group-commit writer; the answer is sent once the transaction holding the job has committed."""
    who.require("member", "admin")
    store = _store(request)
    if who.is_admin:
        if tenant is None:
            raise ApiError(422, "admins must say which tenant the job is for (?tenant=...)", "tenant")
    else:
        if tenant is not None and tenant != who.token.tenant:
            raise not_found("tenant", "tenant")
        tenant = who.token.tenant
    assert tenant is not None
    state = request.app.state
    metrics = state.metrics
    try:
        a = admit(store, spec, tenant, state.hooks.now(), state.catalog)
        item = Submission(a.job, a.throughput, a.run, spec.name, idempotency_key, a.reserve_krw)
        result = await _committed(store, item)
        if isinstance(result, Exception):
            # a ValueError (other failures raise in _committed): the only refusals the store makes: the grant cannot hold the job's worst-case cost beside
            # its other active jobs (checked under the grant's row lock), or an id clash
            field = "max_run_time" if "KRW" in str(result) else "id"
            raise ApiError(409, str(result), field)
        job_id, created = result
    except ApiError as exc:
        metrics.rejections.labels(status=str(exc.status)).inc()
        raise
    if created:
        metrics.submissions.inc()
        state.wake_soon()
        out = job_json(row_view(SqlStore.job_row(item), charged=0))
        if a.notes:
            out["notes"] = list(a.notes)
        return json_response(out, 201)
    v = await run_in_threadpool(store.get_job, job_id)
    assert v is not None
    return json_response(job_json(v), 200)


async def _committed(store: SqlStore, item: Submission) -> tuple[str, bool] | Exception:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[tuple[str, bool] | Exception] = loop.create_future()

    def settle(r: tuple[str, bool] | Exception) -> None:
        if not fut.done():  # the client may have gone away
            fut.set_result(r)

    def done(r: tuple[str, bool] | Exception) -> None:
        loop.call_soon_threadsafe(settle, r)

    store.batcher().put(item, done)
    result = await fut
    if isinstance(result, Exception) and not isinstance(result, ValueError):
        raise result  # the database failed: a 500, and the job was not accepted
    return result


@router.get("/jobs", tags=["jobs"])
def list_jobs(
    request: Request,
    who: Who,
    state: Annotated[list[str] | None, Query()] = None,
    tenant: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[int | None, Query(ge=0, description="from the previous page's next_cursor")] = None,
) -> dict[str, Any]:
    """Jobs newest first, keyset-paginated: pass ``next_cursor`` back as ``cursor``."""
    store = _store(request)
    tenants = visible_tenants(store, who)
    if tenant is not None:
        tenants = [tenant] if tenants is None or tenant in tenants else []
    if state:
        bad = [
            s
            for s in state
            if s not in ("queued", "running", "preempted", "succeeded", "failed", "cancelled")
        ]
        if bad:
            raise ApiError(422, f"unknown state '{bad[0]}'", "state")
    views, nxt = store.list_jobs(tenants=tenants, states=state, before=cursor, limit=limit)
    return {"items": [job_json(v) for v in views], "next_cursor": nxt}


@router.get("/jobs/{job_id}", tags=["jobs"])
def show_job(job_id: str, request: Request, who: Who) -> dict[str, Any]:
    v = _visible_job(request, who, job_id)
    return job_json(v, _store(request).job_events(job_id))


@router.get("/jobs/{job_id}/events", tags=["jobs"])
def job_events(job_id: str, request: Request, who: Who) -> dict[str, Any]:
    _visible_job(request, who, job_id)
    return {"items": [asdict(e) for e in _store(request).job_events(job_id)]}


@router.get("/jobs/{job_id}/logs", tags=["jobs"])
def job_logs(job_id: str, request: Request, who: Who) -> dict[str, Any]:
    _visible_job(request, who, job_id)
    return {"job": job_id, "logs": request.app.state.hooks.logs(job_id)}


@router.post("/jobs/{job_id}/cancel", tags=["jobs"])
def cancel_job(job_id: str, request: Request, who: Who) -> dict[str, Any]:
    v = _visible_job(request, who, job_id)
    who.require("member", "admin")
    store = _store(request)
    was_running = store.cancel(
        v.id, request.app.state.hooks.now(), f"cancelled by {who.token.name or who.role}"
    )
    if was_running:
        request.app.state.hooks.stop_job(v.id)
    request.app.state.hooks.wake()
    out = store.get_job(job_id)
    assert out is not None
    return job_json(out)


class Progress(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    steps: float | None = Field(default=None, ge=0, le=1e15, description="cumulative steps done")
    steps_per_second: float | None = Field(
        default=None, gt=0, le=1e12, description="measured throughput (steps/s)"
    )


@router.post("/jobs/{job_id}/progress", tags=["jobs"])
def report_progress(job_id: str, body: Progress, request: Request, who: Who) -> dict[str, Any]:
    """A running job reports steps (and measured steps/s, which replaces the estimate for its type)."""
    from accelpool.ports import EventKind, ExecutorEvent

    v = _visible_job(request, who, job_id)
    who.require("member", "admin")
    store = _store(request)
    if body.steps is not None:
        store.record_events(
            [ExecutorEvent(v.id, EventKind.PROGRESS, request.app.state.hooks.now(), steps=body.steps)]
        )
    if body.steps_per_second is not None:
        if not v.placement:
            raise ApiError(
                409, "the job is not running, so its throughput cannot be measured", "steps_per_second"
            )
        store.measure(v.id, v.placement["accelerator"], body.steps_per_second)
    return {"job": job_id, "ok": True}


# -- usage --------------------------------------------------------------------------------------------


@router.get("/usage", tags=["usage"])
def usage(
    request: Request,
    who: Who,
    by: Annotated[list[Literal["tenant", "program", "accelerator"]] | None, Query()] = None,
    period: Annotated[Literal["hour", "day", "week", "month", "year"] | None, Query()] = None,
    since: Annotated[float | None, Query(ge=0, le=1e11, allow_inf_nan=False)] = None,
    until: Annotated[float | None, Query(ge=0, le=1e11, allow_inf_nan=False)] = None,
    days: Annotated[
        float | None, Query(gt=0, le=36600, allow_inf_nan=False, description="only the last N days")
    ] = None,
    tenant: str | None = None,
    program: str | None = None,
) -> dict[str, Any]:
    """Device-hours and KRW, like sacct/sreport: grouped by tenant, program, accelerator type, period."""
    store = _store(request)
    if days is not None:
        since = max(since or 0.0, request.app.state.hooks.now() - days * 86400)
    tenants = visible_tenants(store, who)
    programs = visible_programs(store, who) if who.role == "program-manager" else None
    if tenant is not None:
        tenants = [tenant] if tenants is None or tenant in tenants else []
    if program is not None:
        programs = [program] if programs is None or program in programs else []
    rows = store.usage(
        group_by=by or ["tenant", "program", "accelerator"],
        period=period,
        since=since,
        until=until,
        tenants=tenants,
        programs=programs,
    )
    total_krw = sum(r.krw for r in rows)
    return {
        "items": [asdict(r) for r in rows],
        "total_krw": total_krw,
        "total_device_hours": round(sum(r.device_hours for r in rows), 6),
        "periods": PERIODS,
    }


# -- tenants, programs, grants ------------------------------------------------------------------------


# Bounds on numbers from requests (422 beyond them; non-finite numbers are refused everywhere):
MAX_KRW = 10**15  # budgets, grants: a quadrillion KRW, far beyond any program, far inside BIGINT
MAX_PRICE_KRW = 10**9  # KRW per device-hour
MAX_DEVICES = 1_000_000  # per-tenant caps, quotas
MAX_TIME = 1e11  # unix seconds (year ~5138): start/end
MAX_SECONDS = 10 * 366 * 86400.0  # durations (contract length): ten years

Krw = Annotated[int, Field(strict=True, ge=0, le=MAX_KRW, description="integer KRW")]
Time = Annotated[float, Field(ge=0, le=MAX_TIME, allow_inf_nan=False, description="unix seconds")]
Devices = Annotated[int, Field(strict=True, ge=0, le=MAX_DEVICES)]
Price = Annotated[int, Field(strict=True, ge=0, le=MAX_PRICE_KRW)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _known_types(request: Request, types: Any, fld: str, *, star: bool = False) -> None:
    catalog = request.app.state.catalog
    for k in types:
        if not (star and k == "*") and k not in catalog:
            raise ApiError(422, f"unknown accelerator type '{k}'", f"{fld}.{k}")


class TenantIn(_In):
    id: str = Field(pattern=_ID)
    name: str = Field(default="", max_length=200)
    weight: float = Field(default=1.0, gt=0, le=1e6)
    quota: dict[str, Devices] = Field(default_factory=dict)
    public: bool = False


class TenantPatch(_In):
    name: str | None = Field(default=None, max_length=200)
    weight: float | None = Field(default=None, gt=0, le=1e6)
    quota: dict[str, Devices] | None = None
    public: bool | None = None


def _tenant_json(t: Tenant) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "weight": t.weight, "quota": dict(t.quota), "public": t.public}


@router.get("/tenants", tags=["admin"])
def list_tenants(request: Request, who: Who) -> dict[str, Any]:
    store = _store(request)
    vis = visible_tenants(store, who)
    return {"items": [_tenant_json(t) for t in store.list_tenants() if vis is None or t.id in vis]}


@router.post("/tenants", status_code=201, tags=["admin"])
def create_tenant(body: TenantIn, request: Request, who: Who) -> dict[str, Any]:
    """A new tenant (admins). 409 when the id exists: change a tenant with ``PATCH /tenants/{id}``."""
    who.require("admin")
    _known_types(request, body.quota, "quota")
    t = Tenant(body.id, body.name or body.id, body.weight, body.quota, body.public)
    _store(request).create_tenant(t)
    return _tenant_json(t)


@router.patch("/tenants/{tenant_id}", tags=["admin"])
def update_tenant(tenant_id: str, body: TenantPatch, request: Request, who: Who) -> dict[str, Any]:
    """Change a tenant's name, weight, quota or public flag (admins); fields not given stay."""
    who.require("admin")
    if body.quota is not None:
        _known_types(request, body.quota, "quota")
    t = _store(request).update_tenant(
        tenant_id, name=body.name, weight=body.weight, quota=body.quota, public=body.public
    )
    if t is None:
        raise not_found("tenant")
    return _tenant_json(t)


class RulesIn(_In):
    public_share: dict[str, float] = Field(default_factory=dict)
    public_services_domestic_only: bool = False
    tenant_caps: dict[str, Devices] = Field(default_factory=dict)
    max_contract_seconds: float | None = Field(default=None, gt=0, le=MAX_SECONDS)

    def rules(self, request: Request, prefix: str = "") -> ProgramRules:
        _known_types(request, self.public_share, f"{prefix}public_share", star=True)
        _known_types(request, self.tenant_caps, f"{prefix}tenant_caps", star=True)
        for k, v in self.public_share.items():
            if not 0 <= v <= 1:
                raise ApiError(422, "a share is a fraction between 0 and 1", f"{prefix}public_share.{k}")
        return ProgramRules(
            self.public_share, self.public_services_domestic_only, self.tenant_caps, self.max_contract_seconds
        )


class ProgramIn(_In):
    id: str = Field(pattern=_ID)
    name: str = Field(default="", max_length=200)
    budget_krw: Krw
    start: Time = 0.0
    end: Time | None = None
    public: bool = True
    rules: RulesIn = Field(default_factory=RulesIn)


class ProgramPatch(_In):
    name: str | None = Field(default=None, max_length=200)
    budget_krw: Krw | None = Field(default=None, description="never below what the program has granted")
    end: Time | None = None


def _program_json(p: Program, granted: int | None = None) -> dict[str, Any]:
    out = {
        "id": p.id,
        "name": p.name,
        "budget_krw": p.budget_krw,
        "start": p.start,
        "end": p.end,
        "public": p.public,
        "rules": codec.rules_to_dict(p.rules),
    }
    if granted is not None:
        out["granted_krw"] = granted
    return out


@router.get("/programs", tags=["programs"])
def list_programs(request: Request, who: Who) -> dict[str, Any]:
    store = _store(request)
    vis = visible_programs(store, who)
    return {
        "items": [
            _program_json(p, store.granted_total(p.id))
            for p in store.list_programs()
            if vis is None or p.id in vis
        ]
    }


@router.post("/programs", status_code=201, tags=["programs"])
def create_program(body: ProgramIn, request: Request, who: Who) -> dict[str, Any]:
    """A new program (admins). 409 when the id exists: its budget, rules and dates are changed only
    through ``PATCH /programs/{id}`` and ``PUT /programs/{id}/rules``."""
    who.require("admin")
    if body.end is not None and body.end <= body.start:
        raise ApiError(422, "the program must end after it starts", "end")
    p = Program(
        body.id,
        body.name or body.id,
        body.budget_krw,
        body.start,
        body.end,
        body.public,
        body.rules.rules(request, "rules."),
    )
    _store(request).create_program(p)
    return _program_json(p, 0)


def _visible_program(request: Request, who: Who, program_id: str) -> Program:
    store = _store(request)
    vis = visible_programs(store, who)
    found = [p for p in store.list_programs() if p.id == program_id and (vis is None or p.id in vis)]
    if not found:
        raise not_found("program")
    return found[0]


@router.patch("/programs/{program_id}", tags=["programs"])
def update_program(program_id: str, body: ProgramPatch, request: Request, who: Who) -> dict[str, Any]:
    """Change a program's name, budget (409 below what it has already granted) or end (admins)."""
    _visible_program(request, who, program_id)
    who.require("admin")
    store = _store(request)
    p = store.update_program(program_id, name=body.name, budget_krw=body.budget_krw, end=body.end)
    if p is None:
        raise not_found("program")
    return _program_json(p, store.granted_total(p.id))


@router.put("/programs/{program_id}/rules", tags=["programs"])
def set_rules(program_id: str, body: RulesIn, request: Request, who: Who) -> dict[str, Any]:
    _visible_program(request, who, program_id)
    who.require("admin", "program-manager")
    store = _store(request)
    p = store.update_program(program_id, rules=body.rules(request))
    if p is None:
        raise not_found("program")
    return _program_json(p, store.granted_total(p.id))


class GrantIn(_In):
    id: str | None = Field(default=None, pattern=_ID)
    program: str
    tenant: str
    amount_krw: Annotated[int, Field(strict=True, gt=0, le=MAX_KRW, description="integer KRW")]
    start: Time | None = Field(default=None, description="unix seconds; default now")
    end: Time | None = None


class GrantPatch(_In):
    amount_krw: Annotated[int, Field(strict=True, gt=0, le=MAX_KRW)] | None = Field(
        default=None, description="within the program's budget, never below what is spent and held"
    )
    end: Time | None = None


def _grant_json(g: Grant) -> dict[str, Any]:
    return {
        "id": g.id,
        "program": g.program,
        "tenant": g.tenant,
        "amount_krw": g.amount_krw,
        "spent_krw": g.spent_krw,
        "remaining_krw": g.remaining_krw,
        "start": g.start,
        "end": g.end,
    }


@router.get("/grants", tags=["programs"])
def list_grants(request: Request, who: Who) -> dict[str, Any]:
    store = _store(request)
    if who.role == "program-manager":
        grants = store.list_grants(programs=[who.token.program or ""])
    else:
        grants = store.list_grants(tenants=visible_tenants(store, who))
    return {"items": [_grant_json(g) for g in grants]}


@router.post("/grants", status_code=201, tags=["programs"])
def create_grant(body: GrantIn, request: Request, who: Who) -> dict[str, Any]:
    """A program manager grants money from their program. 409 when the id exists (a grant's spending is
    never reset; change it with ``PATCH /grants/{id}``) or the program's budget has too little left: the
    check and the insert are one transaction under the program row's lock."""
    import secrets

    who.require("admin", "program-manager")
    store = _store(request)
    program = _visible_program(request, who, body.program)
    if body.tenant not in {t.id for t in store.list_tenants()}:
        raise ApiError(422, f"no tenant '{body.tenant}'", "tenant")
    now = request.app.state.hooks.now()
    start = now if body.start is None else body.start
    if body.end is not None:
        if body.end <= start:
            raise ApiError(422, "the grant must end after it starts", "end")
        if body.end <= now:
            raise ApiError(422, "the grant would already be over (end is in the past)", "end")
    limit = program.rules.max_contract_seconds
    if limit is not None and body.end is not None and body.end - start > limit:
        raise ApiError(409, f"longer than the program's maximum contract ({limit:.0f} s)", "end")
    g = Grant(
        body.id or "g-" + secrets.token_hex(4), program.id, body.tenant, body.amount_krw, 0, start, body.end
    )
    return _grant_json(store.create_grant(g))


@router.patch("/grants/{grant_id}", tags=["programs"])
def update_grant(grant_id: str, body: GrantPatch, request: Request, who: Who) -> dict[str, Any]:
    """Change a grant's amount (within its program's budget, never below what is spent or held) or its
    end. Only an admin or the manager of the grant's own program; its program and tenant never change."""
    store = _store(request)
    found = [g for g in store.list_grants() if g.id == grant_id]
    if not found:
        raise not_found("grant")
    g = found[0]
    if who.role == "program-manager":
        if who.token.program != g.program:
            raise not_found("grant")
    elif not who.is_admin:
        if who.token.tenant != g.tenant:
            raise not_found("grant")
    who.require("admin", "program-manager")
    if body.end is not None:
        if body.end <= request.app.state.hooks.now():
            raise ApiError(422, "the grant would already be over (end is in the past)", "end")
        limit = _visible_program(request, who, g.program).rules.max_contract_seconds
        if limit is not None and body.end - g.start > limit:
            raise ApiError(409, f"longer than the program's maximum contract ({limit:.0f} s)", "end")
    out = store.update_grant(grant_id, amount_krw=body.amount_krw, end=body.end)
    if out is None:
        raise not_found("grant")
    return _grant_json(out)


# -- pool: nodes and prices ---------------------------------------------------------------------------


class NodeIn(_In):
    name: str = Field(pattern=_ID)
    accelerator: str
    devices: Annotated[int, Field(strict=True, ge=1, le=1024)]
    zone: str = Field(default="default", pattern=_ID)


class NodePatch(_In):
    down: bool | None = None
    devices: Annotated[int, Field(strict=True, ge=1, le=1024)] | None = Field(
        default=None, description="never below the devices running jobs hold (drain first)"
    )
    zone: str | None = Field(default=None, pattern=_ID, description="only while no job runs on the node")


@router.get("/nodes", tags=["pool"])
def list_nodes(request: Request, who: Who) -> dict[str, Any]:
    store = _store(request)
    busy = store.busy_devices()
    return {"items": [{**asdict(n), "busy": busy.get(n.name, 0)} for n in store.list_nodes()]}


@router.post("/nodes", status_code=201, tags=["pool"])
def add_node(body: NodeIn, request: Request, who: Who) -> dict[str, Any]:
    """Add a node (admins). 409 when one of that name exists: change it with ``PUT /nodes/{name}``."""
    who.require("admin")
    catalog = request.app.state.catalog
    if body.accelerator not in catalog:
        raise ApiError(422, f"unknown accelerator type '{body.accelerator}'", "accelerator")
    acc = catalog.resolve(body.accelerator) if hasattr(catalog, "resolve") else body.accelerator
    _store(request).create_node(Node(body.name, acc, body.devices, body.zone))
    request.app.state.hooks.wake()
    return {"name": body.name, "accelerator": acc, "devices": body.devices, "zone": body.zone, "down": False}


@router.put("/nodes/{name}", tags=["pool"])
def set_node(name: str, body: NodePatch, request: Request, who: Who) -> dict[str, Any]:
    """Drain (``down``), resize or move a node (admins); 409 when running jobs hold what would go."""
    who.require("admin")
    n = _store(request).update_node(name, devices=body.devices, zone=body.zone, down=body.down)
    if n is None:
        raise not_found("node")
    request.app.state.hooks.wake()
    return {
        "name": n.name,
        "accelerator": n.accelerator,
        "devices": n.devices,
        "zone": n.zone,
        "down": n.down,
    }


@router.get("/prices", tags=["pool"])
def get_prices(request: Request, who: Who) -> dict[str, Any]:
    return {"krw_per_device_hour": dict(sorted(_store(request).prices().items()))}


@router.put("/prices", tags=["pool"])
def put_prices(body: dict[str, Price], request: Request, who: Who) -> dict[str, Any]:
    """Set KRW per device-hour for the types given (JSON integers, 0 .. 10^9)."""
    who.require("admin")
    catalog = request.app.state.catalog
    for k in body:
        if k not in catalog:
            raise ApiError(422, f"unknown accelerator type '{k}'", k)
    store = _store(request)
    store.set_prices(body)
    return {"krw_per_device_hour": dict(sorted(store.prices().items()))}


# -- tokens -------------------------------------------------------------------------------------------


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["admin", "program-manager", "member"]
    name: str = ""
    tenant: str | None = None
    program: str | None = None


def _token_json(t: Any) -> dict[str, Any]:
    return asdict(t)


@router.get("/whoami", tags=["tokens"])
def whoami(who: Who) -> dict[str, Any]:
    return _token_json(who.token)


@router.get("/tokens", tags=["tokens"])
def list_tokens(request: Request, who: Who) -> dict[str, Any]:
    store = _store(request)
    if who.is_admin:
        return {"items": [_token_json(t) for t in store.list_tokens()]}
    return {"items": [_token_json(who.token)]}


@router.post("/tokens", status_code=201, tags=["tokens"])
def create_token(body: TokenIn, request: Request, who: Who) -> dict[str, Any]:
    """A new token; its secret is in the answer once and never again (only a hash is stored)."""
    who.require("admin")
    store = _store(request)
    if body.role == "member":
        if body.tenant is None:
            raise ApiError(422, "a member token needs a tenant", "tenant")
        if body.tenant not in {t.id for t in store.list_tenants()}:
            raise ApiError(422, f"no tenant '{body.tenant}'", "tenant")
    if body.role == "program-manager":
        if body.program is None:
            raise ApiError(422, "a program-manager token needs a program", "program")
        if body.program not in {p.id for p in store.list_programs()}:
            raise ApiError(422, f"no program '{body.program}'", "program")
    assert body.role in ROLES
    view, secret = store.create_token(body.role, name=body.name, tenant=body.tenant, program=body.program)
    return {**_token_json(view), "secret": secret}


@router.delete("/tokens/{token_id}", tags=["tokens"])
def revoke_token(token_id: str, request: Request, who: Who) -> dict[str, Any]:
    if not who.is_admin and token_id != who.token.id:
        raise not_found("token")
    if not _store(request).revoke_token(token_id):
        raise not_found("token")
    request.app.state.tokens.forget()
    return {"id": token_id, "revoked": True}
