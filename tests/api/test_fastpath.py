"""POST /api/v1/jobs is answered by api.fastpath.FastRoutes, not the router, with the same answers."""

from __future__ import annotations

from fastapi.testclient import TestClient

from accelpool.api import fastpath
from accelpool.api.routers import jobs

JOB = {"name": "x", "command": "true"}


def _without_fast_path(app):  # type: ignore[no-untyped-def]
    """A client of the same app with FastRoutes taken out: the router answers every request."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not fastpath.FastRoutes]
    app.middleware_stack = None  # rebuilt on the next request
    return TestClient(app)


def test_submissions_take_the_fast_path_and_answer_exactly_as_the_router(world, monkeypatch):
    orig = fastpath.FastRoutes.__call__
    fast: list[str] = []

    async def counting(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and (scope["method"], scope["path"]) in self.routes:
            fast.append(scope["path"])
        await orig(self, scope, receive, send)

    monkeypatch.setattr(fastpath.FastRoutes, "__call__", counting)
    r = world.submit()
    assert r.status_code == 201 and r.json()["state"] == "queued"
    assert fast == ["/api/v1/jobs"]
    json_ct = {"content-type": "application/json"}
    cases = [  # (who, path, request keywords)
        (None, "/api/v1/jobs", {"json": JOB}),
        ("m1", "/api/v1/jobs", {}),
        ("m1", "/api/v1/jobs", {"content": b"{bad", "headers": json_ct}),
        (
            "m1",
            "/api/v1/jobs",
            {"content": b'{"name": "x", "command": "true"}', "headers": {"content-type": "text/plain"}},
        ),
        ("m1", "/api/v1/jobs", {"content": b"[1, NaN]", "headers": json_ct}),
        ("m1", "/api/v1/jobs?stat=x", {"json": JOB}),
        ("m1", "/api/v1/jobs", {"json": {**JOB, "bogus": 1}}),
        ("m1", "/api/v1/jobs", {"json": {**JOB, "resources": {"type": "h100", "count": 99}}}),
        ("m1", "/api/v1/jobs", {"json": JOB, "headers": {"Idempotency-Key": "k" * 201}}),
        ("admin", "/api/v1/jobs", {"json": JOB}),
        ("m1", "/api/v1/jobs", {"json": {**JOB, "grant": "g2"}}),
        ("m1", "/api/v1/jobs?tenant=t2", {"json": JOB}),
        ("pm1", "/api/v1/jobs", {"json": JOB}),
        ("m1", "/api/v1/jobs", {"json": {**JOB, "env": {"A": "a\u0000"}}}),
    ]

    def answers(client: TestClient) -> list[tuple[int, str]]:
        out = []
        for who, path, kw in cases:
            headers = {**(world.h(who) if who else {}), **kw.get("headers", {})}
            r = client.post(path, headers=headers, **{k: v for k, v in kw.items() if k != "headers"})
            out.append((r.status_code, r.text))
        return out

    fast.clear()
    got = answers(world.client)
    assert len(fast) == len(cases) - 1  # the NUL byte is refused by RequestLimits, outside FastRoutes
    assert all(400 <= s < 500 for s, _ in got), got
    assert answers(_without_fast_path(world.app)) == got
    # the idempotent retry: 200 with the first job, either way
    key = {"Idempotency-Key": "same"}
    first = world.call("m1", "POST", "/api/v1/jobs", json=JOB, headers=key).json()["id"]
    again = world.client.post("/api/v1/jobs", json=JOB, headers={**world.h("m1"), **key})
    assert again.status_code == 200 and again.json()["id"] == first


def test_an_unexpected_error_in_the_fast_path_is_still_the_server_error_middlewares_500(world):
    async def boom(request):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    app = world.app
    for m in app.user_middleware:
        if m.cls is fastpath.FastRoutes:
            m.kwargs["routes"][("POST", "/api/v1/jobs")] = (boom, jobs.SUBMIT_ROUTE)
    app.middleware_stack = None  # rebuilt with the changed routes
    client = TestClient(app, raise_server_exceptions=False)
    r = client.post("/api/v1/jobs", json=JOB, headers=world.h("m1"))
    assert r.status_code == 500
    assert world.call("m1", "GET", "/api/v1/jobs").status_code == 200  # other routes unaffected
