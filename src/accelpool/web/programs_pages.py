"""Programs and grants: budget, granted, spent, remaining, burn rate and projected run-out per program,
spend per day by tenant and by type, and the forms that create a grant or change its amount."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from accelpool.api.auth import Principal, visible_programs, visible_tenants
from accelpool.api.routers import programs as programs_api
from accelpool.core.periods import closed
from accelpool.core.types import Program
from accelpool.storage import dashboard as read
from accelpool.storage.sql import SqlStore
from accelpool.web import charts
from accelpool.web.frame import (
    RUNOUT_YEARS,
    act,
    form_action,
    locale,
    login_page,
    parse_date,
    principal,
    render,
)
from accelpool.web.i18n import Locale


def grants_for(store: SqlStore, who: Principal) -> list[Any]:
    if who.role == "program-manager":
        return store.list_grants(programs=[who.token.program or ""])
    return store.list_grants(tenants=visible_tenants(store, who))


def grant_row(g: Any, program: Program | None, now: float) -> dict[str, Any]:
    """A grant's row; one outside its period or its program's (core.periods) has nothing left to use."""
    return {
        **vars(g),
        "remaining_krw": g.remaining_krw if closed(g, program, now) is None else 0,
        "pct": min(100, round(100 * g.spent_krw / g.amount_krw)) if g.amount_krw else 0,
    }


def programs_data(store: SqlStore, who: Principal, now: float, loc: Locale) -> dict[str, Any]:
    progs = visible_programs(store, who)
    programs = [p for p in store.list_programs() if progs is None or p.id in progs]
    grants = grants_for(store, who)
    tenants_seen = visible_tenants(store, who)
    # the burn rate of what the caller sees: a member's own tenant's, not its program's other tenants'
    week = read.spend_since(store, now - 7 * read.DAY, [p.id for p in programs], tenants_seen)
    out = []
    for p in programs:
        mine = [g for g in grants if g.program == p.id]
        granted = store.granted_total(p.id) if who.role != "member" else sum(g.amount_krw for g in mine)
        spent = sum(g.spent_krw for g in mine)
        left = sum(g.remaining_krw for g in mine if closed(g, p, now) is None)  # closed grants pay nothing
        per_day = week.get(p.id, 0) / 7.0
        days_left = left / per_day if per_day > 0 and left > 0 else None
        # a run-out beyond RUNOUT_YEARS is shown as such (and would not fit a date)
        runout = (
            now + days_left * read.DAY if days_left is not None and days_left < 365 * RUNOUT_YEARS else None
        )
        out.append(
            {
                "id": p.id,
                "name": p.name,
                "budget": p.budget_krw,
                "granted": granted,
                "spent": spent,
                "left": left,
                "ungranted": p.budget_krw - granted if who.role != "member" else None,
                "per_day": int(round(per_day)),
                "runout": runout,
                "runout_far": days_left is not None and runout is None,
                "end": p.end,
                "grants": [grant_row(g, p, now) for g in mine],
                "can_grant": who.is_admin or (who.role == "program-manager" and who.token.program == p.id),
            }
        )
    days, by_tenant, by_type = read.daily_spend(store, now, 14, [p.id for p in programs], tenants_seen)
    labels = [loc.day(d)[5:] for d in days]
    fmt = loc.krw_short
    charts_ = []
    if any(sum(v) for v in by_tenant.values()):
        for title, data in (
            (loc("Spend by tenant, last 14 days"), by_tenant),
            (loc("Spend by type, last 14 days"), by_type),
        ):
            charts_.append((title, charts.stacked_bars(title, labels, list(data.items()), y_format=fmt)))
    tenants = [t.id for t in store.list_tenants()] if who.role != "member" else []
    return {"programs": out, "charts": charts_, "tenants": tenants}


def _amount(form: dict[str, str]) -> int | str:
    """A form's amount in won ("1,500,000", "₩1,500,000"): an int, or the text as typed for the API to
    refuse in its words."""
    amount = form.get("amount_krw", "").replace(",", "").replace("₩", "").strip()
    digits = amount[1:] if amount.startswith("-") else amount
    # a negative amount goes as a number too, so the API's answer names its bound, not its type
    # (over 18 digits the text goes as typed: past any budget, and int() refuses over 4,300 digits)
    return int(amount) if digits.isdigit() and digits.isascii() and len(digits) <= 18 else amount


def install(app: FastAPI) -> None:
    async def programs_page(
        request: Request, status: int = 200, error: str = "", message: str = ""
    ) -> Response:
        who = principal(request)
        if who is None:
            return login_page(request, 401)
        loc = locale(request)
        data = await run_in_threadpool(
            programs_data, request.app.state.store, who, request.app.state.hooks.now(), loc
        )
        return render(
            request,
            "programs.html",
            status,
            who=who,
            title=loc("Programs and grants"),
            error=error,
            message=message,
            **data,
        )

    @app.get("/ui/programs", include_in_schema=False)
    async def programs(request: Request) -> Response:
        return await programs_page(
            request, message=locale(request)("Done.") if request.query_params.get("done") else ""
        )

    @app.post("/ui/grants", include_in_schema=False)
    async def create_grant(request: Request) -> Response:
        async def run(who: Principal, form: dict[str, str]) -> tuple[int, str]:
            body: dict[str, Any] = {"program": form.get("program", ""), "tenant": form.get("tenant", "")}
            body["amount_krw"] = _amount(form)
            if form.get("id", "").strip():
                body["id"] = form["id"].strip()
            if form.get("end", "").strip():
                end = parse_date(form["end"], locale(request), end_of_day=True)
                body["end"] = end if end is not None else form["end"]
            return await act(request, who, programs_api.create_grant, model=programs_api.GrantIn, body=body)

        return await form_action(request, run, done="/ui/programs?done=1", refused=_again(request))

    @app.post("/ui/grants/{grant_id}", include_in_schema=False)
    async def change_grant(request: Request, grant_id: str) -> Response:
        async def run(who: Principal, form: dict[str, str]) -> tuple[int, str]:
            body = {"amount_krw": _amount(form)}
            return await act(
                request, who, programs_api.update_grant, grant_id, model=programs_api.GrantPatch, body=body
            )

        return await form_action(request, run, done="/ui/programs?done=1", refused=_again(request))

    def _again(request: Request) -> Callable[[int, str], Awaitable[Response]]:
        return lambda status, error: programs_page(request, status, error)
