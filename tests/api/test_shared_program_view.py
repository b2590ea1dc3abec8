"""A review's findings on what a member sees of a program it shares with other tenants, and on dashboard
inputs that answered 500: a member's burn rate and ``granted_krw`` are its own tenant's (they were the
whole program's: another tenant's spending and grants, and a run-out date from them); non-ASCII digits,
a 4,400-digit amount, a time zone that names a directory, and a job page's status and alert text taken
from the query string."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from accelpool.core.types import Charge, Grant


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _shared(world):
    """t3 joins p1 beside t1 (grant g3) and spends 28,000 KRW there this week."""
    s = world.store
    s.add_grant(Grant("g3", "p1", "t3", 500_000))
    world.tokens["m3"] = s.create_token("member", name="carol", tenant="t3")[1]
    jid = world.submit("m3", name="carols-job").json()["id"]
    world.start(jid)
    world.clock[0] = 5000.0
    s.record_charges([Charge(jid, "t3", "g3", "h100", 3600.0, 28_000, 1000.0, 4600.0)])


def test_a_member_sees_its_own_burn_rate_not_the_programs(world):
    _shared(world)
    mine = _text(world.client.get("/ui/programs", headers=world.h("m1")).text)
    assert "₩4,000" not in mine and "per day" in mine  # t1 spent nothing: no rate, no run-out from t3's
    theirs = _text(world.client.get("/ui/programs", headers=world.h("m3")).text)
    assert "₩4,000" in theirs  # 28,000 over 7 days
    admin = _text(world.client.get("/ui/programs", headers=world.h("admin")).text)
    assert "₩4,000" in admin


def test_a_member_sees_what_its_program_granted_it_not_others(world):
    _shared(world)

    def granted(who):
        items = world.call(who, "GET", "/api/v1/programs").json()["items"]
        return {p["id"]: p["granted_krw"] for p in items}

    assert granted("m1")["p1"] == 1_000_000  # g1 only: not g3 (t3's)
    assert granted("m3")["p1"] == 500_000
    assert granted("admin")["p1"] == 1_500_000 and granted("pm1")["p1"] == 1_500_000


def test_dashboard_inputs_that_answered_500(world):
    client = TestClient(world.app, raise_server_exceptions=False)
    jid = world.submit("m1").json()["id"]
    h = world.h("m1")
    for path in ("/ui/jobs?page=²", "/ui/jobs?after=²", "/ui/jobs?before=٣", f"/ui/jobs/{jid}?log=²"):
        assert client.get(path, headers=h).status_code == 200, path
    page = client.get("/ui/programs", headers=h).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    for url in ("/ui/grants/g1", "/ui/grants"):
        r = client.post(
            url,
            headers={**h, "content-type": "application/x-www-form-urlencoded"},
            content=f"csrf={csrf.group(1)}&program=p1&tenant=t1&amount_krw={'9' * 4400}",
        )
        assert 400 <= r.status_code < 500, (url, r.status_code)
    for tz in ("Asia", "a" * 300, "zoneinfo"):
        c = TestClient(world.app, raise_server_exceptions=False)
        assert c.get(f"/ui/settings?tz={tz}", follow_redirects=False).status_code in (200, 303, 307), tz
        c.cookies.set("accelpool_tz", tz)
        assert c.get("/ui/login").status_code == 200, tz
        assert c.get("/ui/jobs", headers=h).status_code == 200, tz


def test_a_job_pages_status_and_alert_are_not_the_query_strings(world):
    jid = world.submit("m1").json()["id"]
    r = world.client.get(
        f"/ui/jobs/{jid}?status=999&error=Re-enter+your+token+at+evil.example", headers=world.h("m1")
    )
    page = r.text.split("<footer>")[0]  # (the footer's settings form links back to this very URL)
    assert r.status_code == 200 and "evil.example" not in page
    assert "Done." not in page
    assert "Done." in world.client.get(f"/ui/jobs/{jid}?done=1", headers=world.h("m1")).text
