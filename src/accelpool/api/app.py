"""The FastAPI app factory: REST under /api/v1, /healthz, Prometheus /metrics, OpenAPI at /openapi.json.

The app only reads and writes the store; the service's reconciler loop does the scheduling. ``hooks``
let the service react at once: wake the loop on a submission, stop the process of a cancelled job, read
a job's logs from the executor.
"""

from __future__ import annotations

import inspect
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.concurrency import run_in_threadpool

from accelpool.api import docs, errors, openapi
from accelpool.api.auth import TokenCache
from accelpool.api.fastpath import FastRoutes
from accelpool.api.limits import Limits, RequestLimits, known_query_only
from accelpool.catalog import bundled_catalog
from accelpool.core.types import AcceleratorType
from accelpool.storage.sql import SqlStore

# Submissions wake the scheduling loop at most this often: under a burst of submissions one round takes
# them all, instead of rounds running back to back (each reads every active job).
WAKE_INTERVAL = 1.0


@dataclass
class Hooks:
    wake: Callable[[], None] = lambda: None
    stop_job: Callable[[str], None] = lambda job_id: None
    logs: Callable[[str], str] = lambda job_id: ""
    now: Callable[[], float] = time.time
    # seconds until the scheduler's next round is due (negative: overdue; None: this process cannot know);
    # the dashboard says when a new job, not yet ranked, gets its estimated start
    next_round: Callable[[], float | None] = lambda: None


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.submissions = Counter("accelpool_submissions", "Jobs accepted (201)", registry=r)
        self.rejections = Counter("accelpool_rejections", "Submissions refused", ["status"], registry=r)
        self.jobs = Gauge("accelpool_jobs", "Jobs by state", ["state"], registry=r)
        self.rounds = Counter("accelpool_rounds", "Scheduling rounds run", registry=r)
        self.round_seconds = Histogram(
            "accelpool_round_seconds",
            "Round duration (s)",
            registry=r,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
        )
        self.devices = Gauge(
            "accelpool_devices", "Devices by type and use", ["accelerator", "use"], registry=r
        )


def create_app(
    store: SqlStore,
    *,
    hooks: Hooks | None = None,
    catalog: Mapping[str, AcceleratorType] | None = None,
    metrics: Metrics | None = None,
    limits: Limits | None = None,
) -> FastAPI:
    from accelpool.api.routers import ROUTERS

    app = FastAPI(
        **_telemetry_off_unless_configured(),
        title="accelpool",
        version="1",
        openapi_url="/openapi.json",
        docs_url=None,  # served from bundled assets by api.docs
        redoc_url=None,
        description="Shared pool of GPUs and Korean NPUs: jobs, grants in KRW, programs, usage.",
    )
    app.state.store = store
    app.state.hooks = hooks or Hooks()
    app.state.catalog = catalog if catalog is not None else bundled_catalog()
    app.state.metrics = metrics or Metrics()
    # token expiry is wall-clock time, as tokens are stamped when made (routers/tokens.py)
    app.state.tokens = TokenCache(store, now=time.time)
    app.state.wake_soon = _Waker(app.state.hooks)
    store.max_active_jobs = (limits or Limits()).max_active_jobs  # checked with each submission's write
    errors.install(app)
    from accelpool.api.routers.jobs import submit_route

    # inside RequestLimits: every limit applies first
    app.add_middleware(FastRoutes, routes={("POST", "/api/v1/jobs"): submit_route()})
    app.add_middleware(RequestLimits, limits=limits)
    docs.install(app)
    openapi.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix="/api/v1", dependencies=[Depends(known_query_only)])

    health = _Health(store)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> Response:
        """ok when the database answered within the last second (it is asked at most once a second)."""
        if not health.ok():
            await run_in_threadpool(health.check)
        return errors.json_response({"status": "ok"})

    read_at = [float("-inf")]
    read_lock = threading.Lock()

    @app.get("/metrics", tags=["ops"])
    def metrics_endpoint(request: Request) -> Response:
        """Prometheus text, without a login (as exporters are: pool-wide counts by state and type, no tenant
        or job names). The database is read at most once a second, however often it is asked (a review:
        an anonymous flood made every request count the jobs table)."""
        m: Metrics = request.app.state.metrics
        with read_lock:
            if time.monotonic() - read_at[0] >= 1.0:
                _read_gauges(m)
                read_at[0] = time.monotonic()
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    def _read_gauges(m: Metrics) -> None:
        for state, n in store.counts().items():
            m.jobs.labels(state=state).set(n)
        busy = store.busy_devices()
        totals: dict[str, list[int]] = {}
        for node in store.list_nodes():
            t = totals.setdefault(node.accelerator, [0, 0])
            t[0] += node.devices
            t[1] += busy.get(node.name, 0)
        for acc, (total, used) in totals.items():
            m.devices.labels(accelerator=acc, use="total").set(total)
            m.devices.labels(accelerator=acc, use="busy").set(used)

    try:
        from accelpool.web.pages import install as install_web
    except ImportError:  # pragma: no cover - the dashboard needs jinja2
        pass
    else:
        install_web(app)
    return app


_OTEL_VARIABLES = (
    "OTEL_PYTHON_TRACER_PROVIDER",
    "OTEL_PYTHON_METER_PROVIDER",
    "OTEL_PYTHON_LOGGER_PROVIDER",
    "FASTAPI_OTEL_AUTO_CONFIGURE",
)


def _telemetry_off_unless_configured() -> dict[str, Any]:
    """FastAPI (0.13x and later) asks OpenTelemetry on every request whether a provider is configured
    (several look-ups, environment reads included: about 5% of a submission's CPU in the API). accelpool
    configures none; unless an ``OTEL_PYTHON_*_PROVIDER`` variable (or ``FASTAPI_OTEL_AUTO_CONFIGURE``) is
    set when the app is made, FastAPI's native telemetry is turned off once here."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    if any(os.environ.get(v) for v in _OTEL_VARIABLES):
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


class _Waker:
    """``hooks.wake`` at most once per WAKE_INTERVAL (a wake in between is folded into the next round)."""

    def __init__(self, hooks: Hooks) -> None:
        self.hooks = hooks
        self._last = -1e18
        self._lock = threading.Lock()

    def __call__(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < WAKE_INTERVAL:
                return
            self._last = now
        self.hooks.wake()


class _Health:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self._at = -1e18

    def ok(self) -> bool:
        return time.monotonic() - self._at < 1.0

    def check(self) -> None:
        with self.store.read() as c:
            c.exec_driver_sql("SELECT 1")  # raises (500) when the database does not answer
        self._at = time.monotonic()
