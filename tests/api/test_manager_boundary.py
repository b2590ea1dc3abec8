"""A program manager against a tenant of another program (a review's attack): any program's manager may grant
to any tenant, and a job that named no grant went to the tenant's fullest grant, so a manager's larger grant
drew in the tenant's jobs; the manager then read their command lines and logs and could hold them back with
its program's caps. Now a job names its program where the tenant holds grants from several, and a manager
sees a job's use and cost, never its command or output."""

from __future__ import annotations

import re


def test_a_managers_larger_grant_does_not_draw_in_a_tenants_jobs(world) -> None:
    # pm2 (program p2) grants t1, which holds g1 from p1, more than g1 holds
    r = world.call(
        "pm2",
        "POST",
        "/api/v1/grants",
        json={"id": "bait", "program": "p2", "tenant": "t1", "amount_krw": 5_000_000},
    )
    assert r.status_code == 201, r.text
    r = world.submit(command="python train.py --hf-token hf_SECRET123")
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["field"] == "program"
    assert "'p1' (g1)" in err["reason"] and "'p2' (bait)" in err["reason"]
    assert "none of them has paid for its jobs yet" in err["reason"]
    assert world.call("pm2", "GET", "/api/v1/jobs").json()["items"] == []
    # naming the program charges its grant; naming the grant too
    r = world.submit(command="python train.py --hf-token hf_SECRET123", program="p1")
    assert r.status_code == 201 and r.json()["grant"] == "g1", r.text
    # unnamed jobs now go to p1, the one program the tenant's jobs went to
    assert world.submit().json()["grant"] == "g1"
    assert world.submit(grant="bait").json()["grant"] == "bait"
    # once its jobs went to both, an unnamed job is refused again
    err = world.submit().json()["error"]
    assert err["field"] == "program" and "its jobs have gone to 2 of them (p1, p2)" in err["reason"]


def grant(world, who: str, gid: str, program: str, krw: int, tenant: str = "t1") -> None:
    body = {"id": gid, "program": program, "tenant": tenant, "amount_krw": krw}
    r = world.call(who, "POST", "/api/v1/grants", json=body)
    assert r.status_code == 201, r.text


def test_another_managers_1_krw_grant_does_not_stop_a_tenants_unnamed_jobs(world) -> None:
    # a review: any manager's 1 KRW grant made every unnamed job of the tenant 409
    first = world.submit().json()
    assert first["grant"] == "g1"
    grant(world, "pm2", "pest", "p2", 1)
    r = world.submit()
    assert r.status_code == 201 and r.json()["grant"] == "g1", r.text
    assert world.call("pm2", "GET", "/api/v1/jobs").json()["items"] == []


def test_an_idempotent_retry_after_another_programs_grant_is_its_first_job(world) -> None:
    key = {"Idempotency-Key": "nightly-1"}
    body = {"name": "job", "command": "echo hi", "resources": {"type": "h100", "count": 1}}
    first = world.call("m1", "POST", "/api/v1/jobs", json=body, headers=key)
    assert first.status_code == 201, first.text
    grant(world, "pm2", "pest", "p2", 1)
    again = world.call("m1", "POST", "/api/v1/jobs", json=body, headers=key)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"], again.text
    # the tenant then charges p2 too: unnamed jobs are refused, the retry still answers its job
    assert world.submit(program="p2").status_code == 201
    assert world.submit().status_code == 409
    again = world.call("m1", "POST", "/api/v1/jobs", json=body, headers=key)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"], again.text
    # another request under the same key is still told so, and a new key is refused for the program
    other = world.call("m1", "POST", "/api/v1/jobs", json={**body, "command": "echo bye"}, headers=key)
    assert other.status_code == 409 and "command differ" in other.json()["error"]["reason"], other.text
    fresh = world.call("m1", "POST", "/api/v1/jobs", json=body, headers={"Idempotency-Key": "nightly-2"})
    assert fresh.status_code == 409 and fresh.json()["error"]["field"] == "program", fresh.text


def test_a_tenant_with_one_programs_grants_still_needs_to_name_none(world) -> None:
    r = world.call(
        "pm1",
        "POST",
        "/api/v1/grants",
        json={"id": "g1b", "program": "p1", "tenant": "t1", "amount_krw": 5_000_000},
    )
    assert r.status_code == 201, r.text
    r = world.submit()
    assert r.status_code == 201 and r.json()["grant"] == "g1b"  # the fullest of p1's, as before
    # a program whose grant is used up or over does not count as one to choose from
    r = world.call(
        "pm2",
        "POST",
        "/api/v1/grants",
        json={"id": "over", "program": "p2", "tenant": "t1", "amount_krw": 1, "end": 1500},
    )
    assert r.status_code == 201, r.text
    world.clock[0] = 2000.0  # p2's grant to t1 is over
    assert world.submit().status_code == 201


def test_a_manager_sees_use_and_cost_but_not_command_or_output(world) -> None:
    r = world.call(
        "pm1",
        "POST",
        "/api/v1/grants",
        json={"id": "g3", "program": "p1", "tenant": "t3", "amount_krw": 1000},
    )
    assert r.status_code == 201
    job = world.submit(command="python train.py --hf-token hf_SECRET123").json()["id"]  # t1 on g1 (p1)
    world.start(job)
    listed = world.call("pm1", "GET", "/api/v1/jobs").json()["items"]
    assert [j["id"] for j in listed] == [job] and listed[0]["command"] is None
    shown = world.call("pm1", "GET", f"/api/v1/jobs/{job}").json()
    assert shown["command"] is None and shown["grant"] == "g1" and "events" in shown
    r = world.call("pm1", "GET", f"/api/v1/jobs/{job}/logs")
    assert r.status_code == 403 and "not their command or output" in r.json()["error"]["reason"]
    page = world.call("pm1", "GET", f"/ui/jobs/{job}").text
    assert "hf_SECRET123" not in page and f"logs of {job}" not in page
    assert "not its command or output" in page
    # the tenant and an admin still see both
    for who in ("m1", "admin"):
        assert world.call(who, "GET", f"/api/v1/jobs/{job}").json()["command"].endswith("hf_SECRET123")
        assert world.call(who, "GET", f"/api/v1/jobs/{job}/logs").json()["logs"] == f"logs of {job}"
        page = world.call(who, "GET", f"/ui/jobs/{job}").text
        assert "hf_SECRET123" in page and re.search(f"logs of {job}", page)
