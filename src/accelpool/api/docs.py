"""Swagger UI (/docs) and ReDoc (/redoc) served from bundled files: no CDN, no third-party request, so the
pages work on an air-gapped pool.

The JavaScript and CSS come from the ``fastapi-offline`` package (MIT; it ships the swagger-ui-dist and
redoc standalone builds: https://github.com/turettn/fastapi_offline), served here under ``/docs-static``.
Swagger UI's online validator badge (validator.swagger.io) and ReDoc's Google Fonts are switched off.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_PREFIX = "/docs-static"


def static_dir() -> Path:
    """The directory holding swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and favicon.png."""
    return Path(str(resources.files("fastapi_offline").joinpath("static")))


def install(app: FastAPI) -> None:
    """Serve /docs, /docs/oauth2-redirect and /redoc from the bundled assets (create the app with
    ``docs_url=None, redoc_url=None``)."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=static_dir()), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title}: API",
            swagger_js_url=f"{STATIC_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PREFIX}/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title}: API (ReDoc)",
            redoc_js_url=f"{STATIC_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_PREFIX}/favicon.png",
            with_google_fonts=False,
        )
