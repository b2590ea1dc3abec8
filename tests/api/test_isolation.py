"""Tenant isolation matrix: every job endpoint x every role, on a job of tenant t1.

Who may see it: admin, t1's member, p1's program manager (t1 holds a grant of p1; not its logs: 403). Everyone else gets 404,
exactly as for a job that does not exist, so existence is never revealed.
"""

from __future__ import annotations

import pytest

ENDPOINTS = [
    ("GET", "/api/v1/jobs/{id}", None),
    ("GET", "/api/v1/jobs/{id}/events", None),
    ("GET", "/api/v1/jobs/{id}/logs", None),
    ("POST", "/api/v1/jobs/{id}/progress", {"steps": 1}),
    ("POST", "/api/v1/jobs/{id}/cancel", None),
]
EXPECT = {  # role -> status for an existing job of t1
    "admin": {"GET": 200, "POST": 200},
    "m1": {"GET": 200, "POST": 200},
    "pm1": {"GET": 200, "POST": 403},
    "m2": {"GET": 404, "POST": 404},
    "pm2": {"GET": 404, "POST": 404},
}


@pytest.mark.parametrize("method,path,body", ENDPOINTS)
@pytest.mark.parametrize("who", sorted(EXPECT))
def test_job_endpoint_matrix(world, who, method, path, body):
    jid = world.submit("m1").json()["id"]
    r = world.call(who, method, path.format(id=jid), json=body)
    want = EXPECT[who][method]
    if who == "pm1" and path.endswith("/logs"):
        want = 403  # a manager sees a job's use and cost, not its output (tests/api/test_manager_boundary.py)
    assert r.status_code == want, r.text
    missing = world.call(who, method, path.format(id="j-doesnotexist"), json=body)
    assert missing.status_code == 404
    if r.status_code == 404:
        assert r.json() == missing.json()  # indistinguishable from a job that does not exist


@pytest.mark.parametrize(
    "who,visible", [("admin", {"t1", "t2"}), ("m1", {"t1"}), ("m2", {"t2"}), ("pm1", {"t1"}), ("pm2", {"t2"})]
)
def test_listings_show_only_visible_tenants(world, who, visible):
    world.submit("m1")
    world.submit("m2", program="p2")
    jobs = world.call(who, "GET", "/api/v1/jobs").json()["items"]
    assert {j["tenant"] for j in jobs} == visible
    grants = world.call(who, "GET", "/api/v1/grants").json()["items"]
    assert {g["tenant"] for g in grants} == visible
    tenants = {t["id"] for t in world.call(who, "GET", "/api/v1/tenants").json()["items"]}
    assert tenants <= visible | {"t3"} and (who == "admin" or tenants == visible)
    # another tenant's jobs, or usage, are 404 exactly as a tenant that does not exist
    for path in ("/api/v1/jobs?tenant=", "/api/v1/usage?tenant="):
        other = world.call(who, "GET", path + ({"t1", "t2"} - visible or {"t9"}).pop())
        missing = world.call(who, "GET", path + "t-doesnotexist")
        assert other.status_code == 404 and other.json() == missing.json(), other.text
    programs = {p["id"] for p in world.call(who, "GET", "/api/v1/programs").json()["items"]}
    assert programs == {"t1": {"p1"}, "t2": {"p2"}}.get(next(iter(visible)), programs) or who == "admin"


@pytest.mark.parametrize("who", ["m1", "m2", "pm1", "pm2", "admin"])
def test_pool_endpoints_readable_by_every_role(world, who):
    assert world.call(who, "GET", "/api/v1/nodes").status_code == 200
    assert world.call(who, "GET", "/api/v1/prices").status_code == 200
    assert world.call(who, "GET", "/api/v1/whoami").status_code == 200
    toks = world.call(who, "GET", "/api/v1/tokens").json()["items"]
    assert len(toks) == (5 if who == "admin" else 1)


def test_member_cannot_submit_for_another_tenant(world):
    r = world.call("m1", "POST", "/api/v1/jobs?tenant=t2", json={"name": "x", "command": "true"})
    assert r.status_code == 404
