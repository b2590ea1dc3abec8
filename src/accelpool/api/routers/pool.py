"""The pool: nodes and prices."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field

from accelpool.api.errors import ApiError, not_found
from accelpool.api.routers.common import ID_PATTERN, Price, StrictIn, Who, store_of
from accelpool.core.types import Node

router = APIRouter()


class NodeIn(StrictIn):
    name: str = Field(pattern=ID_PATTERN)
    accelerator: str
    devices: Annotated[int, Field(strict=True, ge=1, le=1024)]
    zone: str = Field(default="default", pattern=ID_PATTERN)
    site: str = Field(default="default", pattern=ID_PATTERN, description="the site the node belongs to")


class NodePatch(StrictIn):
    down: bool | None = None
    devices: Annotated[int, Field(strict=True, ge=1, le=1024)] | None = Field(
        default=None, description="never below the devices running jobs hold (drain first)"
    )
    zone: str | None = Field(
        default=None, pattern=ID_PATTERN, description="only while no job runs on the node"
    )


@router.get("/nodes", tags=["pool"])
def list_nodes(request: Request, who: Who) -> dict[str, Any]:
    store = store_of(request)
    busy = store.busy_devices()
    return {"items": [{**asdict(n), "busy": busy.get(n.name, 0)} for n in store.list_nodes()]}


@router.post("/nodes", status_code=201, tags=["pool"])
def add_node(body: NodeIn, request: Request, who: Who) -> dict[str, Any]:
    """Add a node (admins, operators). 409 when one of that name exists: change it with ``PUT /nodes/{name}``."""
    who.require("admin", "operator")
    catalog = request.app.state.catalog
    if body.accelerator not in catalog:
        raise ApiError(422, f"unknown accelerator type '{body.accelerator}'", "accelerator")
    acc = catalog.resolve(body.accelerator) if hasattr(catalog, "resolve") else body.accelerator
    store = store_of(request)
    if body.site != "default" and body.site not in {s.id for s in store.sites()}:
        raise ApiError(422, f"unknown site '{body.site}' (register it with POST /sites)", "site")
    store.create_node(Node(body.name, acc, body.devices, body.zone, site=body.site))
    request.app.state.hooks.wake()
    out: dict[str, Any] = {
        "name": body.name,
        "accelerator": acc,
        "devices": body.devices,
        "zone": body.zone,
        "down": False,
        "site": body.site,
    }
    site = next((x for x in store.sites() if x.id == body.site), None)
    if acc not in store.prices() and (site is None or acc not in site.prices):
        # an operator's test: a type without a price ran jobs for nothing, and nothing said so
        out["notes"] = [
            f"{acc} has no price (in the pool or at site {body.site}): jobs on this node are not charged; "
            f"set one with PUT /prices (accelpool prices set {acc}=KRW)"
        ]
    return out


@router.put("/nodes/{name}", tags=["pool"])
def set_node(name: str, body: NodePatch, request: Request, who: Who) -> dict[str, Any]:
    """Drain (``down``), resize or move a node (admins, operators); 409 when running jobs hold what would go."""
    who.require("admin", "operator")
    n = store_of(request).update_node(name, devices=body.devices, zone=body.zone, down=body.down)
    if n is None:
        raise not_found("node")
    request.app.state.hooks.wake()
    return {
        "name": n.name,
        "accelerator": n.accelerator,
        "devices": n.devices,
        "zone": n.zone,
        "down": n.down,
    }


@router.delete("/nodes/{name}", tags=["pool"])
def remove_node(name: str, request: Request, who: Who) -> dict[str, Any]:
    """Take a node out of the pool for good (admins, operators); 409 while running jobs hold devices on it
    (drain it first). A node the executor reports (Ray, Slurm) comes back at its next sync while it is there:
    drain those instead."""
    who.require("admin", "operator")
    if not store_of(request).remove_node(name):
        raise not_found("node")
    request.app.state.hooks.wake()
    return {"name": name, "removed": True}


@router.get("/prices", tags=["pool"])
def get_prices(request: Request, who: Who) -> dict[str, Any]:
    return {"krw_per_device_hour": dict(sorted(store_of(request).prices().items()))}


@router.put("/prices", tags=["pool"])
def put_prices(body: dict[str, Price], request: Request, who: Who) -> dict[str, Any]:
    """Set KRW per device-hour for the types given (JSON integers, 0 .. 10^9)."""
    who.require("admin", "operator")
    catalog = request.app.state.catalog
    for k in body:
        if k not in catalog:
            raise ApiError(422, f"unknown accelerator type '{k}'", k)
    store = store_of(request)
    store.set_prices(body)
    return {"krw_per_device_hour": dict(sorted(store.prices().items()))}
