"""Sites through the API: registration like nodes, nodes at a site, jobs refused when no site may run
them (the reason in words), and admitted with their data class."""

from __future__ import annotations


def test_sites_are_registered_listed_and_changed_by_admins(world) -> None:
    body = {
        "id": "bank",
        "operator": "cloud-b",
        "region": "busan",
        "data_classes": ["public", "financial"],
        "executor": "slurm",
        "connection": {"slurm_conf": "/etc/slurm/slurm.conf"},
        "prices": {"h100": 5000},
    }
    assert world.call("m1", "POST", "/api/v1/sites", json=body).status_code == 403
    r = world.call("admin", "POST", "/api/v1/sites", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["data_classes"] == ["financial", "public"]
    assert world.call("admin", "POST", "/api/v1/sites", json=body).status_code == 409
    bad = world.call("admin", "POST", "/api/v1/sites", json={**body, "id": "x", "data_classes": ["medical"]})
    assert bad.status_code == 422
    bad = world.call("admin", "POST", "/api/v1/sites", json={**body, "id": "y", "prices": {"h999": 1}})
    assert bad.status_code == 422 and "h999" in bad.text
    items = world.call("m1", "GET", "/api/v1/sites").json()["items"]
    assert [s["id"] for s in items] == ["bank"]
    r = world.call("admin", "PUT", "/api/v1/sites/bank", json={"down": True, "prices": {"h100": 4500}})
    assert r.status_code == 200 and r.json()["down"] is True and r.json()["prices"] == {"h100": 4500}
    assert world.call("admin", "PUT", "/api/v1/sites/nope", json={"down": True}).status_code == 404


def test_a_sites_connection_is_shown_to_admins_only(world) -> None:
    """Ray addresses, state directories and Slurm config paths are the operator's: least privilege."""
    conn = {"slurm_conf": "/etc/slurm-bank/slurm.conf", "state_dir": "/srv/slurm/state"}
    r = world.call(
        "admin", "POST", "/api/v1/sites", json={"id": "bank", "executor": "slurm", "connection": conn}
    )
    assert r.status_code == 201 and r.json()["connection"] == conn
    assert world.call("admin", "GET", "/api/v1/sites").json()["items"][0]["connection"] == conn
    for who in ("m1", "pm1"):
        r = world.call(who, "GET", "/api/v1/sites")
        assert r.status_code == 200 and r.json()["items"][0]["id"] == "bank"
        assert "connection" not in r.json()["items"][0] and "/etc/slurm" not in r.text, who


def test_a_site_taken_out_by_hand_records_who_when_why_and_only_an_operator_brings_it_up(world) -> None:
    world.call("admin", "POST", "/api/v1/sites", json={"id": "bank", "data_classes": ["financial"]})
    r = world.call("admin", "PUT", "/api/v1/sites/bank", json={"down": True, "reason": "rack move"})
    assert r.status_code == 200, r.text
    hand = r.json()["down_by_hand"]
    assert r.json()["down"] is True and hand["reason"] == "rack move" and hand["by"] and hand["at"] > 0
    world.store.set_site_down("bank", False)  # the scheduler's health check: the controller answers
    item = world.call("m1", "GET", "/api/v1/sites").json()["items"][0]
    assert item["down"] is True and item["down_by_hand"] == hand
    bad = world.call("admin", "PUT", "/api/v1/sites/bank", json={"reason": "no down"})
    assert bad.status_code == 422 and "reason" in bad.text
    r = world.call("admin", "PUT", "/api/v1/sites/bank", json={"down": False})
    assert r.json()["down"] is False and r.json()["down_by_hand"] is None


def test_nodes_belong_to_a_registered_site(world) -> None:
    world.call("admin", "POST", "/api/v1/sites", json={"id": "bank", "data_classes": ["financial"]})
    r = world.call(
        "admin",
        "POST",
        "/api/v1/nodes",
        json={"name": "b-0", "accelerator": "h100", "devices": 4, "site": "bank"},
    )
    assert r.status_code == 201 and r.json()["site"] == "bank"
    r = world.call(
        "admin",
        "POST",
        "/api/v1/nodes",
        json={"name": "b-1", "accelerator": "h100", "devices": 4, "site": "nope"},
    )
    assert r.status_code == 422 and "unknown site 'nope'" in r.text
    nodes = {n["name"]: n["site"] for n in world.call("admin", "GET", "/api/v1/nodes").json()["items"]}
    assert nodes["b-0"] == "bank" and nodes["h-0"] == "default"


def test_a_job_no_site_may_run_is_refused_with_the_reason(world) -> None:
    r = world.submit(constraints={"data_class": "financial"})
    assert r.status_code == 422
    assert "no site is certified for financial data" in r.text and "constraints.data_class" in r.text
    world.call(
        "admin",
        "POST",
        "/api/v1/sites",
        json={"id": "bank", "region": "busan", "data_classes": ["financial"]},
    )
    world.call(
        "admin",
        "POST",
        "/api/v1/nodes",
        json={"name": "b-0", "accelerator": "h100", "devices": 4, "site": "bank"},
    )
    r = world.submit(constraints={"data_class": "financial", "regions": ["seoul"]})
    assert r.status_code == 422 and "region seoul" in r.text
    r = world.submit(resources={"type": "h100", "count": 8}, constraints={"data_class": "financial"})
    assert r.status_code == 422 and "the most any allowed type has is 4" in r.text
    r = world.submit(constraints={"data_class": "financial"})
    assert r.status_code == 201, r.text
    snap = world.store.snapshot(2000.0, 60.0)
    job = next(s.job for s in snap.jobs if s.job.data_class == "financial")
    assert job.regions == frozenset() and {s.id for s in snap.sites} == {"bank"}


def test_a_second_ray_site_is_refused_with_the_reason(world) -> None:
    r = world.call("admin", "POST", "/api/v1/sites", json={"id": "r1", "executor": "ray"})
    assert r.status_code == 201, r.text
    r = world.call("admin", "POST", "/api/v1/sites", json={"id": "r2", "executor": "ray"})
    assert r.status_code == 409 and "site r1 is driven by Ray already" in r.text
    assert (
        world.call("admin", "POST", "/api/v1/sites", json={"id": "s", "executor": "slurm"}).status_code == 201
    )
    r = world.call("admin", "PUT", "/api/v1/sites/s", json={"executor": "ray"})
    assert r.status_code == 409 and "process-wide" in r.text
    assert (
        world.call("admin", "PUT", "/api/v1/sites/r1", json={"connection": {"address": "x:1"}}).status_code
        == 200
    )


def test_a_job_with_an_image_is_never_placed_at_a_slurm_site(world) -> None:
    """Slurm sites refuse images (docs/executors.md): a financial job with an image, when only a Slurm site
    is certified for financial data, is refused at submission with the reason; without an image it is taken."""
    world.call(
        "admin",
        "POST",
        "/api/v1/sites",
        json={"id": "hpc", "data_classes": ["financial"], "executor": "slurm"},
    )
    world.call(
        "admin",
        "POST",
        "/api/v1/nodes",
        json={"name": "s-0", "accelerator": "h100", "devices": 4, "site": "hpc"},
    )
    r = world.submit(constraints={"data_class": "financial"}, image="localhost/train:1")
    assert r.status_code == 422 and "runs in an image" in r.text and "hpc (slurm)" in r.text, r.text
    assert world.submit(constraints={"data_class": "financial"}).status_code == 201
    assert world.submit(image="localhost/train:1").status_code == 201  # public: the default site runs it
