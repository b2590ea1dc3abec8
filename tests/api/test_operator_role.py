"""The operator role: the people who keep the hardware running get a token that runs the machines (nodes,
sites, prices) and sees every job's use and cost, and nothing more. Before it, only an admin token could
register a node, and an admin token also submits as any tenant (spending its grant), reads every job's
command and log, and mints tokens: a node script's credential held the whole pool."""

from __future__ import annotations

import pytest


@pytest.fixture
def op(world) -> str:
    r = world.call("admin", "POST", "/api/v1/tokens", json={"role": "operator", "name": "night shift"})
    assert r.status_code == 201, r.text
    world.tokens["op"] = r.json()["secret"]
    return "op"


def test_an_operator_runs_the_machines(world, op) -> None:
    assert world.call(op, "GET", "/api/v1/whoami").json()["role"] == "operator"
    r = world.call(op, "POST", "/api/v1/nodes", json={"name": "h-9", "accelerator": "h100", "devices": 8})
    assert r.status_code == 201, r.text
    assert world.call(op, "PUT", "/api/v1/nodes/h-9", json={"down": True}).json()["down"] is True
    r = world.call(op, "PUT", "/api/v1/prices", json={"h100": 4200})
    assert r.status_code == 200 and r.json()["krw_per_device_hour"]["h100"] == 4200, r.text
    r = world.call(op, "POST", "/api/v1/sites", json={"id": "busan-dc"})
    assert r.status_code == 201, r.text
    assert any(s["id"] == "busan-dc" for s in world.call(op, "GET", "/api/v1/sites").json()["items"])


def test_an_operator_sees_every_jobs_use_but_not_its_contents(world, op) -> None:
    a = world.submit("m1", command="python train.py --hf-token hf_SECRET123").json()
    b = world.submit("m2", command="python serve.py --key sk-OTHER").json()
    items = world.call(op, "GET", "/api/v1/jobs").json()["items"]
    assert {j["id"] for j in items} == {a["id"], b["id"]}
    assert "SECRET123" not in str(items) and "sk-OTHER" not in str(items)
    one = world.call(op, "GET", f"/api/v1/jobs/{a['id']}").json()
    assert one["tenant"] == "t1" and "SECRET123" not in str(one)
    r = world.call(op, "GET", f"/api/v1/jobs/{a['id']}/logs")
    assert r.status_code == 403, r.text
    usage = world.call(op, "GET", "/api/v1/usage")
    assert usage.status_code == 200, usage.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/jobs?tenant=t1", {"name": "j", "command": "id", "resources": {"type": "h100"}}),
        ("POST", "/api/v1/tokens", {"role": "admin"}),
        ("POST", "/api/v1/tokens", {"role": "member", "tenant": "t1"}),
        ("POST", "/api/v1/programs", {"id": "p9", "name": "P9", "budget_krw": 1000}),
        ("PATCH", "/api/v1/programs/p1", {"budget_krw": 1}),
        ("POST", "/api/v1/grants", {"id": "g9", "program": "p1", "tenant": "t1", "amount_krw": 10}),
        ("PATCH", "/api/v1/grants/g1", {"amount_krw": 2_000_000}),
        ("POST", "/api/v1/tenants", {"id": "t9", "name": "T9"}),
        ("PATCH", "/api/v1/tenants/t1", {"weight": 9.0}),
    ],
)
def test_an_operator_may_not_spend_grant_or_mint(world, op, method, path, body) -> None:
    r = world.call(op, method, path, json=body)
    assert r.status_code == 403, r.text
    assert "role 'operator' may not do this" in r.json()["error"]["reason"], r.text


def test_an_operator_may_not_cancel_a_tenants_job(world, op) -> None:
    job = world.submit("m1").json()
    r = world.call(op, "POST", f"/api/v1/jobs/{job['id']}/cancel", json={})
    assert r.status_code == 403, r.text
    assert world.call("m1", "GET", f"/api/v1/jobs/{job['id']}").json()["state"] == "queued"


def test_an_operator_token_has_no_scope(world) -> None:
    r = world.call("admin", "POST", "/api/v1/tokens", json={"role": "operator", "tenant": "t1"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "tenant", r.text


@pytest.mark.parametrize(
    "body",
    [
        {"executor": "slurm", "connection": {"bin_dir": "/home/op/bin", "state_dir": "/tmp/world-readable"}},
        {"connection": {"state_dir": "/tmp/x"}},
        {"data_classes": ["personal", "financial", "public-sector"]},
    ],
)
def test_an_operator_may_not_decide_where_jobs_and_their_data_go(world, op, body) -> None:
    # a review: an operator's site sent jobs (command, environment, data) to a cluster it chose, had their logs
    # written where it could read them, ran its own sbatch, or certified a site for personal data
    field = next(iter(body))
    r = world.call(op, "POST", "/api/v1/sites", json={"id": "evil", **body})
    assert r.status_code == 403 and r.json()["error"]["field"] == field, r.text
    assert world.call("admin", "POST", "/api/v1/sites", json={"id": "busan-dc"}).status_code == 201
    r = world.call(op, "PUT", "/api/v1/sites/busan-dc", json=body)
    assert r.status_code == 403 and r.json()["error"]["field"] == field, r.text
    r = world.call(op, "PUT", "/api/v1/sites/busan-dc", json={"down": True, "reason": "power work"})
    assert r.status_code == 200 and r.json()["down"] is True, r.text
    r = world.call("admin", "PUT", "/api/v1/sites/busan-dc", json=body)
    assert r.status_code != 403, r.text  # an admin may (a connection is then checked for its executor)
