"""GET /jobs and /jobs/{id}: a queued job's place in the fair order (pool and tenant) and its estimated
start range, as the latest round computed them (issue 10)."""

from __future__ import annotations

from accelpool.cli.format import position, queue_place, start_estimate
from accelpool.core.policies import get_policy
from accelpool.executors.fake import FakeExecutor
from accelpool.runtime.clock import VirtualClock
from accelpool.runtime.reconciler import Reconciler


def test_queued_jobs_show_their_place_in_pool_and_tenant_and_a_start_range(world) -> None:
    ids = {}
    clock = VirtualClock(1000.0)
    rec = Reconciler(
        world.store, FakeExecutor(clock), clock, get_policy("max-min-fairness"), round_seconds=3.0
    )
    for k, (who, name) in enumerate((("m1", "a1"), ("m1", "a2"), ("m1", "a3"), ("m2", "b1"))):
        world.clock[0] = 990.0 + k
        grant = "g1" if who == "m1" else "g2"
        r = world.submit(
            who, name=name, grant=grant, max_run_time=100, resources={"type": "h100", "count": 16}
        )
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
        if name == "a1":
            report = rec.step()  # a1 takes the pool (16 devices) at 1000
            assert [p.job for p in report.decision.start] == [ids["a1"]]
    clock.sleep_until(1003.0)
    assert rec.step().decision.start == ()  # a tick: nothing fits
    # t1 holds the pool: t2's job is next in the fair order, then t1's in their own order
    got = {n: world.call("admin", "GET", f"/api/v1/jobs/{ids[n]}").json() for n in ("a1", "a2", "a3", "b1")}
    assert got["a1"]["queue"] is None and got["a1"]["start_estimate"] is None  # running
    assert got["b1"]["queue"] == {"position": 1, "of": 3, "tenant_position": 1, "tenant_of": 1}
    assert got["a2"]["queue"] == {"position": 2, "of": 3, "tenant_position": 1, "tenant_of": 2}
    assert got["a3"]["queue"] == {"position": 3, "of": 3, "tenant_position": 2, "tenant_of": 2}
    assert [got[n]["position"] for n in ("b1", "a2", "a3")] == [1, 2, 3]
    # every job runs at most its max_run_time of 100 s: b1 by 1100, a2 by 1200, a3 by 1300
    assert got["b1"]["start_estimate"] == {"earliest": 1100.0, "latest": 1100.0}
    assert got["a3"]["start_estimate"] == {"earliest": 1300.0, "latest": 1300.0}
    listed = {j["id"]: j for j in world.call("admin", "GET", "/api/v1/jobs").json()["items"]}
    assert listed[ids["a2"]]["queue"] == got["a2"]["queue"]
    assert listed[ids["a2"]]["start_estimate"] == got["a2"]["start_estimate"]
    # what the CLI prints
    assert queue_place(got["a3"]["queue"]) == "position 2 of 2 in your tenant, 3 of 3 in the pool"
    assert position(got["a3"]) == "3/3 (2/2)"
    assert start_estimate(got["a3"]["start_estimate"]) == "by 1970-01-01 00:21:40 UTC"
    assert start_estimate({"earliest": None, "latest": None}).startswith("unknown")
    assert start_estimate({"earliest": 1000.0, "latest": None}).startswith("from 1970-01-01 00:16:40 UTC")


def test_a_job_whose_grant_was_spent_down_shows_as_blocked_with_its_figures(world) -> None:
    """A non-preemptible job with a max_run_time of 1 h on h100 (4,000 KRW/h): admitted while its grant
    could pay it, then the grant is spent down to 3,999 KRW. It can never start as things stand: the API
    and the CLI show it blocked with what it needs and what is left, without a place in the queue."""
    from accelpool.cli.format import BLOCKED, shown
    from accelpool.core.types import Grant

    clock = VirtualClock(1000.0)
    rec = Reconciler(
        world.store, FakeExecutor(clock), clock, get_policy("max-min-fairness"), round_seconds=3.0
    )
    r = world.submit(
        "m1", name="whole", grant="g1", max_run_time=3600, resources={"type": "h100", "count": 1}
    )
    assert r.status_code == 201, r.text
    jid = r.json()["id"]
    world.store.add_grant(Grant("g1", "p1", "t1", 1_000_000, spent_krw=1_000_000 - 3_999))  # spent elsewhere
    other = world.submit("m2", name="next", grant="g2", resources={"type": "h100", "count": 1}).json()["id"]
    report = rec.step()
    assert [p.job for p in report.decision.start] == [other]
    got = world.call("m1", "GET", f"/api/v1/jobs/{jid}").json()
    assert got["state"] == "queued" and got["queue"] is None and got["position"] is None
    assert got["reason"] == (
        "blocked (budget): needs 1 x h100; grant g1 has 3999 KRW left and its max_run_time (60 min) costs at "
        "least 4000 KRW, set aside when it starts (it is not preemptible)"
    )
    assert shown("queue", got["queue"], got) == BLOCKED and position(got) == "blocked"
    listed = world.call("m1", "GET", "/api/v1/jobs").json()["items"]
    assert [j["reason"] for j in listed if j["id"] == jid] == [got["reason"]]
