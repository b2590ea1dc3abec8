"""Usage: device-hours and KRW grouped like sacct/sreport."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from accelpool.api.auth import one_visible, visible_programs, visible_tenants
from accelpool.api.routers.common import Who, store_of
from accelpool.storage.queries import PERIODS

router = APIRouter()


@router.get("/usage", tags=["usage"])
def usage(
    request: Request,
    who: Who,
    by: Annotated[list[Literal["tenant", "program", "accelerator", "site"]] | None, Query()] = None,
    period: Annotated[Literal["hour", "day", "week", "month", "year"] | None, Query()] = None,
    since: Annotated[float | None, Query(ge=0, le=1e11, allow_inf_nan=False)] = None,
    until: Annotated[float | None, Query(ge=0, le=1e11, allow_inf_nan=False)] = None,
    days: Annotated[
        float | None, Query(gt=0, le=36600, allow_inf_nan=False, description="only the last N days")
    ] = None,
    tenant: str | None = None,
    program: str | None = None,
) -> dict[str, Any]:
    """Device-hours and KRW, like sacct/sreport: grouped by tenant, program, accelerator type, site,
    period (by default: tenant, program, accelerator type and site; the implicit site is ``default``)."""
    store = store_of(request)
    if days is not None:
        since = max(since or 0.0, request.app.state.hooks.now() - days * 86400)
    tenants = visible_tenants(store, who)
    programs = visible_programs(store, who) if who.role == "program-manager" else None
    if tenant is not None:
        tenants = one_visible(tenants, lambda: {t.id for t in store.list_tenants()}, tenant, "tenant")
    if program is not None:
        seen = visible_programs(store, who)
        programs = one_visible(seen, lambda: {p.id for p in store.list_programs()}, program, "program")
    rows = store.usage(
        group_by=by or ["tenant", "program", "accelerator", "site"],
        period=period,
        since=since,
        until=until,
        tenants=tenants,
        programs=programs,
    )
    total_krw = sum(r.krw for r in rows)
    return {
        "items": [asdict(r) for r in rows],
        "total_krw": total_krw,
        "total_device_hours": round(sum(r.device_hours for r in rows), 6),
        "periods": PERIODS,
    }
