"""The priority field orders jobs across tenants before fair share, so a member setting it jumped every
other tenant's queue (a review: tenant A, already holding 8 devices, put a priority-1000 job before tenant
B's earlier one). A priority above 0 is an admin's; a member may lower its own jobs'."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("priority", [1, 1000])
def test_a_member_may_not_raise_a_jobs_priority(world, priority) -> None:
    r = world.submit(priority=priority)
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["field"] == "priority" and "set by an admin" in err["reason"]
    assert world.call("m1", "GET", "/api/v1/jobs").json()["items"] == []


@pytest.mark.parametrize("priority", [0, -1, -1000])
def test_a_member_may_lower_its_own_jobs(world, priority) -> None:
    r = world.submit(priority=priority)
    assert r.status_code == 201 and r.json()["priority"] == priority, r.text


def test_an_admin_sets_a_priority_for_a_tenant(world) -> None:
    body = {"name": "urgent", "command": "true", "resources": {"type": "h100", "count": 1}, "priority": 500}
    r = world.call("admin", "POST", "/api/v1/jobs?tenant=t1", json=body)
    assert r.status_code == 201 and r.json()["priority"] == 500, r.text
