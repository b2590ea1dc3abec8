"""One router per resource under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from accelpool.api.routers import jobs, pool, programs, sites, tenants, tokens, usage

ROUTERS: tuple[APIRouter, ...] = (
    jobs.router,
    usage.router,
    tenants.router,
    programs.router,
    pool.router,
    sites.router,
    tokens.router,
)
