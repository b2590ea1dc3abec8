"""A small read-only dashboard at ``/ui``: the pool, the queue with wait reasons and positions, running jobs
with their placements, grant balances.

Auth is the API's: the same bearer tokens, sent as ``Authorization: Bearer`` or kept in an HttpOnly,
SameSite=Strict cookie set by the login form (``POST /ui/login``; the token never goes into a URL). What
a page shows follows the API's visibility rules: a member sees its tenant's jobs and grants, a program
manager its program's, an admin everything; the pool (nodes, devices busy and free) is shared and shown to
every role, as ``GET /api/v1/nodes`` is.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import DictLoader, Environment, select_autoescape
from starlette.concurrency import run_in_threadpool

from accelpool.api.auth import Principal, visible_tenants
from accelpool.storage.sql import SqlStore

COOKIE = "accelpool_token"
_QUEUED = ["queued", "preempted"]
_LIMIT = 200  # rows per table; the API lists the rest

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>accelpool{% if title %} - {{ title }}{% endif %}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
 header{background:#1d2330;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1rem;align-items:baseline}
 header h1{font-size:1.1rem;margin:0} header .who{margin-left:auto;font-size:.85rem;opacity:.85}
 header a{color:#9cc3ff} main{padding:1rem 1.2rem;max-width:1200px}
 section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:.6rem 1rem;margin-bottom:1rem}
 h2{font-size:1rem;margin:.2rem 0 .6rem} table{border-collapse:collapse;width:100%;font-size:.85rem}
 th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eef0f3;vertical-align:top}
 th{color:#5a6475;font-weight:600} .n{text-align:right;font-variant-numeric:tabular-nums}
 .bar{background:#e4e8ee;border-radius:3px;height:.7rem;width:9rem;display:inline-block;vertical-align:middle}
 .bar i{display:block;height:100%;background:#3b7ddd;border-radius:3px}
 .down{color:#b3261e} .muted{color:#7a8494} .state{font-weight:600}
 .running{color:#1f7a3a} .queued{color:#8a5a00} .preempted{color:#b3261e}
 form.login{max-width:28rem} input[type=password]{width:100%;padding:.4rem;font-size:.95rem}
 button{margin-top:.6rem;padding:.4rem 1rem}
</style></head><body>
<header><h1>accelpool</h1><span class="muted">{{ title }}</span>
{% if who %}<span class="who">{{ who }} &middot; <a href="/ui/logout">log out</a></span>{% endif %}</header>
<main>{% block body %}{% endblock %}</main></body></html>"""

_LOGIN = """{% extends "base.html" %}{% block body %}
<section><h2>Sign in with an API token</h2>
{% if error %}<p class="down">{{ error }}</p>{% endif %}
<form class="login" method="post" action="/ui/login">
<label for="token">Token (e.g. the contents of <code>~/.accelpool/admin-token</code>)</label>
<input id="token" name="token" type="password" autocomplete="off" autofocus>
<button type="submit">Sign in</button></form>
<p class="muted">The token is kept in an HttpOnly cookie for this site; the dashboard is read-only.</p>
</section>{% endblock %}"""

