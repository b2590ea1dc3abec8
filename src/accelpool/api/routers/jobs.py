"""Jobs: submit, list, show, events, logs, cancel, progress."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from accelpool.api.admission import Admitted, NeedsHistory, admit
from accelpool.api.auth import Principal, one_visible, principal, visible_grants, visible_tenants
from accelpool.api.errors import ApiError, json_response, not_found
from accelpool.api.limits import JSON_SCOPE_KEY, NOT_JSON, known_query_only
from accelpool.api.routers.common import Who, store_of
from accelpool.core.errors import Conflict, InsufficientFunds, MissingReference, TooManyJobs
from accelpool.ports import EventKind, ExecutorEvent
from accelpool.spec.job import JobSpec
from accelpool.storage.dashboard import attempts, job_charges
from accelpool.storage.sql import SqlStore
from accelpool.storage.submissions import Submission
from accelpool.storage.views import JobView, row_view

router = APIRouter()
IDEMPOTENCY_KEY_MAX = 200


CONTENTS_HIDDEN = (
    "a program manager sees the jobs charged to its program for their use and cost, not their command or "
    "output (the tenant's)"
)


def job_json(v: JobView, events: list[Any] | None = None, *, contents: bool = True) -> dict[str, Any]:
    """``contents``: the command line shown (Principal.sees_contents); else null."""
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
        "faster_type": s.get("faster_type", "cost-neutral"),
        "placement": v.placement,
        "steps_done": v.steps_done,
        "total_steps": s.get("total_steps"),
        "submit_time": v.submit_time,
        "start_time": v.start_time,
        "end_time": v.end_time,
        "preemptions": v.preemptions,
        "attempts": v.attempts,
        "reserved_krw": v.reserved_krw,
        "command": v.run.get("command") if contents else None,
    }
    q = v.queue
    out["queue"] = (
        None
        if q is None
        else {
            "position": q.position,
            "of": q.of,
            "tenant_position": q.tenant_position,
            "tenant_of": q.tenant_of,
        }
    )
    out["start_estimate"] = None if q is None else {"earliest": q.earliest, "latest": q.latest}
    if v.charged_krw is not None:
        out["charged_krw"] = v.charged_krw
    if events is not None:
        out["events"] = [asdict(e) for e in events]
    return out


def _visible_job(request: Request, who: Principal, job_id: str) -> JobView:
    store = store_of(request)
    v = store.get_job(job_id, visible_tenants(store, who))
    if v is None or (who.job is not None and v.id != who.job):
        raise not_found("job")
    grants = visible_grants(store, who)
    if grants is not None and v.spec.get("grant") not in grants:
        raise not_found("job")
    return v


async def submit_job(
    spec: JobSpec,
    request: Request,
    who: Who,
    idempotency_key: Annotated[str | None, Header(max_length=IDEMPOTENCY_KEY_MAX)] = None,
    tenant: Annotated[str | None, Query(description="admins: the tenant to submit for")] = None,
) -> Response:
    """Queue a job (201). A job that could never run is refused with the reason. Retrying with the same
    ``Idempotency-Key`` returns the first job (200) instead of a second one.

    Runs on the event loop: admission reads only cached reference data, and the write goes to the store's
    group-commit writer; the answer is sent once the transaction holding the job has committed."""
    who.require("member", "admin")
    if spec.priority > 0 and not who.is_admin:
        # the field orders jobs across tenants, before fair share: a member's 1000 jumped every other
        # tenant's queue (a review); a member orders its own jobs below the default
        raise ApiError(
            403,
            f"priority {spec.priority}: a priority above 0 puts a job before other tenants' jobs and is set "
            "by an admin; a member may lower its own jobs' (-1000 .. 0)",
            "priority",
        )
    store = store_of(request)
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
        a = await _admitted(store, spec, tenant, state, idempotency_key)
        item = Submission(a.job, a.throughput, a.run, spec.name, idempotency_key, a.reserve_krw)
        result = await _committed(store, item)
        if isinstance(result, Conflict):
            raise _submit_conflict(result)
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
    differ = _replay_differs(SqlStore.job_row(item), v)
    if spec.grant is not None and item.job.grant != v.spec.get("grant"):
        differ.append("grant")
    elif spec.program is not None:
        # off the event loop, as every store read of this route (a retry's replay only)
        of_program = await run_in_threadpool(store.list_grants, tenants=[tenant], programs=[spec.program])
        if v.spec.get("grant") not in {g.id for g in of_program}:
            differ.append("program")
    if differ:
        metrics.rejections.labels(status="409").inc()
        raise ApiError(
            409,
            f"Idempotency-Key '{idempotency_key}' was used for job {v.id} ('{v.name}') with another spec "
            f"({', '.join(differ)} differ): a retry must send the same job; a new job needs a new key",
            "Idempotency-Key",
        )
    return json_response(job_json(v), 200)


async def _admitted(store: SqlStore, spec: JobSpec, tenant: str, state: Any, key: str | None) -> Admitted:
    """``admit``, reading the tenant's history off the event loop where the choice of program needs it. A
    submission refused whose ``Idempotency-Key`` already made a job is admitted again on that job's grant:
    a retry of an accepted request is answered with its job (compared as any retry) even where what the
    service knows changed since (a grant from another program, a new job that named one)."""
    now, catalog = state.hooks.now(), state.catalog
    try:
        try:
            return admit(store, spec, tenant, now, catalog)
        except NeedsHistory as need:
            used = await run_in_threadpool(store.grants_used, tenant, need.grants)
            return admit(store, spec, tenant, now, catalog, used=used)
    except ApiError as refused:
        if key is None:
            raise
        first = await run_in_threadpool(store.job_by_key, tenant, key)
        grant = None if first is None else first.spec.get("grant")
        if grant is None or grant == spec.grant:
            raise
        pinned = spec.model_copy(update={"grant": grant, "program": None})
        try:
            return admit(store, pinned, tenant, now, catalog)
        except ApiError:
            raise refused from None


_REPLAY_SKIP = frozenset({"id", "submit_time", "grant"})
"""Job fields a retry of the same request may see change: its id and time, and the grant chosen for it
(compared by ``submit_job`` when the spec names the grant or its program). ``allowed`` (the types asked for,
less any the pool cannot train on) is compared: a retry comes seconds later, and a pool that lost a type
meanwhile answers 409 rather than hand back a job of other types (a review found another type under the same
key answered 200)."""


def _replay_differs(new: dict[str, Any], old: Any) -> list[str]:
    """What differs between a submission and the job its Idempotency-Key already made (job fields, the
    run spec, the name), leaving out what a retry of the very same request may see change."""
    out = ["name"] if new["name"] != old.name else []
    spec, was = new["spec"], old.spec
    out += sorted(k for k in spec if k not in _REPLAY_SKIP and spec[k] != was.get(k))
    out += sorted(f"run.{k}" for k in new["run"] if new["run"][k] != old.run.get(k))
    return out


async def _submit_fast(request: Request) -> Response:
    """``POST /jobs`` as FastAPI would answer it from ``submit_job``'s signature (which documents the
    route), without its per-request dependency solving (about a third of a submission's CPU): the same
    steps in the same order, the same errors. JSON body (a decode error is 422 at its position; a body
    without a JSON content type is not parsed), the router's query check, the caller's token, then the
    header, query and body errors together (the first one answered)."""
    raw = await request.body()
    body: Any = raw
    if raw:
        ctype = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        main, _, sub = ctype.partition("/")
        if main == "application" and (sub == "json" or sub.endswith("+json")):
            parsed = request.scope.get(JSON_SCOPE_KEY, NOT_JSON)  # RequestLimits parsed it already
            try:
                body = json.loads(raw) if parsed is NOT_JSON else parsed
            except (
                ValueError
            ) as e:  # a decode error, or one Python will not read (RequestLimits refuses those)
                raise RequestValidationError(
                    [
                        {
                            "type": "json_invalid",
                            "loc": ("body", getattr(e, "pos", 0)),
                            "msg": "JSON decode error",
                            "input": {},
                            "ctx": {"error": getattr(e, "msg", str(e))},
                        }
                    ]
                ) from e
    await known_query_only(request)
    who = await principal(request)
    errors: list[Any] = []
    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        errors.append(
            {
                "type": "string_too_long",
                "loc": ("header", "idempotency-key"),
                "msg": f"String should have at most {IDEMPOTENCY_KEY_MAX} characters",
                "input": key,
                "ctx": {"max_length": IDEMPOTENCY_KEY_MAX},
            }
        )
    spec: JobSpec | None = None
    if not raw:
        errors.append({"type": "missing", "loc": ("body",), "msg": "Field required", "input": None})
    else:
        try:
            spec = JobSpec.model_validate(body, from_attributes=True)  # as FastAPI validates bodies
        except ValidationError as e:
            errors.extend({**err, "loc": ("body", *err["loc"])} for err in e.errors())
    if errors or spec is None:
        raise RequestValidationError(errors)
    return await submit_job(spec, request, who, key, request.query_params.get("tenant"))


class _SubmitRoute(APIRoute):
    """Documented from ``submit_job``'s signature; answered by ``_submit_fast``."""

    def get_route_handler(self) -> Any:
        return _submit_fast


router.add_api_route(
    "/jobs",
    submit_job,
    methods=["POST"],
    status_code=201,
    tags=["jobs"],
    route_class_override=_SubmitRoute,
)
SUBMIT_ROUTE = router.routes[-1]


def submit_route() -> tuple[Any, Any]:
    """What answers ``POST /jobs`` and the route that documents it (``api.fastpath.FastRoutes`` calls the
    handler directly)."""
    return _submit_fast, SUBMIT_ROUTE


def _submit_conflict(exc: Conflict) -> ApiError:
    """The store's refusals, by type: the grant cannot hold the job's worst-case cost (set by its
    ``max_run_time``) beside its other active jobs (checked under the grant's row lock), its grant is gone,
    or the id clashes; the tenant has as many active jobs as it may (429)."""
    if isinstance(exc, TooManyJobs):
        return ApiError(429, exc.message, "tenant")
    if isinstance(exc, InsufficientFunds):
        return ApiError(409, exc.message, "max_run_time")
    if isinstance(exc, MissingReference):
        return ApiError(409, exc.message, exc.field or "grant")
    return ApiError(409, exc.message, exc.field or "id")


async def _committed(store: SqlStore, item: Submission) -> tuple[str, bool] | Conflict:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[tuple[str, bool] | BaseException] = loop.create_future()

    def settle(r: tuple[str, bool] | BaseException) -> None:
        if not fut.done():  # the client may have gone away
            fut.set_result(r)

    def done(r: tuple[str, bool] | BaseException) -> None:
        loop.call_soon_threadsafe(settle, r)

    store.batcher().put(item, done)
    result = await fut
    if isinstance(result, BaseException) and not isinstance(result, Conflict):
        raise result  # the database failed: a 500, and the job was not accepted
    return result


@router.get("/jobs", tags=["jobs"])
def list_jobs(
    request: Request,
    who: Who,
    state: Annotated[list[str] | None, Query()] = None,
    tenant: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="from the previous page's next_cursor")
    ] = None,
) -> dict[str, Any]:
    """Jobs newest first, keyset-paginated: pass ``next_cursor`` back as ``cursor``."""
    store = store_of(request)
    tenants = visible_tenants(store, who)
    if tenant is not None:
        tenants = one_visible(tenants, lambda: {t.id for t in store.list_tenants()}, tenant, "tenant")
    if state:
        bad = [
            s
            for s in state
            if s not in ("queued", "running", "preempted", "succeeded", "failed", "cancelled")
        ]
        if bad:
            raise ApiError(422, f"unknown state '{bad[0]}'", "state")
    views, nxt = store.list_jobs(
        tenants=tenants, states=state, before=cursor, limit=limit, grants=visible_grants(store, who)
    )
    return {"items": [job_json(v, contents=who.sees_contents) for v in views], "next_cursor": nxt}


