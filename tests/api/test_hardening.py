"""Reviewer findings: creates never overwrite, grants cannot be hijacked or reset, the public reserve is for
public tenants, and bad numbers/types are 422 naming the field (never 500, never silently accepted)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from accelpool.core.types import Charge
from accelpool.storage import tables as T


def _post(world, who, path, body):
    return world.call(who, "POST", f"/api/v1/{path}", json=body)


def _raw(world, who, method, path, content):
    return world.call(
        who, method, f"/api/v1/{path}", content=content, headers={"Content-Type": "application/json"}
    )


def _grant(world, gid):
    return {g.id: g for g in world.store.list_grants()}[gid]


# -- 1. grants --------------------------------------------------------------------------------------------


def test_reposting_a_grant_is_409_and_keeps_its_spending(world):
    world.store.submit(
        __import__("accelpool.core.types", fromlist=["Job"]).Job("j1", tenant="t1", grant="g1"), {"h100": 1.0}
    )
    world.store.record_charges([Charge("j1", "t1", "g1", "h100", 3600.0, 4000, 0.0, 900.0)])
    r = _post(world, "pm1", "grants", {"id": "g1", "program": "p1", "tenant": "t1", "amount_krw": 5})
    assert r.status_code == 409 and r.json()["error"]["field"] == "id"
    g = _grant(world, "g1")
    assert g.spent_krw == 4000 and g.amount_krw == 1_000_000


def test_manager_of_another_program_cannot_take_over_a_grant(world):
    r = _post(world, "pm2", "grants", {"id": "g1", "program": "p2", "tenant": "t1", "amount_krw": 5})
    assert r.status_code == 409
    assert _grant(world, "g1").program == "p1"
    # the explicit update path checks the grant's EXISTING program: others' grants are 404
    assert world.call("pm2", "PATCH", "/api/v1/grants/g1", json={"amount_krw": 7}).status_code == 404
    assert world.call("m1", "PATCH", "/api/v1/grants/g1", json={"amount_krw": 7}).status_code == 403
    assert world.call("m2", "PATCH", "/api/v1/grants/g1", json={"amount_krw": 7}).status_code == 404
    assert _grant(world, "g1").amount_krw == 1_000_000


def test_grant_update_within_budget_and_never_below_spent(world):
    world.store.submit(
        __import__("accelpool.core.types", fromlist=["Job"]).Job("j1", tenant="t1", grant="g1"), {"h100": 1.0}
    )
    world.store.record_charges([Charge("j1", "t1", "g1", "h100", 3600.0, 4000, 0.0, 900.0)])
    r = world.call("pm1", "PATCH", "/api/v1/grants/g1", json={"amount_krw": 2_000_000, "end": 5000.0})
    assert r.status_code == 200, r.text
    assert r.json()["amount_krw"] == 2_000_000 and r.json()["spent_krw"] == 4000 and r.json()["end"] == 5000.0
    r = world.call("pm1", "PATCH", "/api/v1/grants/g1", json={"amount_krw": 10_000_001})
    assert r.status_code == 409 and r.json()["error"]["field"] == "amount_krw"
    r = world.call("pm1", "PATCH", "/api/v1/grants/g1", json={"amount_krw": 3999})
    assert r.status_code == 409 and "spent" in r.json()["error"]["reason"]
    assert world.call("pm1", "PATCH", "/api/v1/grants/g1", json={"end": 10.0}).status_code == 422
    assert _grant(world, "g1").spent_krw == 4000


@pytest.mark.parametrize(
    "body,field",
    [
        ({"start": 2000.0, "end": 2000.0}, "end"),
        ({"start": 2000.0, "end": 1500.0}, "end"),
        ({"start": 0.0, "end": 500.0}, "end"),  # over before now (1000)
        ({"amount_krw": 10**30}, "amount_krw"),
        ({"amount_krw": True}, "amount_krw"),
        ({"amount_krw": "7000"}, "amount_krw"),
    ],
)
def test_bad_grants_are_422(world, body, field):
    r = _post(world, "pm1", "grants", {"program": "p1", "tenant": "t1", "amount_krw": 10, **body})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


# -- 2. create never overwrites ---------------------------------------------------------------------------


def test_create_of_an_existing_program_tenant_node_is_409_and_changes_nothing(world):
    r = _post(world, "admin", "programs", {"id": "p1", "budget_krw": 1})
    assert r.status_code == 409 and r.json()["error"]["field"] == "id"
    p1 = {p.id: p for p in world.store.list_programs()}["p1"]
    assert p1.budget_krw == 10_000_000 and p1.rules.max_contract_seconds == 86400
    r = _post(world, "admin", "tenants", {"id": "t1", "name": "X", "weight": 9})
    assert r.status_code == 409
    t1 = {t.id: t for t in world.store.list_tenants()}["t1"]
    assert t1.name == "T1" and t1.weight == 1.0
    r = _post(world, "admin", "nodes", {"name": "h-0", "accelerator": "rngd", "devices": 1, "zone": "x"})
    assert r.status_code == 409 and r.json()["error"]["field"] == "name"
    n = {n.name: n for n in world.store.list_nodes()}["h-0"]
    assert (n.accelerator, n.devices, n.zone) == ("h100", 8, "default")


def test_program_budget_update_never_below_granted(world):
    r = world.call("admin", "PATCH", "/api/v1/programs/p1", json={"budget_krw": 999_999})
    assert r.status_code == 409 and r.json()["error"]["field"] == "budget_krw"
    r = world.call("admin", "PATCH", "/api/v1/programs/p1", json={"budget_krw": 1_000_000, "name": "P"})
    assert (
        r.status_code == 200 and r.json()["budget_krw"] == 1_000_000 and r.json()["granted_krw"] == 1_000_000
    )
    assert world.call("pm1", "PATCH", "/api/v1/programs/p1", json={"budget_krw": 2}).status_code == 403
    assert world.call("pm2", "PATCH", "/api/v1/programs/p1", json={"budget_krw": 2}).status_code == 404
    # rules change keeps the budget
    r = world.call("pm1", "PUT", "/api/v1/programs/p1/rules", json={"tenant_caps": {"h100": 2}})
    assert r.status_code == 200 and r.json()["budget_krw"] == 1_000_000


def test_tenant_update(world):
    r = world.call("admin", "PATCH", "/api/v1/tenants/t3", json={"weight": 2.5, "public": True})
    assert r.status_code == 200 and r.json()["weight"] == 2.5 and r.json()["public"] is True
    assert world.call("admin", "PATCH", "/api/v1/tenants/nope", json={"weight": 2}).status_code == 404
    assert world.call("m1", "PATCH", "/api/v1/tenants/t1", json={"weight": 2}).status_code == 403


def test_node_update_never_shrinks_below_devices_in_use(world):
    world.store.submit(
        __import__("accelpool.core.types", fromlist=["Job"]).Job("jr", tenant="t1", grant="g1", scale=4),
        {"h100": 1.0},
    )
    with world.store.write() as c:
        c.execute(
            update(T.jobs)
            .where(T.jobs.c.id == "jr")
            .values(state="running", placement={"accelerator": "h100", "devices": [["h-0", [0, 1, 2, 3]]]})
        )
    r = world.call("admin", "PUT", "/api/v1/nodes/h-0", json={"devices": 2})
    assert r.status_code == 409 and r.json()["error"]["field"] == "devices"
    r = world.call("admin", "PUT", "/api/v1/nodes/h-0", json={"zone": "busan"})
    assert r.status_code == 409 and r.json()["error"]["field"] == "zone"
    r = world.call("admin", "PUT", "/api/v1/nodes/h-0", json={"devices": 4})
    assert r.status_code == 200 and r.json()["devices"] == 4
    r = world.call("admin", "PUT", "/api/v1/nodes/h-1", json={"devices": 2, "zone": "busan"})
    assert r.status_code == 200 and (r.json()["devices"], r.json()["zone"]) == (2, "busan")
    assert world.call("admin", "PUT", "/api/v1/nodes/nope", json={"down": True}).status_code == 404


# -- 4. the public reserve ---------------------------------------------------------------------------------


def test_only_public_tenants_may_claim_the_public_reserve(world):
    r = world.submit(public=True)
    assert r.status_code == 403 and r.json()["error"]["field"] == "public"
    world.store.update_tenant("t1", public=True)
    r = world.submit(public=True)
    assert r.status_code == 201, r.text


# -- 5/6. bad numbers and types ----------------------------------------------------------------------------


JOB = '{"name": "j", "command": "true", %s}'


@pytest.mark.parametrize(
    "extra,field",
    [
        ('"max_run_time": 1e400', "max_run_time"),
        ('"max_run_time": NaN', "max_run_time"),
        ('"max_run_time": -Infinity', "max_run_time"),
        ('"max_run_time": 1e300', "max_run_time"),
        ('"steps": 1e400', "steps"),
        ('"resources": {"type": "h100", "count": true}', "resources.count"),
        ('"resources": {"type": "h100", "count": "2"}', "resources.count"),
        ('"resources": {"type": "h100", "count": 2.0}', "resources.count"),
        ('"resources": {"type": "h100", "count": 1, "min_memory_gb": NaN}', "resources.min_memory_gb"),
        ('"grace_seconds": Infinity', "grace_seconds"),
    ],
)
def test_non_finite_and_non_integer_job_fields_are_422(world, extra, field):
    r = _raw(world, "m1", "POST", "jobs", JOB % extra)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_field_path_has_no_pydantic_internals(world):
    r = world.submit(resources={"type": "h100", "count": 0})
    assert r.status_code == 422 and r.json()["error"]["field"] == "resources.count"


def test_long_job_name_says_too_long(world):
    r = world.submit(name="a" * 5000)
    assert r.status_code == 422 and "at most 100" in r.json()["error"]["reason"]


def test_training_job_drops_inference_only_alternatives_and_says_so(world):
    r = world.submit(resources={"types": ["h100", "rngd"], "count": 1})
    assert r.status_code == 201 and "rngd" in r.json()["notes"][0]
    job = world.store.snapshot(0, 1).jobs[0].job
    assert job.allowed == frozenset({"h100"})
    r = world.submit(kind="inference", resources={"type": "rngd", "count": 1})
    assert r.status_code == 201 and "notes" not in r.json()


@pytest.mark.parametrize(
    "content,field",
    [
        ('{"h100": true}', "h100"),
        ('{"h100": "7000"}', "h100"),
        ('{"h100": 7000.5}', "h100"),
        ('{"h100": 99999999999999999999999}', "h100"),
        ('{"h100": -1}', "h100"),
        ('{"zz": 1}', "zz"),
    ],
)
def test_prices_are_strict_bounded_integers(world, content, field):
    r = _raw(world, "admin", "PUT", "prices", content)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert world.store.prices()["h100"] == 4000


@pytest.mark.parametrize(
    "body,field",
    [
        ({"id": "p7", "budget_krw": 99999999999999999999999}, "budget_krw"),
        ({"id": "p7", "budget_krw": True}, "budget_krw"),
        ({"id": "p7", "budget_krw": 5, "rules": {"tenant_caps": {"h100": -3}}}, "rules.tenant_caps.h100"),
        ({"id": "p7", "budget_krw": 5, "rules": {"tenant_caps": {"zz": 1}}}, "rules.tenant_caps.zz"),
        (
            {"id": "p7", "budget_krw": 5, "rules": {"max_contract_seconds": 1e300}},
            "rules.max_contract_seconds",
        ),
        ({"id": "p7", "budget_krw": 5, "end": 1e300}, "end"),
    ],
)
def test_bad_programs_are_422(world, body, field):
    r = _post(world, "admin", "programs", body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_bad_rules_and_nodes_and_tenants_are_422(world):
    r = world.call("pm1", "PUT", "/api/v1/programs/p1/rules", json={"tenant_caps": {"h100": -3}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "tenant_caps.h100"
    r = _raw(world, "pm1", "PUT", "programs/p1/rules", '{"public_share": {"*": NaN}}')
    assert r.status_code == 422 and r.json()["error"]["field"] == "public_share.*"
    r = _post(world, "admin", "nodes", {"name": "n9", "accelerator": "h100", "devices": 1, "zone": ""})
    assert r.status_code == 422 and r.json()["error"]["field"] == "zone"
    r = _raw(world, "admin", "POST", "tenants", '{"id": "t9", "weight": Infinity}')
    assert r.status_code == 422 and r.json()["error"]["field"] == "weight"
    r = _post(world, "admin", "tenants", {"id": "t9", "quota": {"h100": -1}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "quota.h100"


@pytest.mark.parametrize("query", ["days=nan", "days=-1", "days=inf", "since=nan", "until=inf"])
def test_usage_bad_numbers_are_422(world, query):
    r = world.call("m1", "GET", f"/api/v1/usage?{query}")
    assert r.status_code == 422, r.text


def test_usage_days(world):
    assert world.call("m1", "GET", "/api/v1/usage?days=1").status_code == 200


@pytest.mark.parametrize("content", ['{"steps": 1e400}', '{"steps": NaN}', '{"steps_per_second": Infinity}'])
def test_progress_non_finite_is_422(world, content):
    job = world.submit().json()
    r = _raw(world, "m1", "POST", f"jobs/{job['id']}/progress", content)
    assert r.status_code == 422, r.text


def test_a_program_end_in_the_past_or_before_its_start_is_422(world):
    # an operator's test: PATCH end=<past> was accepted (a grant's past end is refused)
    assert (
        _post(world, "admin", "programs", {"id": "p3", "budget_krw": 5, "start": 3000.0}).status_code == 201
    )
    for program, end, why in (("p2", 999.0, "in the past"), ("p3", 2500.0, "after it starts")):
        r = world.call("admin", "PATCH", f"/api/v1/programs/{program}", json={"end": end})
        assert (
            r.status_code == 422
            and r.json()["error"]["field"] == "end"
            and why in r.json()["error"]["reason"]
        )
    assert {p.id: p.end for p in world.store.list_programs()} == {"p1": None, "p2": None, "p3": None}
    assert world.call("admin", "PATCH", "/api/v1/programs/p2", json={"end": 5000.0}).status_code == 200


def test_a_grant_without_an_end_under_a_maximum_contract_ends_that_long_after_its_start(world):
    # an operator's test: an open-ended grant got around the program's maximum contract
    r = _post(world, "pm1", "grants", {"program": "p1", "tenant": "t2", "amount_krw": 1000})
    assert r.status_code == 201 and r.json()["end"] == r.json()["start"] + 86400
    r = _post(world, "admin", "grants", {"program": "p2", "tenant": "t1", "amount_krw": 1000})
    assert r.status_code == 201 and r.json()["end"] is None  # no maximum: open-ended as asked


def test_a_job_on_a_grant_whose_program_ended_is_refused_naming_it(world):
    assert world.call("admin", "PATCH", "/api/v1/programs/p1", json={"end": 2000.0}).status_code == 200
    assert world.submit().status_code == 201  # still running at 1000
    world.clock[0] = 2500.0
    r = world.submit()
    assert r.status_code == 409 and "program p1 ended at" in r.json()["error"]["reason"], r.text


def test_grants_show_what_their_jobs_hold_what_is_available_and_whether_they_run(world):
    # an operator's and a tenant's test: an expired grant listed its balance as money left, and a grant's
    # "remaining" ignored what running jobs held, so the next submit was refused against it unexpectedly
    r = world.submit(max_run_time=3600)
    assert r.status_code == 201, r.text
    reserved = world.call("m1", "GET", f"/api/v1/jobs/{r.json()['id']}").json()["reserved_krw"]
    assert reserved > 0
    g1 = {g["id"]: g for g in world.call("m1", "GET", "/api/v1/grants").json()["items"]}["g1"]
    assert g1["held_krw"] == reserved and g1["available_krw"] == g1["remaining_krw"] - reserved
    assert g1["state"] == "active" and g1["closed"] is None
    assert world.call("admin", "PATCH", "/api/v1/grants/g1", json={"end": 1500.0}).status_code == 200
    world.clock[0] = 1600.0
    g1 = {g["id"]: g for g in world.call("admin", "GET", "/api/v1/grants").json()["items"]}["g1"]
    assert g1["state"] == "ended" and g1["available_krw"] == 0 and "grant g1 ended at" in g1["closed"]


def test_a_node_of_a_type_without_a_price_is_added_with_a_warning(world):
    # an operator's test: jobs on an unpriced type ran for nothing and nothing said so
    r = _post(world, "admin", "nodes", {"name": "h200-0", "accelerator": "h200", "devices": 4})
    assert r.status_code == 201 and "h200 has no price" in r.json()["notes"][0]
    r = _post(world, "admin", "nodes", {"name": "h-9", "accelerator": "h100", "devices": 4})
    assert r.status_code == 201 and "notes" not in r.json()  # priced


def test_a_grant_from_an_unknown_program_is_422_for_an_admin_and_404_for_another_manager(world):
    # an operator's test: unknown program was 404 (exit 1) while an unknown tenant was 422 (exit 2)
    r = _post(world, "admin", "grants", {"program": "nope", "tenant": "t1", "amount_krw": 5})
    assert (
        r.status_code == 422
        and r.json()["error"]["field"] == "program"
        and "nope" in r.json()["error"]["reason"]
    )
    r = _post(world, "pm2", "grants", {"program": "p1", "tenant": "t1", "amount_krw": 5})
    missing = _post(world, "pm2", "grants", {"program": "nope", "tenant": "t1", "amount_krw": 5})
    assert r.status_code == missing.status_code == 404 and r.json() == missing.json()  # not seen, as unknown


def test_admission_funds_a_job_from_a_grant_that_pays_now_before_a_fuller_one_that_starts_later(world):
    # a review: the fullest grant won even when it starts next quarter, and the job waited for it
    from accelpool.core.types import Grant

    world.store.add_grant(Grant("g-next", "p1", "t1", 9_000_000, start=world.clock[0] + 30 * 86400))
    r = world.submit()
    assert r.status_code == 201 and r.json()["grant"] == "g1", r.text


def test_a_job_that_may_not_be_stopped_is_refused_when_its_grant_ends_before_its_max_run_time(world):
    # a tenant's test: such a job was accepted, started, and stopped at the grant's end with its work lost
    assert world.call("admin", "PATCH", "/api/v1/grants/g1", json={"end": 4600.0}).status_code == 200
    r = world.submit(preemptible=False, max_run_time=7200)
    assert r.status_code == 409 and r.json()["error"]["field"] == "max_run_time", r.text
    reason = r.json()["error"]["reason"]
    assert (
        "grant g1 ends at" in reason and "max_run_time (2.0 h)" in reason and "make it preemptible" in reason
    )
    assert world.submit(preemptible=False, max_run_time=3600).status_code == 201  # ends in time
    assert world.submit(preemptible=True, max_run_time=7200).status_code == 201  # may be stopped
    # a second grant that runs long enough is taken instead of the one that ends first
    assert (
        _post(
            world, "admin", "grants", {"id": "g9", "program": "p1", "tenant": "t1", "amount_krw": 100000}
        ).status_code
        == 201
    )
    r = world.submit(preemptible=False, max_run_time=7200)
    assert r.status_code == 201 and r.json()["grant"] == "g9", r.text


def test_a_grant_that_would_start_after_its_program_ends_is_422(world):
    # a review's find: such a grant was created and could never pay for anything
    assert world.call("admin", "PATCH", "/api/v1/programs/p1", json={"end": 5000.0}).status_code == 200
    r = _post(world, "admin", "grants", {"program": "p1", "tenant": "t1", "amount_krw": 10, "start": 6000.0})
    assert r.status_code == 422 and r.json()["error"]["field"] == "start", r.text
    assert "its program 'p1' has ended" in r.json()["error"]["reason"]
    r = _post(world, "admin", "grants", {"program": "p1", "tenant": "t1", "amount_krw": 10, "start": 4000.0})
    assert r.status_code == 201, r.text  # starts while the program runs