_DASHBOARD = """{% extends "base.html" %}{% block body %}
<section><h2>Pool</h2>
<table><tr><th>Type</th><th class="n">Devices</th><th class="n">Busy</th><th class="n">Free</th><th class="n">Down</th>
<th>Use</th></tr>
{% for t in types %}<tr><td>{{ t.type }}</td><td class="n">{{ t.total }}</td><td class="n">{{ t.busy }}</td>
<td class="n">{{ t.free }}</td><td class="n">{{ t.down }}</td>
<td><span class="bar"><i style="width:{{ t.pct }}%"></i></span> {{ t.pct }}%</td></tr>
{% else %}<tr><td colspan="6" class="muted">no nodes</td></tr>{% endfor %}</table>
<details><summary class="muted">{{ nodes|length }} nodes</summary>
<table><tr><th>Node</th><th>Type</th><th>Zone</th><th class="n">Devices</th><th class="n">Busy</th><th></th></tr>
{% for n in nodes %}<tr><td>{{ n.name }}</td><td>{{ n.accelerator }}</td><td>{{ n.zone }}</td>
<td class="n">{{ n.devices }}</td><td class="n">{{ n.busy }}</td><td>{% if n.down %}<span class="down">down</span>{% endif %}</td></tr>
{% endfor %}</table></details></section>

<section><h2>Running ({{ running|length }}{% if running_more %}+{% endif %})</h2>
<table><tr><th>Job</th><th>Name</th><th>Tenant</th><th>Placement</th><th class="n">Steps</th><th class="n">Running for</th></tr>
{% for j in running %}<tr><td>{{ j.id }}</td><td>{{ j.name }}</td><td>{{ j.tenant }}</td><td>{{ j.placement }}</td>
<td class="n">{{ j.steps }}</td><td class="n">{{ j.age }}</td></tr>
{% else %}<tr><td colspan="6" class="muted">nothing running</td></tr>{% endfor %}</table></section>

<section><h2>Queue ({{ queue|length }}{% if queue_more %}+{% endif %})</h2>
<table><tr><th class="n">#</th><th>Job</th><th>Name</th><th>Tenant</th><th>State</th><th>Wants</th><th>Waiting because</th>
<th class="n">Waiting for</th></tr>
{% for j in queue %}<tr><td class="n">{{ j.position if j.position is not none else "" }}</td><td>{{ j.id }}</td>
<td>{{ j.name }}</td><td>{{ j.tenant }}</td><td class="state {{ j.state }}">{{ j.state }}</td><td>{{ j.wants }}</td>
<td>{{ j.reason }}</td><td class="n">{{ j.age }}</td></tr>
{% else %}<tr><td colspan="8" class="muted">the queue is empty</td></tr>{% endfor %}</table></section>

<section><h2>Grants</h2>
<table><tr><th>Grant</th><th>Program</th><th>Tenant</th><th class="n">Amount (KRW)</th><th class="n">Spent</th>
<th class="n">Remaining</th><th>Spent</th></tr>
{% for g in grants %}<tr><td>{{ g.id }}</td><td>{{ g.program }}</td><td>{{ g.tenant }}</td>
<td class="n">{{ "{:,}".format(g.amount_krw) }}</td><td class="n">{{ "{:,}".format(g.spent_krw) }}</td>
<td class="n">{{ "{:,}".format(g.remaining_krw) }}</td>
<td><span class="bar"><i style="width:{{ g.pct }}%"></i></span> {{ g.pct }}%</td></tr>
{% else %}<tr><td colspan="7" class="muted">no grants</td></tr>{% endfor %}</table></section>
<p class="muted">Read-only view as of {{ now }}; reload to refresh. The API (<a href="/docs">/docs</a>) does the rest.</p>
{% endblock %}"""

