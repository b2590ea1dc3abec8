"""API tokens: whoami, list, create (secret shown once), revoke."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from accelpool.api.auth import ROLES
from accelpool.api.errors import ApiError, not_found
from accelpool.api.routers.common import Who, store_of

router = APIRouter()


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
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
    store = store_of(request)
    if who.is_admin:
        return {"items": [_token_json(t) for t in store.list_tokens()]}
    return {"items": [_token_json(who.token)]}


@router.post("/tokens", status_code=201, tags=["tokens"])
def create_token(body: TokenIn, request: Request, who: Who) -> dict[str, Any]:
    """A new token; its secret is in the answer once and never again (only a hash is stored)."""
    who.require("admin")
    store = store_of(request)
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
    if not store_of(request).revoke_token(token_id):
        raise not_found("token")
    request.app.state.tokens.forget()
    return {"id": token_id, "revoked": True}
