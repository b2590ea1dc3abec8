"""Programs, their rules, and the grants they make to tenants."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field

from accelpool.api.auth import visible_programs, visible_tenants
from accelpool.api.errors import ApiError, not_found
from accelpool.api.routers.common import (
    ID_PATTERN,
    MAX_KRW,
    MAX_SECONDS,
    Devices,
    Krw,
    StrictIn,
    Time,
    Who,
    known_types,
    store_of,
)
from accelpool.core import ledger
from accelpool.core.errors import AlreadyExists
from accelpool.core.periods import closed, ended, utc_words
from accelpool.core.types import Grant, Program, ProgramRules
from accelpool.storage import codec

router = APIRouter()


class RulesIn(StrictIn):
    public_share: dict[str, float] = Field(default_factory=dict)
    public_services_domestic_only: bool = False
    tenant_caps: dict[str, Devices] = Field(default_factory=dict)
    max_contract_seconds: float | None = Field(default=None, gt=0, le=MAX_SECONDS)
    min_run_seconds: float | None = Field(default=None, ge=0, le=MAX_SECONDS)
    weight: float = Field(default=1.0, gt=0, le=1e6)

    def rules(self, request: Request, prefix: str = "") -> ProgramRules:
        known_types(request, self.public_share, f"{prefix}public_share", star=True)
        known_types(request, self.tenant_caps, f"{prefix}tenant_caps", star=True)
        for k, v in self.public_share.items():
            if not 0 <= v <= 1:
                raise ApiError(422, "a share is a fraction between 0 and 1", f"{prefix}public_share.{k}")
        return ProgramRules(
            self.public_share,
            self.public_services_domestic_only,
            self.tenant_caps,
            self.max_contract_seconds,
            self.min_run_seconds,
            self.weight,
        )


class ProgramIn(StrictIn):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(default="", max_length=200)
    budget_krw: Krw
    start: Time | None = Field(default=None, description="unix seconds; default now")
    end: Time | None = None
    public: bool = True
    rules: RulesIn = Field(default_factory=RulesIn)


class ProgramPatch(StrictIn):
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
    """The programs the caller may see. ``granted_krw``: what the program has granted in all; to a member,
    what it granted the member's tenant (other tenants' grants are theirs to see)."""
    store = store_of(request)
    vis = visible_programs(store, who)
    own: dict[str, int] | None = None
    if who.role == "member":
        own = {}
        for g in store.list_grants(tenants=visible_tenants(store, who)):
            own[g.program] = own.get(g.program, 0) + g.amount_krw
    return {
        "items": [
            _program_json(p, store.granted_total(p.id) if own is None else own.get(p.id, 0))
            for p in store.list_programs()
            if vis is None or p.id in vis
        ]
    }


@router.post("/programs", status_code=201, tags=["programs"])
def create_program(body: ProgramIn, request: Request, who: Who) -> dict[str, Any]:
    """A new program (admins). 409 when the id exists: its budget, rules and dates are changed only
    through ``PATCH /programs/{id}`` and ``PUT /programs/{id}/rules``."""
    who.require("admin")
    start = request.app.state.hooks.now() if body.start is None else body.start  # not 1970
    if body.end is not None and body.end <= start:
        raise ApiError(422, "the program must end after it starts", "end")
    p = Program(
        body.id,
        body.name or body.id,
        body.budget_krw,
        start,
        body.end,
        body.public,
        body.rules.rules(request, "rules."),
    )
    store_of(request).create_program(p)
    return _program_json(p, 0)


def _visible_program(request: Request, who: Who, program_id: str) -> Program:
    store = store_of(request)
    vis = visible_programs(store, who)
    found = [p for p in store.list_programs() if p.id == program_id and (vis is None or p.id in vis)]
    if not found:
        raise not_found("program")
    return found[0]


@router.patch("/programs/{program_id}", tags=["programs"])
def update_program(program_id: str, body: ProgramPatch, request: Request, who: Who) -> dict[str, Any]:
    """Change a program's name, budget (409 below what it has already granted) or end (admins). An end in
    the past, or before the program starts, is 422: its grants stop paying at its end (core.periods)."""
    program = _visible_program(request, who, program_id)
    who.require("admin")
    if body.end is not None:
        if body.end <= program.start:
            raise ApiError(422, "the program must end after it starts", "end")
        if body.end <= request.app.state.hooks.now():
            raise ApiError(422, "the program would already be over (end is in the past)", "end")
    store = store_of(request)
    p = store.update_program(program_id, name=body.name, budget_krw=body.budget_krw, end=body.end)
    if p is None:
        raise not_found("program")
    return _program_json(p, store.granted_total(p.id))


POOL_WIDE_RULES = ("weight", "public_share", "min_run_seconds")
"""Rules that take capacity from other programs (a share of the pool's top-level fair share, devices kept
for public jobs of every program, a floor under preemption): admins change them, not a program's manager."""


@router.put("/programs/{program_id}/rules", tags=["programs"])
def set_rules(program_id: str, body: RulesIn, request: Request, who: Who) -> dict[str, Any]:
    """Replace a program's rules (admins, or the program's manager). The pool-wide ones (``weight``,
    ``public_share``, ``min_run_seconds``) only an admin changes: a manager who gives one with another
    value than the program's is refused (403 naming it), and one a manager leaves out keeps its value."""
    _visible_program(request, who, program_id)
    who.require("admin", "program-manager")
    store = store_of(request)
    given = body.rules(request)

    def merged(now: ProgramRules) -> ProgramRules:
        # under the program row's lock: a pool-wide rule an admin changed meanwhile is kept, not undone
        rules = given
        for name in () if who.is_admin else POOL_WIDE_RULES:
            mine, theirs = getattr(rules, name), getattr(now, name)
            if isinstance(theirs, Mapping):
                mine, theirs = dict(mine), dict(theirs)
            if name not in body.model_fields_set:
                rules = replace(rules, **{name: getattr(now, name)})
            elif mine != theirs:
                raise ApiError(403, f"only an admin changes '{name}' (it takes capacity pool-wide)", name)
        return rules

    p = store.update_program(program_id, rules_from=merged)
    if p is None:
        raise not_found("program")
    return _program_json(p, store.granted_total(p.id))


