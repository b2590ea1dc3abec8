"""Tenants (admins create and change them; others see their own)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from accelpool.api.auth import visible_tenants
from accelpool.api.errors import not_found
from accelpool.api.routers.common import ID_PATTERN, Devices, StrictIn, Who, known_types, store_of
from accelpool.core.types import Tenant

router = APIRouter()


class TenantIn(StrictIn):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(default="", max_length=200)
    weight: float = Field(default=1.0, gt=0, le=1e6)
    quota: dict[str, Devices] = Field(default_factory=dict)
    public: bool = False


class TenantPatch(StrictIn):
    name: str | None = Field(default=None, max_length=200)
    weight: float | None = Field(default=None, gt=0, le=1e6)
    quota: dict[str, Devices] | None = None
    public: bool | None = None


def _tenant_json(t: Tenant) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "weight": t.weight, "quota": dict(t.quota), "public": t.public}


@router.get("/tenants", tags=["admin"])
def list_tenants(request: Request, who: Who) -> dict[str, Any]:
    store = store_of(request)
    vis = visible_tenants(store, who)
    return {"items": [_tenant_json(t) for t in store.list_tenants() if vis is None or t.id in vis]}


@router.post("/tenants", status_code=201, tags=["admin"])
def create_tenant(body: TenantIn, request: Request, who: Who) -> dict[str, Any]:
    """A new tenant (admins). 409 when the id exists: change a tenant with ``PATCH /tenants/{id}``."""
    who.require("admin")
    known_types(request, body.quota, "quota")
    t = Tenant(body.id, body.name or body.id, body.weight, body.quota, body.public)
    store_of(request).create_tenant(t)
    return _tenant_json(t)


@router.patch("/tenants/{tenant_id}", tags=["admin"])
def update_tenant(tenant_id: str, body: TenantPatch, request: Request, who: Who) -> dict[str, Any]:
    """Change a tenant's name, weight, quota or public flag (admins); fields not given stay."""
    who.require("admin")
    if body.quota is not None:
        known_types(request, body.quota, "quota")
    t = store_of(request).update_tenant(
        tenant_id, name=body.name, weight=body.weight, quota=body.quota, public=body.public
    )
    if t is None:
        raise not_found("tenant")
    return _tenant_json(t)
