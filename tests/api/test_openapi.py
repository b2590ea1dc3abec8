"""The OpenAPI document describes the real answers (issue 12, item 5); tests/torture/test_fuzz.py checks
real answers against it."""

from __future__ import annotations

from accelpool.api.openapi import ROUTES


def test_every_route_is_documented_with_models_errors_and_the_bearer_scheme(world):
    doc = world.client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    routes = {(m, path) for path, ops in doc["paths"].items() for m in ops}
    assert routes == set(ROUTES), routes ^ set(ROUTES)
    for (method, path), (ok, own) in ROUTES.items():
        op = doc["paths"][path][method]
        for status in ok:
            assert str(status) in op["responses"]
        for status in own + (414, 422):
            schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}
        if path.startswith("/api/v1/"):
            assert op["security"] == [{"bearer": []}] and "401" in op["responses"]


def test_a_real_error_and_a_real_job_match_their_documented_shapes(world):
    doc = world.client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    r = world.submit(resources={"type": "nope", "count": 1})
    assert r.status_code == 422
    assert set(r.json()) == set(schemas["ErrorBody"]["properties"])
    assert set(r.json()["error"]) == set(schemas["ErrorDetail"]["properties"])
    job = world.submit().json()
    assert set(schemas["JobOut"]["required"]) <= set(job) <= set(schemas["JobOut"]["properties"])


def test_405_lists_every_method_of_the_path(world):
    r = world.call("admin", "DELETE", "/api/v1/jobs")
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"


def test_unknown_query_parameters_are_422_naming_them(world):
    r = world.call("admin", "GET", "/api/v1/jobs?stat=running")
    assert r.status_code == 422 and r.json()["error"]["field"] == "stat"