env = Environment(
    loader=DictLoader({"base.html": _BASE, "login.html": _LOGIN, "dashboard.html": _DASHBOARD}),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def _duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def _placement(p: dict[str, Any] | None) -> str:
    if not p:
        return ""
    parts = [f"{node}[{','.join(str(d) for d in devs)}]" for node, devs in p.get("devices", [])]
    return f"{p.get('accelerator', '')}: " + " ".join(parts)


def dashboard_data(store: SqlStore, who: Principal, now: float) -> dict[str, Any]:
    """Everything the dashboard shows, filtered by what ``who`` may see (the API's rules)."""
    tenants = visible_tenants(store, who)
    busy = store.busy_devices()
    nodes = [{**vars(n), "busy": busy.get(n.name, 0)} for n in store.list_nodes()]
    types: dict[str, dict[str, Any]] = {}
    for n in nodes:
        t = types.setdefault(n["accelerator"], {"type": n["accelerator"], "total": 0, "busy": 0, "down": 0})
        t["total"] += n["devices"]
        t["busy"] += n["busy"]
        if n["down"]:
            t["down"] += n["devices"]
    for t in types.values():
        t["free"] = max(0, t["total"] - t["busy"] - t["down"])
        t["pct"] = round(100 * t["busy"] / t["total"]) if t["total"] else 0
    running, more_r = store.list_jobs(tenants=tenants, states=["running"], limit=_LIMIT)
    queued, more_q = store.list_jobs(tenants=tenants, states=_QUEUED, limit=_LIMIT)
    queued.sort(key=lambda v: (v.position is None, v.position or 0, v.seq))
    if who.role == "program-manager":
        grants = store.list_grants(programs=[who.token.program or ""])
    else:
        grants = store.list_grants(tenants=tenants)

    def wants(v: Any) -> str:
        allowed = v.spec.get("allowed") or []
        return f"{v.spec.get('scale', 1)} x {' | '.join(allowed) if allowed else 'any'}"

    return {
        "types": sorted(types.values(), key=lambda t: t["type"]),
        "nodes": nodes,
        "running": [
            {
                "id": v.id,
                "name": v.name,
                "tenant": v.tenant,
                "placement": _placement(v.placement),
                "steps": f"{v.steps_done:g}"
                + (f" / {v.spec['total_steps']:g}" if v.spec.get("total_steps") else ""),
                "age": _duration(now - v.start_time if v.start_time else None),
            }
            for v in running
        ],
        "running_more": more_r is not None,
        "queue": [
            {
                "id": v.id,
                "name": v.name,
                "tenant": v.tenant,
                "state": v.state.value,
                "position": v.position,
                "reason": v.reason or "waiting for the next round",
                "wants": wants(v),
                "age": _duration(now - v.submit_time),
            }
            for v in queued
        ],
        "queue_more": more_q is not None,
        "grants": [
            {
                **vars(g),
                "remaining_krw": g.remaining_krw,
                "pct": round(100 * g.spent_krw / g.amount_krw) if g.amount_krw else 0,
            }
            for g in grants
        ],
    }


def _who_label(who: Principal) -> str:
    t = who.token
    scope = t.tenant or t.program or ""
    return f"{t.name or t.id} ({t.role}{': ' + scope if scope else ''})"


def _principal(request: Request) -> Principal | None:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        secret = request.cookies.get(COOKIE, "")
    if not secret.strip():
        return None
    tok = request.app.state.tokens.lookup(secret.strip())
    return None if tok is None else Principal(tok)


def _page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    html = env.get_template(name).render(**ctx)
    return HTMLResponse(
        html,
        status_code=status,
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"},
    )


def install(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/ui", status_code=303)

    @app.get("/ui", include_in_schema=False)
    async def dashboard(request: Request) -> Response:
        who = _principal(request)
        if who is None:
            return _page("login.html", 401, title="sign in", who=None, error=None)
        store: SqlStore = request.app.state.store
        now = time.time()
        data = await run_in_threadpool(dashboard_data, store, who, now)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        return _page("dashboard.html", title="dashboard", who=_who_label(who), now=stamp, **data)

    @app.post("/ui/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        secret = (form.get("token") or [""])[0].strip()
        tok = request.app.state.tokens.lookup(secret) if secret else None
        if tok is None:
            return _page("login.html", 401, title="sign in", who=None, error="unknown or revoked token")
        resp = RedirectResponse("/ui", status_code=303)
        resp.set_cookie(
            COOKIE,
            secret,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=12 * 3600,
            path="/ui",
        )
        return resp

    @app.get("/ui/logout", include_in_schema=False)
    async def logout() -> Response:
        resp = RedirectResponse("/ui", status_code=303)
        resp.delete_cookie(COOKIE, path="/ui")
        return resp
