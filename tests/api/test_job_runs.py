"""GET /jobs/{id}'s ``runs``: where each run of a job went (type, site), its device-seconds and what it cost,
also once the job has ended and holds no devices (its ``placement`` is then null: a tenant's and an
operator's test found no way to see where a finished job had run but the events' "placed on 2 x h100")."""

from __future__ import annotations

from accelpool.core.policies import get_policy
from accelpool.executors.fake import FakeExecutor
from accelpool.runtime.clock import VirtualClock
from accelpool.runtime.reconciler import Reconciler


def test_a_finished_job_shows_where_each_run_went_and_what_it_cost(world) -> None:
    clock = VirtualClock(1000.0)
    executor = FakeExecutor(clock)
    rec = Reconciler(world.store, executor, clock, get_policy("max-min-fairness"), round_seconds=3.0)
    r = world.submit("m1", name="short", grant="g1", steps=200, resources={"type": "h100", "count": 2})
    assert r.status_code == 201, r.text
    jid = r.json()["id"]
    queued = world.call("m1", "GET", f"/api/v1/jobs/{jid}").json()
    assert queued["runs"] == []
    rec.step()
    for _ in range(200):
        clock.sleep_until(clock.now() + 3.0)
        rec.step()
        got = world.call("m1", "GET", f"/api/v1/jobs/{jid}").json()
        if got["state"] == "succeeded":
            break
    assert got["state"] == "succeeded", got
    assert got["placement"] is None  # it holds no devices now
    [run] = got["runs"]
    assert run["number"] == 1 and run["accelerator"] == "h100" and run["site"] == "default"
    assert run["start"] == got["start_time"] and run["end"] == got["end_time"]
    assert run["device_seconds"] == 2 * (run["end"] - run["start"])
    assert run["charged_krw"] == got["charged_krw"] > 0
    assert "runs" not in world.call("m1", "GET", "/api/v1/jobs").json()["items"][0]  # the listing stays lean
