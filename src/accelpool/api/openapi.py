"""The OpenAPI document says what the API really answers: a response model for every success, the real
error body for every error status each route can return, and the bearer security scheme.

The routes return plain dicts (serialised with orjson, no per-request model validation); the models below
document them, and ``tests/torture`` checks with schemathesis that every answer conforms. A route added
without an entry in ``ROUTES`` fails ``tests/api/test_openapi.py``.

Error statuses (body ``ErrorBody``) common to every route under /api/v1: 401 (no or unknown token), 414 (a
path too long) and 422 (a query or path that is not UTF-8 or holds NUL, see api/limits.py, or invalid
parameters). Routes with a body add 413 (body over the limit). Each route's own statuses are in ``ROUTES``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

# -- the models -------------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    status: int = Field(description="the HTTP status, repeated")
    field: str | None = Field(description="the field at fault, as the caller wrote it (e.g. resources.count)")
    reason: str


class ErrorBody(BaseModel):
    """Every error answer (4xx, and 5xx from the server itself)."""

    error: ErrorDetail


JobState = Literal["queued", "running", "preempted", "succeeded", "failed", "cancelled"]


class PlacementOut(BaseModel):
    accelerator: str
    devices: list[tuple[str, list[int]]] = Field(description="[node, [device indices]] per node")


class JobEventOut(BaseModel):
    time: float
    state: str
    reason: str


class QueueOut(BaseModel):
    """A queued job's place in the fair order the scheduler hands idle devices out in."""

    position: int = Field(description="place in the pool's queue (1: next)")
    of: int = Field(description="jobs in the pool's queue (blocked jobs are not counted)")
    tenant_position: int = Field(description="place among its tenant's queued jobs")
    tenant_of: int = Field(description="its tenant's queued jobs")


class StartEstimateOut(BaseModel):
    """When a queued job may start (epoch seconds), like ``squeue --start``: ``latest`` if every running
    job and every job ahead runs to its max_run_time, ``earliest`` if preemptible ones also yield at their
    first lease boundary past their minimum run; null: unknown (devices it needs are held with no bound)."""

    earliest: float | None
    latest: float | None


class RunOut(BaseModel):
    number: int = Field(description="1 for the job's first run, then one more per restart")
    start: float
    end: float | None = Field(description="null while it runs")
    accelerator: str | None = Field(description="the type it ran on (null before its first charge)")
    site: str | None
    device_seconds: float = Field(description="devices x seconds charged for the run")
    charged_krw: int
    ended_by: str | None = Field(description="the event that ended the run (null while it runs)")


class JobOut(BaseModel):
    id: str
    name: str
    tenant: str
    state: JobState
    reason: str
    position: int | None = Field(description="place in the queue of a waiting job")
    queue: QueueOut | None = Field(
        default=None,
        description="a queued job's place in the pool and in its tenant (null: not queued, blocked)",
    )
    start_estimate: StartEstimateOut | None = Field(
        default=None, description="a queued job's estimated start range (null: not queued, blocked)"
    )
    kind: str | None
    count: int | None = Field(description="devices, all started together")
    types: list[str] | None = Field(description="accelerator types the job may run on")
    grant: str | None
    priority: int | None
    faster_type: str = Field(
        default="cost-neutral",
        description="may the pool run it on a type faster than the scheduler chose: cost-neutral, any, never",
    )
    placement: PlacementOut | None
    steps_done: float
    total_steps: float | None
    submit_time: float
    start_time: float | None
    end_time: float | None
    preemptions: int
    attempts: int
    reserved_krw: int = Field(description="KRW held on the grant for the job's worst case")
    command: str | None
    charged_krw: int | None = Field(default=None, description="KRW charged so far")
    notes: list[str] | None = Field(default=None, description="at submission: what admission changed")
    events: list[JobEventOut] | None = Field(default=None, description="in GET /jobs/{id} only")
    runs: list[RunOut] | None = Field(
        default=None, description="in GET /jobs/{id} only: each run's type, site, device-seconds and cost"
    )


class JobList(BaseModel):
    items: list[JobOut]
    next_cursor: int | None = Field(description="pass back as ?cursor= for the next page; null at the end")


class JobEventList(BaseModel):
    items: list[JobEventOut]


class JobLogs(BaseModel):
    job: str
    logs: str = Field(description="one page of the output (at most ?limit characters)")
    offset: int = Field(description="where this page starts (characters)")
    next_offset: int | None = Field(description="pass back as ?offset= for the next page; null at the end")
    size: int = Field(description="characters of output there are now")


class ProgressAck(BaseModel):
    job: str
    ok: bool


class NodeOut(BaseModel):
    name: str
    accelerator: str
    devices: int
    zone: str
    down: bool
    labels: list[list[str]] | None = None
    busy: int | None = Field(default=None, description="devices running jobs hold (in listings)")
    site: str | None = None
    notes: list[str] | None = Field(default=None, description="on adding: e.g. the type has no price")


