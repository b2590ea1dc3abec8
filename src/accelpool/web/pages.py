"""The dashboard at ``/ui``: the overview, sign-in and settings, static files, and the pages of each area
(``jobs_pages``, ``programs_pages``, ``pool_pages``; what they share is in ``frame``).

What a page shows follows the API's visibility rules: a member sees its tenant's jobs and grants, a program
manager the jobs charged to its program's grants, an admin everything; the pool is shared.

Pages update themselves: ``static/live.js`` fetches the page again every few seconds with ``X-Live: 1``
and swaps in the ``<main>`` it answers. Language: Korean or English from Accept-Language, switchable
(cookie); times in the user's zone (cookie; the server's default is ``app.state.ui_timezone``, Asia/Seoul).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from accelpool.api.auth import Principal, visible_grants, visible_tenants
from accelpool.storage import dashboard as read
from accelpool.storage import sessions
from accelpool.storage.sql import SqlStore
from accelpool.web import jobs_pages, pool_pages, programs_pages
from accelpool.web.frame import (
    COOKIE,
    LANG_COOKIE,
    OVERVIEW_LIMIT,
    QUEUED_STATES,
    SESSION_SECONDS,
    STATIC,
    STATIC_TYPES,
    TZ_COOKIE,
    checked,
    error_page,
    locale,
    login_page,
    placement_text,
    principal,
    read_form,
    render,
    same_origin,
    wants_text,
)
from accelpool.web.i18n import DEFAULT_ZONE, Locale, unranked, zone
from accelpool.web.jobs_pages import attempt_start, waiting_since
from accelpool.web.pool_pages import pool_data
from accelpool.web.programs_pages import grant_row, grants_for


def overview_data(store: SqlStore, who: Principal, catalog: Any, now: float, loc: Locale) -> dict[str, Any]:
    tenants = visible_tenants(store, who)
    job_grants = visible_grants(store, who)
    running, more_r = read.active_jobs(store, tenants, ["running"], OVERVIEW_LIMIT, grants=job_grants)
    queued, more_q = read.active_jobs(
        store, tenants, QUEUED_STATES, OVERVIEW_LIMIT, queue_order=True, grants=job_grants
    )
    queued.sort(key=lambda v: (v.position is None, v.position or 0, v.seq))
    grants = grants_for(store, who)
    programs = {p.id: p for p in store.list_programs()}
    return {
        **pool_data(store, catalog, now, loc),
        "running": [
            {
                "id": v.id,
                "name": v.name,
                "tenant": v.tenant,
                "placement": placement_text(v.placement),
                "steps": f"{v.steps_done:g}"
                + (f" / {v.spec['total_steps']:g}" if v.spec.get("total_steps") else ""),
                "age": loc.duration(now - attempt_start(store, v) if v.start_time else None),
            }
            for v in running
        ],
        "running_more": more_r,
        "queue": [
            {
                "id": v.id,
                "name": v.name,
                "tenant": v.tenant,
                "state": v.state.value,
                "position": v.position,
                "reason": v.reason or loc("waiting for the next round"),
                "wants": wants_text(v.spec, loc),
                "age": loc.duration(now - waiting_since(store, v)),
                "view": v,
                "starts": v.queue is not None or unranked(v),  # a range, or when it will have one
            }
            for v in queued
        ],
        "queue_more": more_q,
        "grants": [grant_row(g, programs.get(g.program), now) for g in grants],
    }


def install(app: FastAPI) -> None:
    if not hasattr(app.state, "ui_timezone"):
        # the zone pages use until a user picks one: ACCELPOOL_UI_TIMEZONE (an IANA name), else Asia/Seoul
        app.state.ui_timezone = zone(os.environ.get("ACCELPOOL_UI_TIMEZONE"), DEFAULT_ZONE).key

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/ui", status_code=303)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/ui/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file() or path.suffix not in STATIC_TYPES:
            return Response("not found", status_code=404)
        return FileResponse(
            path,
            media_type=STATIC_TYPES[path.suffix],
            headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    @app.get("/ui", include_in_schema=False)
    async def overview(request: Request) -> Response:
        who = principal(request)
        if who is None:
            return login_page(request, 401)
        loc = locale(request)
        data = await run_in_threadpool(
            overview_data,
            request.app.state.store,
            who,
            request.app.state.catalog,
            request.app.state.hooks.now(),
            loc,
        )
        return render(request, "overview.html", who=who, title=loc("Overview"), **data)

    @app.get("/ui/login", include_in_schema=False)
    async def login_get(request: Request) -> Response:
        if principal(request) is not None:
            return RedirectResponse("/ui", status_code=303)
        return login_page(request)

    @app.post("/ui/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        loc = locale(request)
        if not same_origin(request):  # login CSRF: another site must not sign the browser in as someone
            return login_page(request, 403, loc("Refused: {reason}", reason="CSRF"))
        secret = (await read_form(request)).get("token", "").strip()
        if not secret:
            return login_page(request, 401, loc("Enter a token to sign in."))
        tok = request.app.state.tokens.lookup(secret)
        if tok is None:
            return login_page(request, 401, loc("This token is unknown or has been revoked."))
        session = await run_in_threadpool(
            sessions.open_session,
            request.app.state.store,
            tok.id,
            request.app.state.hooks.now(),
            SESSION_SECONDS,
        )
        resp = RedirectResponse("/ui", status_code=303)
        resp.set_cookie(
            COOKIE,
            session,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=SESSION_SECONDS,
            path="/ui",
        )
        return resp

    @app.post("/ui/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        """Sign-out is a form of the page (its CSRF key, same origin): a link elsewhere signed users out."""
        _, _, refused = await checked(request)
        if refused is not None:
            return refused
        secret = request.cookies.get(COOKIE, "").strip()
        if secret:
            await run_in_threadpool(sessions.close_session, request.app.state.store, secret)
            getattr(request.app.state, "ui_sessions", {}).clear()
        resp = RedirectResponse("/ui", status_code=303)
        resp.delete_cookie(COOKIE, path="/ui")
        return resp

    @app.get("/ui/settings", include_in_schema=False)
    async def settings(request: Request, lang: str = "", tz: str = "", back: str = "/ui") -> Response:
        if not back.startswith("/ui") or back.startswith("//"):
            back = "/ui"
        resp = RedirectResponse(back, status_code=303)
        if lang in ("en", "ko"):
            resp.set_cookie(LANG_COOKIE, lang, samesite="lax", max_age=365 * 86400, path="/ui")
        if tz and zone(tz, "UTC").key == tz:
            resp.set_cookie(TZ_COOKIE, tz, samesite="lax", max_age=365 * 86400, path="/ui")
        return resp

    # each area's pages, then the catch-all for unknown addresses
    jobs_pages.install(app)
    programs_pages.install(app)
    pool_pages.install(app)

    @app.get("/ui/{rest:path}", include_in_schema=False)
    async def missing(request: Request, rest: str) -> Response:
        loc = locale(request)
        return error_page(
            request, 404, loc("Page not found"), loc("There is no page at this address."), principal(request)
        )
