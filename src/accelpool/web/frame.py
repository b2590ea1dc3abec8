"""What every dashboard page shares: who is asking (API token or session cookie), the language and zone,
rendering a template with the frame's context and security headers, HTML error pages, the CSRF key and
form checks, and running the REST API's own handler for an action as the signed-in user.

Auth is the API's: the same bearer tokens, sent as ``Authorization: Bearer`` or a dashboard session kept in
an HttpOnly, SameSite=Strict cookie set by the login form (``POST /ui/login``; the token never goes into a
URL or a cookie). Actions are forms carrying a CSRF key bound to the sign-in; their handlers forward them
to the REST API in-process as the user, so the rules, the checks and the error messages are the API's own.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from accelpool.api import errors as api_errors
from accelpool.api.auth import Principal
from accelpool.core.errors import Conflict, InputError
from accelpool.storage import sessions
from accelpool.web.i18n import DEFAULT_ZONE, ZONES, Locale, negotiate, unranked, zone

COOKIE = "accelpool_token"
LANG_COOKIE = "accelpool_lang"
TZ_COOKIE = "accelpool_tz"
LIVE_SECONDS = 5
SESSION_SECONDS = 12 * 3600
SESSION_CACHE = 5.0
QUEUED_STATES = ["queued", "preempted"]
OVERVIEW_LIMIT = 50  # rows per table on the overview; the jobs page pages through the rest
PER_PAGE = 50
LOG_LINES = 200
RUNOUT_YEARS = 100
STATES = ("queued", "running", "preempted", "succeeded", "failed", "cancelled")
HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    # not no-referrer: with it Chromium sends "Origin: null" on the page's own form posts, which the
    # same-origin check must refuse (every action was refused in a real browser); nothing leaves the origin
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    # nothing from another origin: scripts, styles, images and fonts all come from this server
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'",
}


# -- who, language, zone --------------------------------------------------------------------------------


def bearer_of(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def secret_of(request: Request) -> str:
    """The credential this request carries: an API token (Authorization: Bearer) or a session secret."""
    return bearer_of(request) or request.cookies.get(COOKIE, "").strip()


def principal(request: Request) -> Principal | None:
    """Who is asking: an API token in the Authorization header, or a dashboard session in the cookie
    (looked up at most once per SESSION_CACHE seconds per session, and again after any write that could
    revoke it). Job tokens are not accepted here."""
    bearer = bearer_of(request)
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


def locale(request: Request) -> Locale:
    lang = negotiate(request.headers.get("accept-language"), request.cookies.get(LANG_COOKIE))
    default = getattr(request.app.state, "ui_timezone", None) or DEFAULT_ZONE
    return Locale(lang, zone(request.cookies.get(TZ_COOKIE), default))


def csrf_key(request: Request) -> str:
    """A per-sign-in form key: HMAC of the session secret (or bearer token) under a per-process key."""
    key = getattr(request.app.state, "ui_csrf_key", None)
    if key is None:
        key = request.app.state.ui_csrf_key = secrets.token_bytes(32)
    return hmac.new(key, secret_of(request).encode(), hashlib.sha256).hexdigest()[:40]


def who_label(who: Principal, loc: Locale) -> str:
    t = who.token
    scope = t.tenant or t.program or ""
    return f"{t.name or t.id} ({loc(t.role)}{': ' + scope if scope else ''})"


def render(
    request: Request, name: str, status: int = 200, who: Principal | None = None, **ctx: Any
) -> HTMLResponse:
    loc = locale(request)
    hooks = request.app.state.hooks
    now = hooks.now()
    next_in: list[float | None] = []

    def estimate(v: Any) -> str:  # a waiting job's start in words; the next round's time read once
        if not next_in:
            next_in.append(hooks.next_round())
        return loc.start_estimate(v, next_in[0])

    html = env.get_template(name).render(
        _=loc,
        loc=loc,
        who=who,
        who_label=who_label(who, loc) if who else "",
        partial=request.headers.get("x-live") == "1",
        path=request.url.path,
        here=str(request.url.path) + (("?" + request.url.query) if request.url.query else ""),
        updated=loc.when(now, seconds=True),
        live_seconds=LIVE_SECONDS,
        zones=ZONES,
        csrf=csrf_key(request) if who else "",
        estimate=estimate,
        unranked=unranked,
        **ctx,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def error_page(
    request: Request, status: int, title: str, message: str, who: Principal | None = None
) -> HTMLResponse:
    return render(request, "error.html", status, who=who, title=title, message=message)


def login_page(request: Request, status: int = 200, error: str | None = None) -> HTMLResponse:
    return render(request, "login.html", status, title=locale(request)("Sign in"), error=error)


# -- what several pages show ---------------------------------------------------------------------------


def placement_text(p: dict[str, Any] | None) -> str:
    if not p:
        return ""
    parts = [f"{node}[{','.join(str(d) for d in devs)}]" for node, devs in p.get("devices", [])]
    return f"{p.get('accelerator', '')}: " + " ".join(parts)


def wants_text(spec: dict[str, Any], loc: Locale) -> str:
    allowed = spec.get("allowed") or []
    return f"{spec.get('scale', 1)} x {' | '.join(allowed) if allowed else loc('any')}"


# -- forwarding actions to the API ----------------------------------------------------------------------


async def act(
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


async def read_form(request: Request) -> dict[str, str]:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    return {k: v[0] for k, v in form.items()}


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def parse_date(s: str, loc: Locale, end_of_day: bool = False) -> float | None:
    try:
        d = datetime.strptime(s.strip(), "%Y-%m-%d").replace(tzinfo=loc.tz)
    except ValueError:
        return None
    return d.timestamp() + (86400 if end_of_day else 0)


async def checked(request: Request) -> tuple[Principal | None, dict[str, str], Response | None]:
    who = principal(request)
    loc = locale(request)
    if who is None:
        return None, {}, login_page(request, 401)
    form = await read_form(request)
    if not same_origin(request) or not hmac.compare_digest(form.get("csrf", ""), csrf_key(request)):
        return (
            who,
            form,
            error_page(
                request,
                403,
                loc("Refused: {reason}", reason="CSRF"),
                loc("The form expired; please try again."),
                who,
            ),
        )
    return who, form, None


async def form_action(
    request: Request,
    run: Callable[[Principal, dict[str, str]], Awaitable[tuple[int, str]]],
    *,
    done: str,
    refused: Callable[[int, str], Awaitable[Response]],
) -> Response:
    """What every action form's handler does: check the sign-in, the origin and the form key (``checked``:
    else the sign-in page or a 403 page), ``run(who, form)`` (the action, usually ``act``: the API's
    handler as the user), then on a refusal ``refused(status, "Refused: <reason>")`` (the page again,
    with the API's status) and otherwise a redirect (303) to ``done``."""
    who, form, bad = await checked(request)
    if bad is not None:
        return bad
    assert who is not None
    status, reason = await run(who, form)
    if status >= 400:
        return await refused(status, locale(request)("Refused: {reason}", reason=reason))
    return RedirectResponse(done, status_code=303)