class NodeList(BaseModel):
    items: list[NodeOut]


class Prices(BaseModel):
    krw_per_device_hour: dict[str, int]


class RulesOut(BaseModel):
    public_share: dict[str, float]
    public_services_domestic_only: bool
    tenant_caps: dict[str, int]
    max_contract_seconds: float | None


class ProgramOut(BaseModel):
    id: str
    name: str
    budget_krw: int
    start: float
    end: float | None
    public: bool
    rules: RulesOut
    granted_krw: int | None = None


class ProgramList(BaseModel):
    items: list[ProgramOut]


class GrantOut(BaseModel):
    id: str
    program: str
    tenant: str
    amount_krw: int
    spent_krw: int
    remaining_krw: int
    held_krw: int = Field(description="KRW its active jobs hold: a lease each, or a whole run")
    available_krw: int = Field(description="what a new job may still use; 0 outside its period")
    state: str = Field(description="active, ended or not started (its period or its program's)")
    closed: str | None = Field(description="why it pays for nothing now, in words; null when active")
    start: float
    end: float | None


class GrantList(BaseModel):
    items: list[GrantOut]


class TenantOut(BaseModel):
    id: str
    name: str
    weight: float
    quota: dict[str, int]
    public: bool


class TenantList(BaseModel):
    items: list[TenantOut]


class TokenOut(BaseModel):
    id: str
    name: str
    role: Literal["admin", "operator", "program-manager", "member"]
    tenant: str | None
    program: str | None
    created: float
    revoked: bool
    expires: float | None = Field(default=None, description="epoch seconds after which it is refused")


class TokenCreated(TokenOut):
    secret: str = Field(description="shown once, never again")


class TokenRotated(TokenCreated):
    replaces: str = Field(description="the token this one replaces (refused after the grace period)")


class TokenList(BaseModel):
    items: list[TokenOut]


class TokenRevoked(BaseModel):
    id: str
    revoked: bool


class NodeRemoved(BaseModel):
    name: str
    removed: bool


class UsageRowOut(BaseModel):
    tenant: str | None
    program: str | None
    accelerator: str | None
    period: str | None
    jobs: int
    device_hours: float
    krw: int
    site: str | None = None


class UsageOut(BaseModel):
    items: list[UsageRowOut]
    total_krw: int
    total_device_hours: float
    periods: list[str]


class SiteHoldOut(BaseModel):
    by: str
    at: float | None
    reason: str


class SiteOut(BaseModel):
    id: str
    operator: str
    region: str
    data_classes: list[str]
    executor: str
    connection: dict[str, Any] | None = Field(
        default=None, description="how its executor is reached (admins only: absent for others)"
    )
    prices: dict[str, int]
    down: bool
    down_by_hand: SiteHoldOut | None = None


class SiteList(BaseModel):
    items: list[SiteOut]


class Health(BaseModel):
    status: Literal["ok"]


MODELS: tuple[type[BaseModel], ...] = (
    ErrorBody,
    JobOut,
    JobList,
    JobEventList,
    JobLogs,
    ProgressAck,
    NodeOut,
    NodeList,
    Prices,
    ProgramOut,
    ProgramList,
    GrantOut,
    GrantList,
    TenantOut,
    TenantList,
    TokenOut,
    TokenCreated,
    TokenRotated,
    TokenList,
    TokenRevoked,
    NodeRemoved,
    UsageOut,
    SiteOut,
    SiteList,
    Health,
)

# -- what each route answers: {status: model name}, and its own error statuses ------------------------------

