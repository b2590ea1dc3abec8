"""Sites: the operators' clusters of the pool (where, which data they may hold, how driven, their prices)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field

from accelpool.api.auth import Principal
from accelpool.api.errors import ApiError, not_found
from accelpool.api.routers.common import ID_PATTERN, Price, StrictIn, Who, store_of
from accelpool.core.sites import connection_problem, second_ray_site
from accelpool.core.types import Site

router = APIRouter()

DataClass = Literal["public", "personal", "financial", "public-sector"]
Text = Annotated[str, Field(max_length=200)]


def _public_only() -> list[DataClass]:
    return ["public"]


class SiteIn(StrictIn):
    id: str = Field(pattern=ID_PATTERN)
    operator: Text = ""
    region: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$")
    data_classes: list[DataClass] = Field(default_factory=_public_only, min_length=1, max_length=4)
    executor: Literal["local", "ray", "slurm", "fake"] = "local"
    connection: dict[Annotated[str, Field(max_length=64)], Text] = Field(default_factory=dict, max_length=32)
    prices: dict[Annotated[str, Field(max_length=64)], Price] = Field(default_factory=dict, max_length=64)


class SitePatch(StrictIn):
    operator: Text | None = None
    region: str | None = Field(default=None, pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$")
    data_classes: list[DataClass] | None = Field(default=None, min_length=1, max_length=4)
    executor: Literal["local", "ray", "slurm", "fake"] | None = None
    connection: dict[Annotated[str, Field(max_length=64)], Text] | None = Field(default=None, max_length=32)
    prices: dict[Annotated[str, Field(max_length=64)], Price] | None = Field(default=None, max_length=64)
    down: bool | None = None
    reason: Annotated[str, Field(max_length=500)] | None = None  # why it is taken out (with down: true)


def site_out(s: Site, *, connection: bool = True) -> dict[str, Any]:
    """A site as the API shows it; ``connection`` (Ray addresses, state directories, Slurm config paths:
    the operator's, of no use to a tenant) only to admins."""
    out = {
        "id": s.id,
        "operator": s.operator,
        "region": s.region,
        "data_classes": sorted(s.data_classes),
        "executor": s.executor,
        "connection": dict(s.connection),
        "prices": dict(sorted(s.prices.items())),
        "down": s.down,
        # taken out by an operator (stays down until an operator brings it up): who, when, why; else null
        "down_by_hand": {"by": s.down_by, "at": s.down_at, "reason": s.down_reason} if s.held else None,
    }
    if not connection:
        del out["connection"]
    return out


def _check_prices(request: Request, prices: dict[str, int] | None) -> dict[str, int] | None:
    if prices is None:
        return None
    catalog = request.app.state.catalog
    out = {}
    for k, v in prices.items():
        if k not in catalog:
            raise ApiError(422, f"unknown accelerator type '{k}'", f"prices.{k}")
        out[catalog.resolve(k) if hasattr(catalog, "resolve") else k] = v
    return out


def _check_connection(executor: str, connection: dict[str, str] | Any) -> None:
    problem = connection_problem(executor, connection)
    if problem is not None:
        raise ApiError(422, problem, "connection")


def _check_one_ray(request: Request, site_id: str, executor: str) -> None:
    problem = second_ray_site(site_id, executor, store_of(request).sites())
    if problem is not None:
        raise ApiError(409, problem, "executor")


@router.get("/sites", tags=["pool"])
def list_sites(request: Request, who: Who) -> dict[str, Any]:
    """The pool's sites; a site's ``connection`` only for admins."""
    return {"items": [site_out(s, connection=who.runs_pool) for s in store_of(request).sites()]}


ADMIN_SITE_FIELDS = ("executor", "connection", "data_classes")
"""What only an admin sets on a site: where its jobs run and what reaches them (the executor and its
connection: a Ray address, Slurm's commands and config, the dir the logs go to) and which data it is
certified to hold. An operator's site was a way to every job's command, environment and log (a review)."""


def _admin_only(who: Principal, given: Mapping[str, Any]) -> None:
    """403 for an operator setting a field of ``ADMIN_SITE_FIELDS``."""
    if who.is_admin:
        return
    for name in ADMIN_SITE_FIELDS:
        if name in given:
            raise ApiError(
                403,
                f"role '{who.role}' may not set a site's {name} (an admin does: it decides where jobs "
                "and their data go)",
                name,
            )


@router.post("/sites", status_code=201, tags=["pool"])
def add_site(body: SiteIn, request: Request, who: Who) -> dict[str, Any]:
    """Register a site (admins; operators without executor, connection or data classes). 409 when one of
    that id exists: change it with ``PUT /sites/{id}``."""
    who.require("admin", "operator")
    _admin_only(who, body.model_dump(exclude_defaults=True))
    _check_connection(body.executor, body.connection)
    _check_one_ray(request, body.id, body.executor)
    site = Site(
        body.id,
        body.operator,
        body.region,
        frozenset(body.data_classes),
        body.executor,
        dict(body.connection),
        _check_prices(request, body.prices) or {},
    )
    store_of(request).create_site(site)
    request.app.state.hooks.wake()
    return site_out(site)


@router.put("/sites/{site_id}", tags=["pool"])
def set_site(site_id: str, body: SitePatch, request: Request, who: Who) -> dict[str, Any]:
    """Change a site (admins; operators all but its executor, connection and data classes): certifications,
    prices, connection, or take it out / bring it back by hand.
    ``{"down": true, "reason": "..."}`` records who, when and why; the site then stays down (across
    scheduler restarts, whatever its controller answers) until ``{"down": false}``."""
    who.require("admin", "operator")
    changes: dict[str, Any] = {k: v for k, v in body.model_dump().items() if v is not None}
    _admin_only(who, changes)
    reason = changes.pop("reason", None)
    if reason is not None and changes.get("down") is not True:
        raise ApiError(422, "a reason goes with taking the site out (down: true)", "reason")
    if changes.get("down") is True:
        changes.update(
            down_by=who.token.name or who.role,
            down_at=request.app.state.hooks.now(),
            down_reason=reason or "",
        )
    elif changes.get("down") is False:
        changes.update(down_by="", down_at=None, down_reason="")
    if "data_classes" in changes:
        changes["data_classes"] = frozenset(changes["data_classes"])
    if "prices" in changes:
        changes["prices"] = _check_prices(request, changes["prices"])
    if "executor" in changes or "connection" in changes:
        old = next((s for s in store_of(request).sites() if s.id == site_id), None)
        if old is None:
            raise not_found("site")
        _check_connection(changes.get("executor", old.executor), changes.get("connection", old.connection))
        _check_one_ray(request, site_id, changes.get("executor", old.executor))
    s = store_of(request).update_site(site_id, **changes)
    if s is None:
        raise not_found("site")
    request.app.state.hooks.wake()
    return site_out(s)