class GrantIn(StrictIn):
    id: str | None = Field(default=None, pattern=ID_PATTERN)
    program: str
    tenant: str
    amount_krw: Annotated[int, Field(strict=True, gt=0, le=MAX_KRW, description="integer KRW")]
    start: Time | None = Field(default=None, description="unix seconds; default now")
    end: Time | None = None


class GrantPatch(StrictIn):
    amount_krw: Annotated[int, Field(strict=True, gt=0, le=MAX_KRW)] | None = Field(
        default=None, description="within the program's budget, never below what is spent and held"
    )
    end: Time | None = None


def _grant_json(
    g: Grant, request: Request, held: int | None = None, programs: dict[str, Program] | None = None
) -> dict[str, Any]:
    """A grant as the API shows it: its amount, what is spent, what its active jobs hold (a lease each, or a
    whole run) and what a new job may still use (``available_krw``: 0 outside its period or its
    program's, core.periods), and ``state``: active, ended or not started (with why in ``closed``)."""
    store = store_of(request)
    if held is None:
        held = store.held_by_grant([g.id]).get(g.id, 0)
    if programs is None:
        programs = {p.id: p for p in store.list_programs()}
    program, now = programs.get(g.program), request.app.state.hooks.now()
    why = closed(g, program, now)
    state = "active" if why is None else "ended" if ended(g, program, now) else "not started"
    return {
        "id": g.id,
        "program": g.program,
        "tenant": g.tenant,
        "amount_krw": g.amount_krw,
        "spent_krw": g.spent_krw,
        "remaining_krw": g.remaining_krw,
        "held_krw": held,
        "available_krw": max(0, ledger.unheld(g.amount_krw, g.spent_krw, held)) if why is None else 0,
        "state": state,
        "closed": why,
        "start": g.start,
        "end": g.end,
    }


@router.get("/grants", tags=["programs"])
def list_grants(request: Request, who: Who) -> dict[str, Any]:
    store = store_of(request)
    if who.role == "program-manager":
        grants = store.list_grants(programs=[who.token.program or ""])
    else:
        grants = store.list_grants(tenants=visible_tenants(store, who))
    held = store.held_by_grant(g.id for g in grants)
    programs = {p.id: p for p in store.list_programs()}
    return {"items": [_grant_json(g, request, held.get(g.id, 0), programs) for g in grants]}


@router.post("/grants", status_code=201, tags=["programs"])
def create_grant(body: GrantIn, request: Request, who: Who) -> dict[str, Any]:
    """A program manager grants money from their program. 409 when the id exists (a grant's spending is
    never reset; change it with ``PATCH /grants/{id}``; to a manager, another program's grant id is only
    "not available", never confirmed) or the program's budget has too little left: the
    check and the insert are one transaction under the program row's lock. Under a program with a maximum
    contract (``rules.max_contract_seconds``) a grant without an end ends that long after its start."""
    who.require("admin", "program-manager")
    store = store_of(request)
    if who.is_admin and body.program not in {p.id for p in store.list_programs()}:
        # as an unknown tenant below (422 naming it); a manager's other program stays 404 (not seen)
        raise ApiError(422, f"no program '{body.program}'", "program")
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
    if program.end is not None and start >= program.end:
        # it would pay only while its program runs (core.periods): never
        raise ApiError(
            422,
            f"the grant would start at {utc_words(start)}, when its program '{program.id}' has ended "
            f"(at {utc_words(program.end)}), so it could never pay for anything",
            "start",
        )
    limit = program.rules.max_contract_seconds
    end = body.end
    if limit is not None:
        if end is None:
            end = start + limit  # a program with a maximum contract has no open-ended grant
        elif end - start > limit:
            raise ApiError(409, f"longer than the program's maximum contract ({limit:.0f} s)", "end")
    g = Grant(body.id or "g-" + secrets.token_hex(4), program.id, body.tenant, body.amount_krw, 0, start, end)
    try:
        made = store.create_grant(g)
    except AlreadyExists:
        if who.is_admin or any(x.id == g.id for x in store.list_grants(programs=[program.id])):
            raise
        # another program's grant: say neither that it exists nor whose it is
        raise ApiError(409, f"grant id '{g.id}' is not available: choose another", "id") from None
    return _grant_json(made, request, 0)


@router.patch("/grants/{grant_id}", tags=["programs"])
def update_grant(grant_id: str, body: GrantPatch, request: Request, who: Who) -> dict[str, Any]:
    """Change a grant's amount (within its program's budget, never below what is spent or held) or its
    end. Only an admin or the manager of the grant's own program; its program and tenant never change."""
    store = store_of(request)
    found = [g for g in store.list_grants() if g.id == grant_id]
    if not found:
        raise not_found("grant")
    g = found[0]
    if who.role == "program-manager":
        if who.token.program != g.program:
            raise not_found("grant")
    elif not who.sees_all:
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
    return _grant_json(out, request)
