"""The hottest route answered without Starlette's per-request routing layers.

``POST /api/v1/jobs`` is the one route whose rate matters (a pool's tenants submit thousands of jobs a
second in bursts). Starlette answers a request by passing it through its exception middleware, FastAPI's
exit-stack middleware, the router (which tries every route in turn), the included router and the route's
request/response wrapper: about a third of the CPU the API spends on a submission (measured:
``bench/bench_api.py``, docs/reliability.md). ``FastRoutes`` sits inside ``RequestLimits`` (so every limit
still applies, and the body it parsed is reused) and answers that route itself with the route's own
handler, converting the handler's exceptions with the app's own exception handlers, as Starlette's
exception middleware would. Anything it does not handle (another path or method, a ``root_path``) goes on
to the app unchanged; an exception no handler takes (a 500) propagates to the server-error middleware as
before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from inspect import iscoroutinefunction
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from accelpool.api.limits import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]


class FastRoutes:
    """ASGI middleware: (method, path) -> (handler, the route object that documents it; it is what
    ``scope['route']`` holds for the handler, as the router would set it)."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], tuple[Handler, Any]]) -> None:
        self.app = app
        self.routes = routes
        self._handlers: tuple[dict[Any, Any], dict[int, Any]] | None = None

    def _exception_handlers(self, app: Any) -> tuple[dict[Any, Any], dict[int, Any]]:
        if self._handlers is None:
            by_class: dict[Any, Any] = {}
            by_status: dict[int, Any] = {}
            for key, handler in app.exception_handlers.items():
                if isinstance(key, int):
                    if key != 500:
                        by_status[key] = handler
                elif key is not Exception:  # 500s: the server-error middleware's, as before
                    by_class[key] = handler
            self._handlers = (by_class, by_status)
        return self._handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (
            self.routes.get((scope["method"], scope["path"]))
            if scope["type"] == "http" and not scope.get("root_path")
            else None
        )
        if found is None:
            await self.app(scope, receive, send)
            return
        handler, route = found
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        request = Request(scope, receive, send)
        response: Any
        try:
            response = await handler(request)
        except Exception as exc:
            by_class, by_status = self._exception_handlers(scope["app"])
            exc_handler: Any = by_status.get(exc.status_code) if isinstance(exc, HTTPException) else None
            exc_handler = exc_handler or next((by_class[c] for c in type(exc).__mro__ if c in by_class), None)
            if exc_handler is None:
                raise
            if iscoroutinefunction(exc_handler):
                response = await exc_handler(request, exc)
            else:
                response = await run_in_threadpool(exc_handler, request, exc)
            exc.__traceback__ = None
        await response(scope, receive, send)
