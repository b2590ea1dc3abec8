"""The read-only dashboard at /ui: login by token (cookie), what it shows, and tenant isolation."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from accelpool.api.app import Hooks, create_app
from accelpool.core.rounds import Decision, Placement
from accelpool.core.types import Grant, Node, Program, Tenant
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore


@pytest.fixture
def world(tmp_path):
    s = SqlStore(sqlite_url(tmp_path / "web.sqlite"))
    s.add_nodes([Node("h-0", "h100", 8), Node("r-0", "rngd", 4, zone="busan")])
    s.set_prices({"h100": 4000, "rngd": 1200})
    for t in ("t1", "t2"):
        s.add_tenant(Tenant(t, t.upper()))
    s.add_program(Program("p1", "Program 1", 10_000_000))
    s.add_program(Program("p2", "Program 2", 10_000_000))
    s.add_grant(Grant("g1", "p1", "t1", 1_000_000))
    s.add_grant(Grant("g2", "p2", "t2", 2_000_000))
    app = create_app(s, hooks=Hooks(now=lambda: 1000.0))
    client = TestClient(app)
    tokens = {
        "admin": s.create_token("admin", name="root")[1],
        "m1": s.create_token("member", name="alice", tenant="t1")[1],
        "m2": s.create_token("member", name="bob", tenant="t2")[1],
        "pm2": s.create_token("program-manager", name="pm2", program="p2")[1],
    }

    def submit(who, tenant_name, **res):
        body = {"name": tenant_name, "command": "true", "resources": res or {"type": "h100", "count": 2}}
        r = client.post("/api/v1/jobs", json=body, headers={"Authorization": f"Bearer {tokens[who]}"})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    run1 = submit("m1", "alice-running")
    submit("m1", "alice-queued", type="h100", count=8)
    submit("m2", "bob-secret-job")
    s.record_decision(
        Decision(now=1000.0, allocation=None, start=(Placement(run1, "h100", (("h-0", (0, 1)),)),))  # type: ignore[arg-type]
    )
    yield client, tokens, s
    s.close()


def _get(client, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get("/ui", headers=headers)


def test_no_token_shows_the_login_form_and_a_bad_token_is_refused(world):
    client, tokens, _ = world
    r = _get(client)
    assert r.status_code == 401 and 'action="/ui/login"' in r.text
    r = client.post("/ui/login", data={"token": "nope"}, follow_redirects=False)
    assert r.status_code == 401 and "unknown or revoked token" in r.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui"


def test_login_sets_an_httponly_cookie_and_logout_clears_it(world):
    client, tokens, _ = world
    r = client.post("/ui/login", data={"token": tokens["m1"]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and tokens["m1"].lower() in cookie
    page = client.get("/ui")
    assert page.status_code == 200 and "alice-running" in page.text
    assert "no-store" in page.headers["cache-control"]
    client.get("/ui/logout")
    assert client.get("/ui").status_code == 401


def test_member_sees_its_tenant_only_and_the_shared_pool(world):
    client, tokens, _ = world
    page = _get(client, tokens["m1"]).text
    assert "alice-running" in page and "alice-queued" in page
    assert "h100: h-0[0,1]" in page  # the running job's placement
    assert "g1" in page and "1,000,000" in page
    assert "bob-secret-job" not in page and "g2" not in page and "t2" not in page
    assert "h-0" in page and "r-0" in page  # the pool is shared
    other = _get(client, tokens["m2"]).text
    assert "bob-secret-job" in other and "alice" not in other and "g1" not in other


def test_program_manager_sees_its_programs_tenants_and_admin_sees_all(world):
    client, tokens, _ = world
    pm = _get(client, tokens["pm2"]).text
    assert "bob-secret-job" in pm and "g2" in pm and "alice" not in pm and "g1" not in pm
    admin = _get(client, tokens["admin"]).text
    assert all(x in admin for x in ("alice-running", "alice-queued", "bob-secret-job", "g1", "g2"))


def test_pool_counts_busy_and_free_devices_per_type(world):
    client, tokens, _ = world
    page = _get(client, tokens["admin"]).text
    row = page.split("<td>h100</td>", 1)[1].split("</tr>", 1)[0]
    cells = [c.split("</td>")[0] for c in row.split('<td class="n">')[1:5]]
    assert cells == ["8", "2", "6", "0"]  # total, busy, free, down


def test_names_are_escaped(world):
    client, tokens, s = world
    _, secret = s.create_token("member", name="<script>alert(1)</script>", tenant="t1")
    page = _get(client, secret).text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
