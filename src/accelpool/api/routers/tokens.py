"""API tokens: whoami, list, create (secret shown once, optional expiry), rotate, revoke."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from accelpool.api.auth import ROLES
from accelpool.api.errors import ApiError, not_found
from accelpool.api.routers.common import Who, store_of

router = APIRouter()


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    role: Literal["admin", "operator", "program-manager", "member"]
    name: str = ""
    tenant: str | None = None
    program: str | None = None
    expires_in_seconds: int | None = Field(
        default=None, ge=60, le=10 * 366 * 86400, description="refused after this many seconds (none: never)"
    )


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    grace_seconds: int = Field(
        default=0, ge=0, le=7 * 86400, description="the old secret still works this long (0: revoked now)"
    )


def _token_json(t: Any) -> dict[str, Any]:
    return asdict(t)


def _with_secret(response: Response, out: dict[str, Any]) -> dict[str, Any]:
    """An answer carrying a token's secret: no cache (the browser's, a proxy's) may keep a copy."""
    response.headers["Cache-Control"] = "no-store"
    return out


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
def create_token(body: TokenIn, request: Request, response: Response, who: Who) -> dict[str, Any]:
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
    # a scope the role does not have is refused, not stored and then ignored (an operator's test: an admin
    # token "for" tenant 'nobody' and a member token "for" a program were listed as if so scoped)
    if body.role != "member" and body.tenant is not None:
        raise ApiError(422, f"only a member token has a tenant; a {body.role} token has none", "tenant")
    if body.role != "program-manager" and body.program is not None:
        raise ApiError(
            422, f"only a program-manager token has a program; a {body.role} token has none", "program"
        )
    assert body.role in ROLES
    expires = None
    if body.expires_in_seconds is not None:
        expires = time.time() + body.expires_in_seconds
    view, secret = store.create_token(
        body.role, name=body.name, tenant=body.tenant, program=body.program, expires=expires
    )
    return _with_secret(response, {**_token_json(view), "secret": secret})


@router.post("/tokens/{token_id}/rotate", tags=["tokens"])
def rotate_token(
    token_id: str, body: RotateIn, request: Request, response: Response, who: Who
) -> dict[str, Any]:
    """A new secret for the same role, tenant and program; the old one is refused after ``grace_seconds``
    (never later than its own expiry). Admins rotate any token, and the new one gets the old one's whole
    lifetime from now; others rotate their own, and the new one expires when the old one would have."""
    if who.job is not None or (not who.is_admin and token_id != who.token.id):
        raise not_found("token")
    out = store_of(request).rotate_token(token_id, float(body.grace_seconds), renew=who.is_admin)
    if out is None:
        raise not_found("token")
    request.app.state.tokens.forget()
    view, secret = out
    return _with_secret(response, {**_token_json(view), "secret": secret, "replaces": token_id})


@router.delete("/tokens/{token_id}", tags=["tokens"])
def revoke_token(token_id: str, request: Request, who: Who) -> dict[str, Any]:
    if not who.is_admin and token_id != who.token.id:
        raise not_found("token")
    if not store_of(request).revoke_token(token_id):
        raise not_found("token")
    request.app.state.tokens.forget()
    return {"id": token_id, "revoked": True}
