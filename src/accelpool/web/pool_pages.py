"""The pool: devices per type (GPUs and NPUs with vendors, down and drained capacity), utilization per
type per hour, devices wanted by waiting jobs, the registered sites (their data classes, executor, nodes and
state; taken out and brought back by admins and operators) and nodes with drain and undrain."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from accelpool.api.auth import Principal
from accelpool.api.routers import pool as pool_api
from accelpool.api.routers import sites as sites_api
from accelpool.storage import dashboard as read
from accelpool.storage.sql import SqlStore
from accelpool.web import charts
from accelpool.web.frame import act, form_action, locale, login_page, principal, render
from accelpool.web.i18n import Locale


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
    data["sites"] = site_rows(store, data["nodes"], loc)
    return data


DATA_CLASS_WORDS = {  # the Korean catalogue's keys of the data classes (English shows the class itself)
    "public": "data class public",
    "personal": "data class personal",
    "financial": "data class financial",
    "public-sector": "data class public-sector",
}


def site_rows(store: SqlStore, nodes: list[dict[str, Any]], loc: Locale) -> list[dict[str, Any]]:
    """The registered sites (none: the pool is one implicit site, and the section is left out), each with
    its nodes and devices and, when an operator took it out, who, when and why."""
    out = []
    for s in store.sites():
        mine = [n for n in nodes if n.get("site") == s.id]
        out.append(
            {
                "id": s.id,
                "operator": s.operator,
                "region": s.region,
                "data_classes": [
                    loc(DATA_CLASS_WORDS.get(d, d)) if loc.lang == "ko" else d for d in sorted(s.data_classes)
                ],
                "executor": s.executor,
                "nodes": len(mine),
                "devices": sum(n["devices"] for n in mine),
                "down": s.down,
                "held": s.held,
                "by": s.down_by,
                "at": loc.when(s.down_at) if s.down_at is not None else "",
                "reason": s.down_reason,
            }
        )
    return out


def install(app: FastAPI) -> None:
    async def pool_page(request: Request, status: int = 200, error: str = "") -> Response:
        who = principal(request)
        if who is None:
            return login_page(request, 401)
        loc = locale(request)
        data = await run_in_threadpool(
            pool_page_data,
            request.app.state.store,
            request.app.state.catalog,
            request.app.state.hooks.now(),
            loc,
        )
        return render(
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
        async def run(who: Principal, form: dict[str, str]) -> tuple[int, str]:
            body = {"down": form.get("down") == "1"}
            return await act(request, who, pool_api.set_node, name, model=pool_api.NodePatch, body=body)

        return await form_action(
            request, run, done="/ui/pool?done=1", refused=lambda st, error: pool_page(request, st, error)
        )

    @app.post("/ui/sites/{site_id}", include_in_schema=False)
    async def site_state(request: Request, site_id: str) -> Response:
        async def run(who: Principal, form: dict[str, str]) -> tuple[int, str]:
            down = form.get("down") == "1"
            body: dict[str, Any] = {"down": down}
            if down and form.get("reason", "").strip():
                body["reason"] = form["reason"].strip()[:500]
            return await act(request, who, sites_api.set_site, site_id, model=sites_api.SitePatch, body=body)

        return await form_action(
            request, run, done="/ui/pool?done=1", refused=lambda st, error: pool_page(request, st, error)
        )