_W = (403,)  # a role that may not do this
_NF = (404,)  # an object that does not exist or is not visible (identical answers)
ROUTES: dict[tuple[str, str], tuple[dict[int, str], tuple[int, ...]]] = {
    ("post", "/api/v1/jobs"): ({201: "JobOut", 200: "JobOut"}, _W + _NF + (409, 429)),  # 429: max active jobs
    ("get", "/api/v1/jobs"): ({200: "JobList"}, _NF),  # a tenant filter the caller cannot see
    ("get", "/api/v1/jobs/{job_id}"): ({200: "JobOut"}, _NF),
    ("get", "/api/v1/jobs/{job_id}/events"): ({200: "JobEventList"}, _NF),
    ("get", "/api/v1/jobs/{job_id}/logs"): ({200: "JobLogs"}, _W + _NF),  # 403: a program manager
    ("post", "/api/v1/jobs/{job_id}/cancel"): ({200: "JobOut"}, _W + _NF + (409,)),
    ("post", "/api/v1/jobs/{job_id}/progress"): ({200: "ProgressAck"}, _W + _NF + (409,)),
    ("get", "/api/v1/usage"): ({200: "UsageOut"}, _NF),  # a tenant or program filter the caller cannot see
    ("get", "/api/v1/tenants"): ({200: "TenantList"}, ()),
    ("post", "/api/v1/tenants"): ({201: "TenantOut"}, _W + (409,)),
    ("patch", "/api/v1/tenants/{tenant_id}"): ({200: "TenantOut"}, _W + _NF + (409,)),
    ("get", "/api/v1/programs"): ({200: "ProgramList"}, ()),
    ("post", "/api/v1/programs"): ({201: "ProgramOut"}, _W + (409,)),
    ("patch", "/api/v1/programs/{program_id}"): ({200: "ProgramOut"}, _W + _NF + (409,)),
    ("put", "/api/v1/programs/{program_id}/rules"): ({200: "ProgramOut"}, _W + _NF + (409,)),
    ("get", "/api/v1/grants"): ({200: "GrantList"}, ()),
    ("post", "/api/v1/grants"): ({201: "GrantOut"}, _W + _NF + (409,)),
    ("patch", "/api/v1/grants/{grant_id}"): ({200: "GrantOut"}, _W + _NF + (409,)),
    ("get", "/api/v1/nodes"): ({200: "NodeList"}, ()),
    ("post", "/api/v1/nodes"): ({201: "NodeOut"}, _W + (409,)),
    ("put", "/api/v1/nodes/{name}"): ({200: "NodeOut"}, _W + _NF + (409,)),
    ("delete", "/api/v1/nodes/{name}"): ({200: "NodeRemoved"}, _W + _NF + (409,)),
    ("get", "/api/v1/prices"): ({200: "Prices"}, ()),
    ("put", "/api/v1/prices"): ({200: "Prices"}, _W),
    ("get", "/api/v1/whoami"): ({200: "TokenOut"}, ()),
    ("get", "/api/v1/tokens"): ({200: "TokenList"}, ()),
    ("post", "/api/v1/tokens"): ({201: "TokenCreated"}, _W + (409,)),
    ("delete", "/api/v1/tokens/{token_id}"): ({200: "TokenRevoked"}, _NF),
    ("post", "/api/v1/tokens/{token_id}/rotate"): ({200: "TokenRotated"}, _NF),
    ("get", "/api/v1/sites"): ({200: "SiteList"}, ()),
    ("post", "/api/v1/sites"): ({201: "SiteOut"}, _W + (409,)),
    ("put", "/api/v1/sites/{site_id}"): ({200: "SiteOut"}, _W + _NF + (409,)),
    ("get", "/healthz"): ({200: "Health"}, ()),
    ("get", "/metrics"): ({200: ""}, ()),
}

_REASONS = {
    200: "OK",
    201: "Created",
    401: "No bearer token, or an unknown or revoked one",
    403: "The token's role may not do this",
    404: "No such object, or not visible to the caller (the same answer)",
    409: "Conflicts with the current state (exists already, over a budget, a running job holds it...)",
    413: "The body is larger than the limit (1 MiB)",
    414: "The path is too long",
    422: "Invalid input: the error names the field",
    429: "The tenant has as many active jobs as a tenant may have (the operator's --max-active-jobs)",
    500: "The server failed; the request was not applied",
    503: "The database cannot take the request now (its disk full, a lock held too long, its server gone); "
    "nothing was applied: send it again after Retry-After seconds",
}
_BODY_METHODS = ("post", "put", "patch")


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(status: int) -> dict[str, Any]:
    return {"description": _REASONS[status], "content": {"application/json": {"schema": _ref("ErrorBody")}}}


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite FastAPI's generated document in place: response models, error statuses, bearer scheme."""
    _, defs = models_json_schema(
        [(m, "serialization") for m in MODELS], ref_template="#/components/schemas/{model}"
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for gone in ("HTTPValidationError", "ValidationError"):
        schemas.pop(gone, None)
    schemas.update(defs.get("$defs", {}))
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "an API token: `Authorization: Bearer <token>` (accelpool tokens create)",
        }
    }
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            entry = ROUTES.get((method, path))
            if entry is None:
                continue
            ok, own = entry
            responses: dict[str, Any] = {}
            for status, model in sorted(ok.items()):
                if model:
                    content = {"application/json": {"schema": _ref(model)}}
                else:
                    content = {"text/plain": {"schema": {"type": "string"}}}
                responses[str(status)] = {"description": _REASONS[status], "content": content}
            errors = set(own) | {414, 422}
            if path.startswith("/api/v1/"):
                errors |= {401, 503}
                op["security"] = [{"bearer": []}]
            if method in _BODY_METHODS:
                errors.add(413)
            if path == "/healthz":
                errors.add(500)
            for status in sorted(errors):
                responses[str(status)] = _error(status)
            op["responses"] = responses
    return schema


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the documented schema (built once, then cached like FastAPI's)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
