"""API errors: every 4xx names the field (when there is one) and the reason.

Body: ``{"error": {"status": 404, "field": "job", "reason": "no such job"}}``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from accelpool.core.errors import Conflict, InputError, NotFound
from accelpool.storage.engine import STORE_UNAVAILABLE, transient

log = logging.getLogger(__name__)

try:
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover - orjson is optional; the stdlib is slower, same output
    import json

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(content: Any, status: int = 200) -> Response:
    """A JSON answer serialised with orjson (when installed), skipping FastAPI's encoder."""
    return Response(_dumps(content), status_code=status, media_type="application/json")


class ApiError(Exception):
    def __init__(self, status: int, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.field = status, reason, field


def not_found(what: str, field: str | None = None) -> ApiError:
    return ApiError(404, f"no such {what}", field or what)


def body(status: int, reason: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"status": status, "field": field, "reason": reason}}


_UNION_MEMBERS = {"Resources", "Alternative", "Constraints", "list", "dict", "int", "float", "str", "bool"}


def _loc(loc: tuple[Any, ...]) -> str:
    """The field as the caller wrote it: pydantic's internal steps (``function-after[...]``, the union
    member tried, ``list[...]``) left out, e.g. ``resources.count``."""
    parts = []
    for p in loc:
        if p in ("body", "query", "path", "header"):
            continue
        if isinstance(p, str) and ("[" in p or p in _UNION_MEMBERS or p.startswith("function-")):
            continue
        parts.append(str(p))
    return ".".join(parts) or "(request)"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(body(exc.status, exc.reason, exc.field), status_code=exc.status)

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(body(422, exc.message, exc.field), status_code=422)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse(body(409, exc.message, exc.field), status_code=409)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(body(404, str(exc)), status_code=404)

    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        # nothing was stored (the transaction rolled back): the client may send it again (a review saw 500
        # on POST /jobs with the database's disk full); the database's own words stay in the service's log.
        # SQLite raises the same class for a schema or SQL mistake: that stays a 500, with its traceback
        if not transient(exc):
            log.error("the database failed a request", exc_info=exc)
            return JSONResponse(body(500, "the server failed; the request was not applied"), status_code=500)
        log.warning("the database refused a request: %s", str(exc)[:300])
        reason = "the pool's database cannot take this now (nothing was stored); try again shortly"
        return JSONResponse(body(503, reason), status_code=503, headers={"Retry-After": "5"})

    for cls in STORE_UNAVAILABLE:
        app.add_exception_handler(cls, _unavailable)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        reason = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "json_invalid":
            # the body is not JSON: say where in it (its loc holds a character position, not a field)
            loc = tuple(err.get("loc", ()))
            ctx = err.get("ctx")
            why = str(ctx.get("error", "")) if isinstance(ctx, dict) else ""
            at = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
            return JSONResponse(
                body(422, f"the body is not valid JSON{at}: {why}".rstrip(": "), "(body)"), 422
            )
        if err.get("type") == "missing" and tuple(err.get("loc", ())) == ("body",):
            return JSONResponse(body(422, "a JSON body is required", "(body)"), status_code=422)
        return JSONResponse(body(422, reason, _loc(tuple(err.get("loc", ())))), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Allow lists every method of the path (RFC 9110), not one route's
            methods = _documented_methods(request)
            if methods:
                headers["Allow"] = ", ".join(methods)
        return JSONResponse(
            body(exc.status_code, str(exc.detail)), status_code=exc.status_code, headers=headers
        )


def _documented_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document lists for the request's path (empty for an undocumented path)."""
    import re

    path = request.url.path
    for template, ops in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path):
            return sorted(m.upper() for m in ops)
    return []
