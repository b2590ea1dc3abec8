"""POST /jobs beyond the tenant's cap on active jobs is 429 naming the tenant and the cap (a review's flood:
one tenant's 4,000 queued jobs slowed every tenant's rounds); the cap is the operator's --max-active-jobs
(Limits.max_active_jobs, 10,000 by default)."""

from __future__ import annotations

from accelpool.api.limits import Limits


def test_a_tenant_past_its_cap_gets_429_and_others_do_not(world) -> None:
    body = {"name": "job", "command": "echo hi", "resources": {"type": "h100", "count": 1}}

    def retry_of_a():
        return world.call("m1", "POST", "/api/v1/jobs", json=body, headers={"Idempotency-Key": "a"})

    assert world.store.max_active_jobs == Limits().max_active_jobs == 10_000  # the app set the default
    world.store.max_active_jobs = 2
    first = retry_of_a().json()["id"]
    assert world.submit().status_code == 201
    r = world.submit()
    assert r.status_code == 429, r.text
    err = r.json()["error"]
    assert (
        err["field"] == "tenant"
        and "has 2 active jobs" in err["reason"]
        and "--max-active-jobs" in err["reason"]
    )
    assert retry_of_a().json()["id"] == first  # a retry is answered
    assert world.submit("m2").status_code == 201  # another tenant's jobs do not count
    assert world.call("m1", "POST", f"/api/v1/jobs/{first}/cancel").status_code == 200
    assert world.submit().status_code == 201  # an ended job frees its place
