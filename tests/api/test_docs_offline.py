"""/docs and /redoc load only same-origin assets (issue 12, item 5): they work on an air-gapped pool."""

from __future__ import annotations

import re

import pytest


def _refs(html: str) -> list[str]:
    """Every URL the page loads or points at: src/href attributes and string literals that look like URLs."""
    attrs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    literals = re.findall(r"""["'`]((?:https?:)?//[^"'`]+)["'`]""", html)
    urls = re.findall(r"""url\(\s*["']?([^)"']+)""", html)
    return attrs + literals + urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_pages_reference_only_same_origin_assets_that_are_served(world, page):
    r = world.client.get(page)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    refs = _refs(r.text)
    assert refs, r.text
    for ref in refs:
        assert not re.match(r"^(?:[a-z]+:)?//", ref, re.I), f"{page} loads {ref} from another origin"
    for ref in refs:
        if ref.startswith("/"):
            got = world.client.get(ref)
            assert got.status_code == 200 and len(got.content) > 1000, ref
    assert "/openapi.json" in r.text


def test_swagger_ui_does_not_call_the_online_validator(world):
    html = world.client.get("/docs").text
    assert '"validatorUrl": null' in html


def test_bundled_scripts_are_there(world):
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        r = world.client.get(f"/docs-static/{name}")
        assert r.status_code == 200 and len(r.content) > 100_000, name