@router.get("/jobs/{job_id}", tags=["jobs"])
def show_job(job_id: str, request: Request, who: Who) -> dict[str, Any]:
    v = _visible_job(request, who, job_id)
    store = store_of(request)
    events = store.job_events(job_id)
    out = job_json(v, events, contents=who.sees_contents)
    # where each run went and what it cost: a finished job has no placement left (it holds no devices)
    out["runs"] = [
        {
            "number": a.number,
            "start": a.start,
            "end": a.end,
            "accelerator": a.accelerator or None,
            "site": a.site or None,
            "device_seconds": a.device_seconds,
            "charged_krw": a.krw,
            "ended_by": a.ended_by or None,
        }
        for a in attempts(events, job_charges(store, job_id))
    ]
    return out


@router.get("/jobs/{job_id}/events", tags=["jobs"])
def job_events(job_id: str, request: Request, who: Who) -> dict[str, Any]:
    _visible_job(request, who, job_id)
    return {"items": [asdict(e) for e in store_of(request).job_events(job_id)]}


MAX_LOG_PAGE = 1024 * 1024  # characters of log per response: larger logs are read in pages


@router.get("/jobs/{job_id}/logs", tags=["jobs"])
def job_logs(
    job_id: str,
    request: Request,
    who: Who,
    offset: Annotated[int, Query(ge=0, le=2**62, description="first character to return")] = 0,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LOG_PAGE, description="at most this many characters")
    ] = MAX_LOG_PAGE,
) -> dict[str, Any]:
    """One page of the job's output (each rank's head and tail, bounded by the executor; docs/security.md).
    ``next_offset`` is where the next page starts, null at the end of what is there now."""
    v = _visible_job(request, who, job_id)
    if not who.sees_contents:
        raise ApiError(403, CONTENTS_HIDDEN, "token")
    # a job never started has no output: not asked of the scheduler, where a job at another site costs the
    # API a thread for up to 3 s (service/channel.py), which many requests for queued jobs would tie up
    text = request.app.state.hooks.logs(job_id) if v.attempts or v.start_time is not None else ""
    page = text[offset : offset + limit]
    end = offset + len(page)
    return {
        "job": job_id,
        "logs": page,
        "offset": offset,
        "next_offset": end if end < len(text) else None,
        "size": len(text),
    }


@router.post("/jobs/{job_id}/cancel", tags=["jobs"])
def cancel_job(job_id: str, request: Request, who: Who) -> dict[str, Any]:
    v = _visible_job(request, who, job_id)
    who.require("member", "admin")
    store = store_of(request)
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
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)
    steps: float | None = Field(default=None, ge=0, le=1e15, description="cumulative steps done")
    steps_per_second: float | None = Field(
        default=None, gt=0, le=1e12, description="measured throughput (steps/s)"
    )


@router.post("/jobs/{job_id}/progress", tags=["jobs"])
def report_progress(job_id: str, body: Progress, request: Request, who: Who) -> dict[str, Any]:
    """A running job reports steps (and measured steps/s, which replaces the estimate for its type). 409
    once the job has ended (succeeded, failed, cancelled): nothing would change."""
    v = _visible_job(request, who, job_id)
    who.require("member", "admin")
    if v.state.terminal:
        raise ApiError(409, f"the job has ended ({v.state.value}): its progress is no longer recorded")
    store = store_of(request)
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
