"""The dashboard at ``/ui``: overview, job history and job pages, programs and grants, the pool.

Auth is the API's: the same bearer tokens, sent as ``Authorization: Bearer`` or kept in an HttpOnly,
SameSite=Strict cookie set by the login form (``POST /ui/login``; the token never goes into a URL). What a
page shows follows the API's visibility rules: a member sees its tenant's jobs and grants, a program
manager its program's, an admin everything; the pool (nodes, devices, waiting demand per type) is shared.

Actions (cancel a job, create or change a grant, drain a node) are forms carrying a CSRF token bound to
the signed-in token; the handler forwards them to the REST API in-process with the user's own token, so
the rules, the checks and the error messages are the API's own.

Pages update themselves: ``static/live.js`` fetches the page again every few seconds with ``X-Live: 1``
and swaps in the ``<main>`` it answers. Language: Korean or English from Accept-Language, switchable
(cookie); times in the user's zone (cookie; the server's default is ``app.state.ui_timezone``, Asia/Seoul).
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import math
import os
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from accelpool.api import errors as api_errors
from accelpool.api.auth import Principal, visible_grants, visible_programs, visible_tenants
from accelpool.api.routers import jobs as jobs_api
from accelpool.api.routers import pool as pool_api
from accelpool.api.routers import programs as programs_api
from accelpool.core.errors import Conflict, InputError
from accelpool.storage import dashboard as read
from accelpool.storage import sessions
from accelpool.storage.sql import SqlStore
from accelpool.web import charts
from accelpool.web.i18n import DEFAULT_ZONE, ZONES, Locale, negotiate, zone

COOKIE = "accelpool_token"
LANG_COOKIE = "accelpool_lang"
TZ_COOKIE = "accelpool_tz"
LIVE_SECONDS = 5
SESSION_SECONDS = 12 * 3600
SESSION_CACHE = 5.0
_QUEUED = ["queued", "preempted"]
_LIMIT = 50  # rows per table on the overview; the jobs page pages through the rest
PER_PAGE = 50
LOG_LINES = 200
RUNOUT_YEARS = 100
STATES = ("queued", "running", "preempted", "succeeded", "failed", "cancelled")
HERE = Path(__file__).parent
STATIC = HERE / "static"
_STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # nothing from another origin: scripts, styles, images and fonts all come from this server
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'",
}


# -- who, language, zone --------------------------------------------------------------------------------


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def _secret(request: Request) -> str:
    """The credential this request carries: an API token (Authorization: Bearer) or a session secret."""
    return _bearer(request) or request.cookies.get(COOKIE, "").strip()


def _principal(request: Request) -> Principal | None:
    """Who is asking: an API token in the Authorization header, or a dashboard session in the cookie
    (looked up at most once per SESSION_CACHE seconds per session, and again after any write that could
    revoke it). Job tokens are not accepted here."""
    bearer = _bearer(request)
    if bearer:
        tok = request.app.state.tokens.lookup(bearer)
        return None if tok is None else Principal(tok)
    secret = request.cookies.get(COOKIE, "").strip()
    if not secret:
        return None
    store = request.app.state.store
    cache: dict[str, tuple[float, int, Any]] | None = getattr(request.app.state, "ui_sessions", None)
    if cache is None:
        cache = request.app.state.ui_sessions = {}
    key, now, version = hashlib.sha256(secret.encode()).hexdigest(), time.monotonic(), store.write_version
    hit = cache.get(key)
    if hit is not None and now - hit[0] < SESSION_CACHE and hit[1] == version:
        tok = hit[2]
    else:
        tok = sessions.session_token(store, secret, request.app.state.hooks.now())
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = (now, version, tok)
    if tok is None or (tok.expires is not None and tok.expires <= request.app.state.hooks.now()):
        return None
    return Principal(tok)


def _locale(request: Request) -> Locale:
    lang = negotiate(request.headers.get("accept-language"), request.cookies.get(LANG_COOKIE))
    default = getattr(request.app.state, "ui_timezone", None) or DEFAULT_ZONE
    return Locale(lang, zone(request.cookies.get(TZ_COOKIE), default))


def _csrf(request: Request) -> str:
    """A per-sign-in form key: HMAC of the session secret (or bearer token) under a per-process key."""
    key = getattr(request.app.state, "ui_csrf_key", None)
    if key is None:
        key = request.app.state.ui_csrf_key = secrets.token_bytes(32)
    return hmac.new(key, _secret(request).encode(), hashlib.sha256).hexdigest()[:40]


def _who_label(who: Principal, loc: Locale) -> str:
    t = who.token
    scope = t.tenant or t.program or ""
    return f"{t.name or t.id} ({loc(t.role)}{': ' + scope if scope else ''})"


def _page(
    request: Request, name: str, status: int = 200, who: Principal | None = None, **ctx: Any
) -> HTMLResponse:
    loc = _locale(request)
    now = request.app.state.hooks.now()
    html = env.get_template(name).render(
        _=loc,
        loc=loc,
        who=who,
        who_label=_who_label(who, loc) if who else "",
        partial=request.headers.get("x-live") == "1",
        path=request.url.path,
        here=str(request.url.path) + (("?" + request.url.query) if request.url.query else ""),
        updated=loc.when(now, seconds=True),
        live_seconds=LIVE_SECONDS,
        zones=ZONES,
        csrf=_csrf(request) if who else "",
        **ctx,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _error(
    request: Request, status: int, title: str, message: str, who: Principal | None = None
) -> HTMLResponse:
    return _page(request, "error.html", status, who=who, title=title, message=message)


# -- data for each page ---------------------------------------------------------------------------------


def _placement(p: dict[str, Any] | None) -> str:
    if not p:
        return ""
    parts = [f"{node}[{','.join(str(d) for d in devs)}]" for node, devs in p.get("devices", [])]
    return f"{p.get('accelerator', '')}: " + " ".join(parts)


def _wants(spec: dict[str, Any], loc: Locale) -> str:
    allowed = spec.get("allowed") or []
    return f"{spec.get('scale', 1)} x {' | '.join(allowed) if allowed else loc('any')}"


def pool_data(store: SqlStore, catalog: Any, now: float, loc: Locale) -> dict[str, Any]:
    busy = store.busy_devices()
    nodes = [{**vars(n), "busy": busy.get(n.name, 0)} for n in store.list_nodes()]
    types: dict[str, dict[str, Any]] = {}
    for n in nodes:
        acc = n["accelerator"]
        info = catalog.get(acc) if hasattr(catalog, "get") else None
        t = types.setdefault(
            acc,
            {
                "type": acc,
                "total": 0,
                "busy": 0,
                "down": 0,
                "vendor": getattr(info, "vendor", ""),
                "name": getattr(info, "name", acc),
                "family": getattr(info, "family", "gpu"),
            },
        )
        t["total"] += n["devices"]
        t["busy"] += n["busy"]
        if n["down"]:
            t["down"] += n["devices"]
    for t in types.values():
        t["free"] = max(0, t["total"] - t["busy"] - t["down"])
        t["pct"] = round(100 * t["busy"] / t["total"]) if t["total"] else 0
    ordered = sorted(types.values(), key=lambda t: (t["family"] != "gpu", t["vendor"], t["type"]))
    groups = [
        (loc("GPUs"), [t for t in ordered if t["family"] == "gpu"]),
        (loc("NPUs"), [t for t in ordered if t["family"] != "gpu"]),
    ]
    return {"types": ordered, "groups": [g for g in groups if g[1]], "nodes": nodes}


def overview_data(store: SqlStore, who: Principal, catalog: Any, now: float, loc: Locale) -> dict[str, Any]:
    tenants = visible_tenants(store, who)
    job_grants = visible_grants(store, who)
    running, more_r = read.active_jobs(store, tenants, ["running"], _LIMIT, grants=job_grants)
    queued, more_q = read.active_jobs(store, tenants, _QUEUED, _LIMIT, queue_order=True, grants=job_grants)
    queued.sort(key=lambda v: (v.position is None, v.position or 0, v.seq))
    grants = _grants_for(store, who)
    return {
        **pool_data(store, catalog, now, loc),
        "running": [
            {
                "id": v.id,
                "name": v.name,
                "tenant": v.tenant,
                "placement": _placement(v.placement),
                "steps": f"{v.steps_done:g}"
                + (f" / {v.spec['total_steps']:g}" if v.spec.get("total_steps") else ""),
                "age": loc.duration(now - _attempt_start(store, v) if v.start_time else None),
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
                "wants": _wants(v.spec, loc),
                "age": loc.duration(now - _waiting_since(store, v)),
            }
            for v in queued
        ],
        "queue_more": more_q,
        "grants": [_grant_row(g) for g in grants],
    }


def _visible_job(store: SqlStore, who: Principal, job_id: str) -> Any:
    """The job if ``who`` may see it (the API's rules: its tenants, and a program manager only the jobs
    charged to its program's grants), else None."""
    v = store.get_job(job_id, visible_tenants(store, who))
    grants = visible_grants(store, who)
    if v is None or (grants is not None and v.spec.get("grant") not in grants):
        return None
    return v


def _attempt_start(store: SqlStore, v: Any) -> float:
    """When the current attempt started: the last ``running`` event (the first start for a job never
    preempted). Only used for the few running jobs shown."""
    if not v.preemptions:
        return float(v.start_time)
    starts = [e.time for e in store.job_events(v.id) if e.state == "running"]
    return starts[-1] if starts else float(v.start_time)


def _waiting_since(store: SqlStore, v: Any) -> float:
    """When the job last joined the queue: submission, or its last requeue after a preemption or a lost
    node (only looked up for the few jobs shown that were ever preempted)."""
    if not v.preemptions:
        return float(v.submit_time)
    times = [e.time for e in store.job_events(v.id) if e.state in ("queued", "preempted")]
    return times[-1] if times else float(v.submit_time)


def _grants_for(store: SqlStore, who: Principal) -> list[Any]:
    if who.role == "program-manager":
        return store.list_grants(programs=[who.token.program or ""])
    return store.list_grants(tenants=visible_tenants(store, who))


def _grant_row(g: Any) -> dict[str, Any]:
    return {
        **vars(g),
        "remaining_krw": g.remaining_krw,
        "pct": min(100, round(100 * g.spent_krw / g.amount_krw)) if g.amount_krw else 0,
    }


def programs_data(store: SqlStore, who: Principal, now: float, loc: Locale) -> dict[str, Any]:
    progs = visible_programs(store, who)
    programs = [p for p in store.list_programs() if progs is None or p.id in progs]
    grants = _grants_for(store, who)
    week = read.spend_since(store, now - 7 * read.DAY, [p.id for p in programs])
    tenants_seen = visible_tenants(store, who)
    out = []
    for p in programs:
        mine = [g for g in grants if g.program == p.id]
        granted = store.granted_total(p.id) if who.role != "member" else sum(g.amount_krw for g in mine)
        spent = sum(g.spent_krw for g in mine)
        left = sum(g.remaining_krw for g in mine)
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
                "grants": [_grant_row(g) for g in mine],
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


def pool_page_data(store: SqlStore, catalog: Any, now: float, loc: Locale) -> dict[str, Any]:
    data = pool_data(store, catalog, now, loc)
    edges, busy = read.busy_series(store, now, 24)
    cap = {t["type"]: t["total"] for t in data["types"]}
    series = [
        (
            f"{t['vendor']} {t['type']}".strip(),
            [b / (read.HOUR * cap[t["type"]]) for b in busy.get(t["type"], [0.0] * len(edges))],
        )
        for t in data["types"]
        if cap.get(t["type"])
    ]
    data["util_chart"] = charts.line_chart(
        loc("Utilization per type, last 24 hours"),
        [e + read.HOUR for e in edges],
        series,
        x_label=lambda x: loc.when(x)[11:],
    )
    demand = read.waiting_demand(store)
    data["demand"] = sorted(demand.items(), key=lambda kv: -kv[1])
    return data


def job_data(
    store: SqlStore, v: Any, logs: str, log_from: int | None, now: float, loc: Locale
) -> dict[str, Any]:
    events = store.job_events(v.id)
    charges = read.job_charges(store, v.id)
    tries = read.attempts(events, charges)
    timeline = []
    prev = None
    for e in events:
        kind = ""
        if e.state == "preempted":
            kind = "preemption"
        elif "node" in e.reason.lower() and ("lost" in e.reason.lower() or "down" in e.reason.lower()):
            kind = "node lost"
        elif e.state == "queued" and prev in ("running", "preempted"):
            kind = "requeued"
        timeline.append({"time": e.time, "state": e.state, "reason": e.reason, "kind": kind})
        prev = e.state
    lines = logs.splitlines()
    n = len(lines)
    follow = log_from is None
    start = max(0, n - LOG_LINES) if log_from is None else max(0, min(log_from, max(n - 1, 0)))
    shown = lines[start : start + LOG_LINES]
    return {
        "job": v,
        "placement": _placement(v.placement),
        "wants": _wants(v.spec, loc),
        "timeline": timeline,
        "tries": tries,
        "total": sum(t.krw for t in tries) if tries else (v.charged_krw or 0),
        "logs": "\n".join(shown),
        "log_start": start + 1 if shown else 0,
        "log_end": start + len(shown),
        "log_n": n,
        "follow": follow and v.state.value == "running",
        "log_prev": max(0, start - LOG_LINES),
        "log_next": start + LOG_LINES if start + LOG_LINES < n else None,
        "has_earlier": start > 0,
    }


# -- forwarding actions to the API ----------------------------------------------------------------------


async def _act(
    request: Request,
    who: Principal,
    fn: Callable[..., Any],
    *args: Any,
    model: type[BaseModel] | None = None,
    body: dict[str, Any] | None = None,
) -> tuple[int, str]:
    """Run the REST API's own handler for an action as the signed-in user: the same checks, rules and
    messages. Answers (status, reason or "")."""
    try:
        parsed = [model.model_validate(body or {})] if model is not None else []
        if inspect.iscoroutinefunction(fn):
            await fn(*args, *parsed, request, who)
        else:
            await run_in_threadpool(fn, *args, *parsed, request, who)
    except ValidationError as exc:
        err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
        field = api_errors._loc(tuple(err.get("loc", ())))
        return 422, f"{str(err.get('msg', 'invalid')).removeprefix('Value error, ')} ({field})"
    except api_errors.ApiError as exc:
        return exc.status, exc.reason + (f" ({exc.field})" if exc.field else "")
    except InputError as exc:
        return 422, exc.message + (f" ({exc.field})" if exc.field else "")
    except Conflict as exc:
        where = getattr(exc, "field", None)
        return 409, str(exc) + (f" ({where})" if where else "")
    return 200, ""


async def _form(request: Request) -> dict[str, str]:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    return {k: v[0] for k, v in form.items()}


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def _date(s: str, loc: Locale, end_of_day: bool = False) -> float | None:
    try:
        d = datetime.strptime(s.strip(), "%Y-%m-%d").replace(tzinfo=loc.tz)
    except ValueError:
        return None
    return d.timestamp() + (86400 if end_of_day else 0)


# -- routes ---------------------------------------------------------------------------------------------


def install(app: FastAPI) -> None:  # noqa: C901 - one place lists every page
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
        if "/" in name or name.startswith(".") or not path.is_file() or path.suffix not in _STATIC_TYPES:
            return Response("not found", status_code=404)
        return FileResponse(
            path,
            media_type=_STATIC_TYPES[path.suffix],
            headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    def login_page(request: Request, status: int = 200, error: str | None = None) -> HTMLResponse:
        return _page(request, "login.html", status, title=_locale(request)("Sign in"), error=error)

    @app.get("/ui", include_in_schema=False)
    async def overview(request: Request) -> Response:
        who = _principal(request)
        if who is None:
            return login_page(request, 401)
        loc = _locale(request)
        data = await run_in_threadpool(
            overview_data,
            request.app.state.store,
            who,
            request.app.state.catalog,
            request.app.state.hooks.now(),
            loc,
        )
        return _page(request, "overview.html", who=who, title=loc("Overview"), **data)

    @app.get("/ui/login", include_in_schema=False)
    async def login_get(request: Request) -> Response:
        if _principal(request) is not None:
            return RedirectResponse("/ui", status_code=303)
        return login_page(request)

    @app.post("/ui/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        loc = _locale(request)
        secret = (await _form(request)).get("token", "").strip()
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

    @app.get("/ui/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
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

    @app.get("/ui/jobs", include_in_schema=False)
    async def jobs(request: Request) -> Response:
        who = _principal(request)
        if who is None:
            return login_page(request, 401)
        loc = _locale(request)
        qp = request.query_params
        f = read.JobFilter(
            q=qp.get("q", "").strip()[:100],
            state=qp.get("state", "") if qp.get("state") in STATES else "",
            tenant=qp.get("tenant", "").strip()[:64],
            program=qp.get("program", "").strip()[:64],
            type=qp.get("type", "").strip()[:64],
            since=_date(qp.get("since", ""), loc),
            until=_date(qp.get("until", ""), loc, end_of_day=True),
            sort=qp.get("sort", "new") if qp.get("sort") in read.SORTS else "new",
        )

        def number(name: str) -> int | None:
            v = qp.get(name, "")
            return int(v) if v.isdigit() and len(v) < 19 else None

        page = max(1, number("page") or 1)
        after, before = number("after"), number("before")
        store: SqlStore = request.app.state.store

        def load() -> tuple[read.JobPage, list[str] | None, list[str] | None]:
            tenants = visible_tenants(store, who)
            found = read.search_jobs(
                store,
                tenants,
                f,
                page=page,
                per_page=PER_PAGE,
                grants=visible_grants(store, who),
                after=after,
                before=None if after is not None else before,
            )
            return found, tenants, visible_programs(store, who)

        found, tenants, programs = await run_in_threadpool(load)
        pages = max(1, math.ceil(found.total / PER_PAGE))
        base = {k: v for k, v in qp.items() if k not in ("page", "after", "before") and v}

        def link(p: int, **cursor: int) -> str:
            return "/ui/jobs?" + urlencode({**base, **({"page": p} if p > 1 else {}), **cursor})

        return _page(
            request,
            "jobs.html",
            more=found.capped,
            who=who,
            title=loc("Jobs"),
            rows=found.rows,
            total=found.total,
            page=page,
            pages=max(pages, page),
            f=f,
            qp=qp,
            states=STATES,
            sorts=list(read.SORTS),
            prev_link=None
            if found.prev_before is None
            else link(page - 1)
            if page == 2
            else link(page - 1, before=found.prev_before),
            next_link=None if found.next_after is None else link(page + 1, after=found.next_after),
            tenant_choices=tenants if tenants is not None else [t.id for t in store.list_tenants()],
            program_choices=programs if programs is not None else [p.id for p in store.list_programs()],
            type_choices=sorted({n.accelerator for n in store.list_nodes()}),
            wants=lambda s: _wants(s, loc),
            now=request.app.state.hooks.now(),
        )

    @app.get("/ui/jobs/{job_id}", include_in_schema=False)
    async def job(
        request: Request, job_id: str, message: str = "", error: str = "", status: int = 200
    ) -> Response:
        who = _principal(request)
        if who is None:
            return login_page(request, 401)
        loc = _locale(request)
        store: SqlStore = request.app.state.store
        v = await run_in_threadpool(_visible_job, store, who, job_id)
        if v is None:
            return _error(request, 404, loc("Not found"), loc("No such job, or you may not see it."), who)
        logs = await run_in_threadpool(request.app.state.hooks.logs, v.id)
        lf = request.query_params.get("log")
        log_from = int(lf) if lf and lf.isdigit() else None
        data = await run_in_threadpool(
            job_data, store, v, logs or "", log_from, request.app.state.hooks.now(), loc
        )
        can_cancel = who.role in ("member", "admin") and not v.state.terminal
        return _page(
            request,
            "job.html",
            status,
            who=who,
            title=f"{loc('Job')} {v.id}",
            can_cancel=can_cancel,
            message=message,
            error=error,
            **data,
        )

    @app.post("/ui/jobs/{job_id}/cancel", include_in_schema=False)
    async def cancel(request: Request, job_id: str) -> Response:
        who, form, bad = await _checked(request)
        if bad is not None:
            return bad
        assert who is not None
        status, reason = await _act(request, who, jobs_api.cancel_job, job_id)
        if status >= 400:
            return await job(
                request, job_id, error=_locale(request)("Refused: {reason}", reason=reason), status=status
            )
        return RedirectResponse(f"/ui/jobs/{job_id}?done=1", status_code=303)

    async def _checked(request: Request) -> tuple[Principal | None, dict[str, str], Response | None]:
        who = _principal(request)
        loc = _locale(request)
        if who is None:
            return None, {}, login_page(request, 401)
        form = await _form(request)
        if not _same_origin(request) or not hmac.compare_digest(form.get("csrf", ""), _csrf(request)):
            return (
                who,
                form,
                _error(
                    request,
                    403,
                    loc("Refused: {reason}", reason="CSRF"),
                    loc("The form expired; please try again."),
                    who,
                ),
            )
        return who, form, None

    async def programs_page(
        request: Request, status: int = 200, error: str = "", message: str = ""
    ) -> Response:
        who = _principal(request)
        if who is None:
            return login_page(request, 401)
        loc = _locale(request)
        data = await run_in_threadpool(
            programs_data, request.app.state.store, who, request.app.state.hooks.now(), loc
        )
        return _page(
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
            request, message=_locale(request)("Done.") if request.query_params.get("done") else ""
        )

    @app.post("/ui/grants", include_in_schema=False)
    async def create_grant(request: Request) -> Response:
        who, form, bad = await _checked(request)
        if bad is not None:
            return bad
        loc = _locale(request)
        body: dict[str, Any] = {"program": form.get("program", ""), "tenant": form.get("tenant", "")}
        amount = form.get("amount_krw", "").replace(",", "").replace("₩", "").strip()
        body["amount_krw"] = int(amount) if amount.isdigit() else amount
        if form.get("id", "").strip():
            body["id"] = form["id"].strip()
        if form.get("end", "").strip():
            end = _date(form["end"], loc, end_of_day=True)
            body["end"] = end if end is not None else form["end"]
        assert who is not None
        status, reason = await _act(
            request, who, programs_api.create_grant, model=programs_api.GrantIn, body=body
        )
        if status >= 400:
            return await programs_page(request, status, loc("Refused: {reason}", reason=reason))
        return RedirectResponse("/ui/programs?done=1", status_code=303)

    @app.post("/ui/grants/{grant_id}", include_in_schema=False)
    async def change_grant(request: Request, grant_id: str) -> Response:
        who, form, bad = await _checked(request)
        if bad is not None:
            return bad
        loc = _locale(request)
        amount = form.get("amount_krw", "").replace(",", "").replace("₩", "").strip()
        assert who is not None
        status, reason = await _act(
            request,
            who,
            programs_api.update_grant,
            grant_id,
            model=programs_api.GrantPatch,
            body={"amount_krw": int(amount) if amount.isdigit() else amount},
        )
        if status >= 400:
            return await programs_page(request, status, loc("Refused: {reason}", reason=reason))
        return RedirectResponse("/ui/programs?done=1", status_code=303)

    async def pool_page(request: Request, status: int = 200, error: str = "") -> Response:
        who = _principal(request)
        if who is None:
            return login_page(request, 401)
        loc = _locale(request)
        data = await run_in_threadpool(
            pool_page_data,
            request.app.state.store,
            request.app.state.catalog,
            request.app.state.hooks.now(),
            loc,
        )
        return _page(
            request,
            "pool.html",
            status,
            who=who,
            title=loc("Pool"),
            error=error,
            message=loc("Done.") if request.query_params.get("done") else "",
            **data,
        )

    @app.get("/ui/pool", include_in_schema=False)
    async def pool(request: Request) -> Response:
        return await pool_page(request)

    @app.post("/ui/nodes/{name}", include_in_schema=False)
    async def drain(request: Request, name: str) -> Response:
        who, form, bad = await _checked(request)
        if bad is not None:
            return bad
        assert who is not None
        status, reason = await _act(
            request,
            who,
            pool_api.set_node,
            name,
            model=pool_api.NodePatch,
            body={"down": form.get("down") == "1"},
        )
        if status >= 400:
            return await pool_page(request, status, _locale(request)("Refused: {reason}", reason=reason))
        return RedirectResponse("/ui/pool?done=1", status_code=303)

    @app.get("/ui/{rest:path}", include_in_schema=False)
    async def missing(request: Request, rest: str) -> Response:
        loc = _locale(request)
        return _error(
            request, 404, loc("Page not found"), loc("There is no page at this address."), _principal(request)
        )
