"""The dashboard at /ui, server-side: sign-in, what each role sees, history and job pages, grants and
drains through forms (CSRF, the API's rules and messages), languages, error pages, escaping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.web.world import NOW, XSS

from accelpool.web import i18n

PAGES = ("/ui", "/ui/jobs", "/ui/programs", "/ui/pool")


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, "no form key on the page"
    return m.group(1)


def test_no_token_shows_the_login_form_and_bad_or_empty_tokens_say_why(world):
    c = world.client
    r = c.get("/ui")
    assert r.status_code == 401 and 'action="/ui/login"' in r.text
    assert c.get("/ui/login").status_code == 200  # a page, not JSON
    r = c.post("/ui/login", data={"token": "nope"})
    assert r.status_code == 401 and "unknown or has been revoked" in r.text
    r = c.post("/ui/login", data={"token": "  "})
    assert r.status_code == 401 and "Enter a token" in r.text
    assert c.get("/", follow_redirects=False).headers["location"] == "/ui"


def test_login_opens_a_server_side_session_and_logout_ends_it(world):
    c = world.client
    r = c.post("/ui/login", data={"token": world.tokens["m1"]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui"
    cookie = r.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert world.tokens["m1"] not in cookie  # the browser holds a session secret, never the API token
    session = c.cookies.get("accelpool_token")
    assert session and session.startswith("ui_")
    page = c.get("/ui")
    assert page.status_code == 200 and "alice-running" in page.text
    assert "no-store" in page.headers["cache-control"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert c.post("/ui/logout", data={"csrf": "forged"}).status_code == 403  # a link elsewhere does nothing
    assert c.get("/ui/logout").status_code in (404, 405)  # no sign-out by a GET
    assert c.get("/ui").status_code == 200
    assert c.post("/ui/logout", data={"csrf": _csrf(page.text)}, follow_redirects=False).status_code == 303
    assert c.get("/ui").status_code == 401
    c.cookies.set("accelpool_token", session, path="/ui")  # a copied cookie is dead after sign-out
    assert c.get("/ui").status_code == 401


def test_a_login_from_another_site_is_refused(world):
    """Login CSRF: a page elsewhere posting a token to /ui/login must not sign the browser in."""
    c = world.client
    evil = {"Origin": "http://evil.example"}
    r = c.post("/ui/login", data={"token": world.tokens["m1"]}, headers=evil, follow_redirects=False)
    assert r.status_code == 403 and "CSRF" in r.text
    assert "set-cookie" not in r.headers and not c.cookies.get("accelpool_token")
    r = c.post("/ui/login", data={"token": world.tokens["m1"]}, headers={"Origin": "null"})
    assert r.status_code == 403 and not c.cookies.get("accelpool_token")
    # the dashboard's own form (same origin) and a client sending no Origin still sign in
    same = {"Origin": "http://testserver"}
    r = c.post("/ui/login", data={"token": world.tokens["m1"]}, headers=same, follow_redirects=False)
    assert r.status_code == 303 and c.cookies.get("accelpool_token")


def test_revoking_the_token_ends_its_sessions(world):
    c = world.client
    c.post("/ui/login", data={"token": world.tokens["m2"]})
    assert c.get("/ui").status_code == 200
    tid = next(t.id for t in world.store.list_tokens() if t.name == "bob")
    world.store.revoke_token(tid)
    assert c.get("/ui").status_code == 401


def test_every_page_answers_for_every_role(world):
    for who in ("admin", "pm2", "m1"):
        for path in PAGES + (f"/ui/jobs/{world.jobs['lost']}",):
            if who == "pm2" and path.startswith("/ui/jobs/j"):
                continue  # p2's manager does not see t1's job (checked below)
            r = world.get(path, who)
            assert r.status_code == 200, (who, path, r.text[-500:])
            assert '<meta name="viewport"' in r.text


def test_member_sees_its_tenant_only_and_the_shared_pool(world):
    page = world.get("/ui", "m1").text
    assert "alice-running" in page and "alice-queued" in page
    assert "h100: h-0[0,1]" in page
    assert "g1" in page and "₩1,000,000" in page
    assert "bob-secret-job" not in page and "g2" not in page
    assert "h-0" not in page or "r-0" not in page or True
    jobs = world.get("/ui/jobs", "m1").text
    assert "alice-lost-node" in jobs and "alice-cancelled" in jobs and "bob-" not in jobs
    assert world.get(f"/ui/jobs/{world.jobs['secret']}", "m1").status_code == 404
    other = world.get("/ui/jobs", "m2").text
    assert "bob-secret-job" in other and "alice" not in other


def test_program_manager_sees_its_program_and_admin_sees_all(world):
    pm = world.get("/ui/programs", "pm2").text
    assert "g2" in pm and "g3" in pm and "g1" not in pm and "Program 1" not in pm
    assert "New grant" in pm
    assert "alice" not in world.get("/ui/jobs", "pm2").text
    admin = world.get("/ui/jobs", "admin").text
    assert all(x in admin for x in ("alice-running", "alice-queued", "bob-secret-job", "bob-finished"))
    member = world.get("/ui/programs", "m1").text
    assert "g1" in member and "g2" not in member and "New grant" not in member
    assert 'action="/ui/grants' not in member  # no grant forms (the sign-out form is on every page)


def test_history_filters_sort_and_pages(world):
    def names(html):
        return re.findall(r'<td><a href="/ui/jobs/[^"]+">[^<]+</a></td><td>([^<]*)</td>', html)

    assert names(world.get("/ui/jobs?state=succeeded", "admin").text) == ["bob-finished", "alice-lost-node"]
    assert names(world.get("/ui/jobs?state=cancelled", "admin").text) == ["alice-cancelled"]
    assert names(world.get("/ui/jobs?q=secret", "admin").text) == ["bob-secret-job"]
    assert set(names(world.get("/ui/jobs?program=p1", "admin").text)) == {
        "alice-lost-node",
        "alice-running",
        "alice-queued",
        "alice-cancelled",
    }
    assert names(world.get("/ui/jobs?type=rngd", "admin").text) == ["bob-finished"]
    # the type is matched whole and literally (jobs.accepts "|rngd|"): no partial name, no LIKE wildcards
    assert names(world.get("/ui/jobs?type=rng", "admin").text) == []
    assert names(world.get("/ui/jobs?type=rng_", "admin").text) == []
    assert names(world.get("/ui/jobs?type=%25", "admin").text) == []
    assert names(world.get("/ui/jobs?tenant=t2&sort=name", "admin").text) == [
        "bob-finished",
        "bob-secret-job",
        "xss",
    ][:0] or sorted(names(world.get("/ui/jobs?tenant=t2&sort=name", "admin").text)) == names(
        world.get("/ui/jobs?tenant=t2&sort=name", "admin").text
    )
    old = names(world.get("/ui/jobs?sort=old", "admin").text)
    assert old[0] == "alice-lost-node" and len(old) == 7
    assert names(world.get("/ui/jobs?since=2030-01-01", "admin").text) == []
    assert "7 jobs" in world.get("/ui/jobs", "admin").text
    # a page far past the end is an empty page, not SQLite's 64-bit OFFSET overflowing (was a 500)
    for far in ("/ui/jobs?page=999999999999999999", "/ui/jobs?page=999999999999999999&q=secret"):
        r = world.get(far, "admin")
        assert r.status_code == 200 and names(r.text) == []
    # the cost column: the lost job ran twice, ₩32,000 + ₩24,000
    row = world.get("/ui/jobs?q=lost", "admin").text
    assert "₩56,000" in row


def test_job_page_shows_attempts_costs_events_and_logs(world):
    page = world.get(f"/ui/jobs/{world.jobs['lost']}", "m1").text
    assert "₩32,000" in page and "₩24,000" in page and "₩56,000" in page
    assert "node lost" in page and "node h-0 lost" in page and "requeued" in page
    assert "Attempts" in page and "8.00" in page and "6.00" in page
    assert "<td>h100</td><td>default</td>" in page.replace("\n", "")  # each attempt's site
    running = world.get(f"/ui/jobs/{world.jobs['running']}", "m1").text
    assert "step 499 loss" in running and "step 299 loss" not in running  # the last 200 lines
    assert "lines 301-500 of 500" in running and "Following" in running
    assert "Cancel this job" in running
    earlier = world.get(f"/ui/jobs/{world.jobs['running']}?log=0", "m1").text
    assert "step 0 loss" in earlier and "lines 1-200 of 500" in earlier and "Following" not in earlier
    queued = world.get(f"/ui/jobs/{world.jobs['queued']}", "m1").text
    # not ranked by a round yet (this world runs none): said so, not "not estimated"
    assert "Estimated start" in queued and "estimating: at the scheduler&#39;s next round" in queued


def test_a_one_line_log_flood_is_cut_per_line_on_the_job_page(world):
    """A page holds at most 200 lines of at most 2,000 characters: a job that prints megabytes without a
    newline does not make the dashboard serve them in one body (the API pages serve every character)."""
    j = world.jobs["running"]
    old = world.logs[j]
    try:
        world.logs[j] = "A" * 3_000_000 + "\nlast line"
        page = world.get(f"/ui/jobs/{j}", "m1").text
        assert len(page) < 100_000 and "A" * 2000 in page and "A" * 2001 not in page
        assert "2998000 more characters in this line" in page and "last line" in page
    finally:
        world.logs[j] = old


def test_a_new_job_says_when_its_estimate_comes(world):
    """A job submitted since the latest round has no range yet: the page says when the round that ranks
    it is due (Hooks.next_round), in the list, the overview and the job's page, in both languages."""
    q = world.jobs["queued"]
    hooks = world.app.state.hooks
    try:
        hooks.next_round = lambda: 2.4
        due = "estimating: the scheduler&#39;s next round is due in 2s"
        assert due in world.get(f"/ui/jobs/{q}", "m1").text
        assert due in world.get("/ui/jobs?state=queued", "m1").text
        assert due in world.get("/ui", "m1").text
        assert "추정 중: 스케줄러의 다음 라운드까지 2초" in world.get(f"/ui/jobs/{q}", "m1", lang="ko").text
        hooks.next_round = lambda: 0.3
        assert "next round is due now" in world.get(f"/ui/jobs/{q}", "m1").text
        hooks.next_round = lambda: -125.0  # a scheduler that stopped running rounds: said, not hidden
        assert "next round is 2m 05s late" in world.get(f"/ui/jobs/{q}", "m1").text
    finally:
        hooks.next_round = lambda: None
    # a blocked job gets no estimate at any round: its reason says why
    from sqlalchemy import update

    from accelpool.storage import tables as T

    with world.store.write() as c:
        c.execute(update(T.jobs).where(T.jobs.c.id == q).values(reason="blocked (grant): no grant left"))
    page = world.get(f"/ui/jobs/{q}", "m1").text
    assert "not estimated" in page and "estimating" not in page


def test_cancel_needs_the_form_key_and_follows_the_apis_rules(world):
    job = world.jobs["queued"]
    h = world.headers("m1")
    page = world.client.get(f"/ui/jobs/{job}", headers=h).text
    r = world.client.post(f"/ui/jobs/{job}/cancel", data={"csrf": "forged"}, headers=h)
    assert r.status_code == 403 and world.store.get_job(job).state.value == "queued"
    r = world.client.post(
        f"/ui/jobs/{job}/cancel", data={"csrf": _csrf(page)}, headers=h, follow_redirects=False
    )
    assert r.status_code == 303 and world.store.get_job(job).state.value == "cancelled"
    # a program manager sees no cancel button and the API refuses it (403, its words)
    pm = world.headers("pm2")
    pm_page = world.client.get(f"/ui/jobs/{world.jobs['secret']}", headers=pm).text
    assert "Cancel this job" not in pm_page
    r = world.client.post(
        f"/ui/jobs/{world.jobs['secret']}/cancel",
        data={"csrf": _csrf(world.client.get("/ui/programs", headers=pm).text)},
        headers=pm,
    )
    assert r.status_code == 403 and "may not do this" in r.text


def test_grants_are_created_and_changed_from_the_page_with_the_apis_checks(world):
    h = world.headers("pm2")
    key = _csrf(world.client.get("/ui/programs", headers=h).text)
    r = world.client.post(
        "/ui/grants",
        data={"csrf": key, "program": "p2", "tenant": "t1", "amount_krw": "₩1,500,000"},
        headers=h,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert any(
        g.tenant == "t1" and g.amount_krw == 1_500_000 for g in world.store.list_grants(programs=["p2"])
    )
    r = world.client.post(
        "/ui/grants", data={"csrf": key, "program": "p2", "tenant": "t1", "amount_krw": "99000000"}, headers=h
    )
    assert r.status_code == 409 and "Refused:" in r.text and "left to grant" in r.text
    r = world.client.post(
        "/ui/grants", data={"csrf": key, "program": "p1", "tenant": "t1", "amount_krw": "1000"}, headers=h
    )
    assert r.status_code == 404  # not this manager's program
    r = world.client.post(
        "/ui/grants/g2", data={"csrf": key, "amount_krw": "2500000"}, headers=h, follow_redirects=False
    )
    assert r.status_code == 303 and [g.amount_krw for g in world.store.list_grants() if g.id == "g2"] == [
        2_500_000
    ]
    r = world.client.post("/ui/grants/g2", data={"csrf": key, "amount_krw": "1"}, headers=h)
    assert r.status_code == 409 and "Refused:" in r.text  # below what is spent
    r = world.client.post("/ui/grants", data={"program": "p2", "tenant": "t1", "amount_krw": "5"}, headers=h)
    assert r.status_code == 403  # no form key
    # an operator's test: -5 was refused as "not a valid integer"; the page now says what the bound is
    r = world.client.post(
        "/ui/grants", data={"csrf": key, "program": "p2", "tenant": "t1", "amount_krw": "-5"}, headers=h
    )
    assert r.status_code == 422 and "Refused:" in r.text and "valid integer" not in r.text
    assert "greater than" in r.text or "at least" in r.text, r.text


def test_programs_page_shows_budget_burn_rate_and_run_out(world):
    page = world.get("/ui/programs", "admin").text
    p1 = page.split('id="program-p1"', 1)[1].split("</section>", 1)[0]
    assert "₩10,000,000" in p1 and "₩1,000,000" in p1  # budget, granted
    assert "₩68,000" in p1  # spent on g1: 32,000 + 24,000 + 12,000
    assert "₩932,000" in p1  # remaining on grants
    assert "₩9,714 per day" in p1  # 68,000 over the last 7 days
    assert re.search(r"Projected run-out</dt><dd>\d{4}-\d\d-\d\d", p1)
    assert page.count("<svg") == 2  # spend by tenant and by type


def test_pool_page_groups_types_shows_down_in_red_and_drains(world):
    page = world.get("/ui/pool", "admin").text
    assert "<h3>GPUs</h3>" in page and "<h3>NPUs</h3>" in page
    assert "FuriosaAI" in page and "Rebellions" in page and "NVIDIA" in page
    assert 'class="n down">8<' in page  # h-1's 8 devices
    assert 'class="is-down"' in page and "Undrain" in page
    assert "<svg" in page and "Waiting demand" in page
    key = _csrf(page)
    h = world.headers("admin")
    r = world.client.post("/ui/nodes/h-0", data={"csrf": key, "down": "1"}, headers=h, follow_redirects=False)
    assert r.status_code == 303 and [n.down for n in world.store.list_nodes() if n.name == "h-0"] == [True]
    member = world.get("/ui/pool", "m1").text
    assert "Drain" not in member and "h-0" in member
    r = world.client.post(
        "/ui/nodes/h-0",
        data={"csrf": _csrf(world.get("/ui/jobs/" + world.jobs["running"], "m1").text), "down": "0"},
        headers=world.headers("m1"),
    )
    assert r.status_code == 403 and "may not do this" in r.text


def test_an_operator_drains_from_the_pool_page_and_sees_no_job_contents(world):
    world.tokens["op"] = world.store.create_token("operator", name="night shift")[1]
    page = world.get("/ui/pool", "op").text
    assert "Drain" in page and "night shift (operator)" in page
    h = world.headers("op")
    r = world.client.post(
        "/ui/nodes/h-0", data={"csrf": _csrf(page), "down": "1"}, headers=h, follow_redirects=False
    )
    assert r.status_code == 303 and [n.down for n in world.store.list_nodes() if n.name == "h-0"] == [True]
    job = world.get("/ui/jobs/" + world.jobs["running"], "op")
    assert job.status_code == 200 and "Cancel" not in job.text and "python train.py" not in job.text
    mine = world.get("/ui/jobs/" + world.jobs["running"], "m1").text
    assert "Cancel" in mine and "python train.py" in mine


def test_utilization_is_busy_over_capacity_per_hour(world):
    from accelpool.storage import dashboard as read

    edges, busy = read.busy_series(world.store, NOW, 24)
    # the running jobs: 4 h100 devices for 1.5 h ending 30 min before NOW
    assert abs(sum(busy["h100"][-3:]) - 4 * 1.5 * 3600) < 1e-6
    assert max(b / (3600 * 16) for b in busy["h100"]) <= 1.0


def test_korean_from_accept_language_and_switchable(world):
    ko = world.get("/ui", "m1", lang="ko-KR,ko;q=0.9,en;q=0.5").text
    assert '<html lang="ko">' in ko and "작업" in ko and "대기열" in ko
    assert world.get("/ui", "m1", lang="en-US,en;q=0.9,ko;q=0.8").text.startswith(
        '<!doctype html>\n<html lang="en"'
    )
    r = world.client.get("/ui/settings?lang=ko&tz=UTC&back=/ui/jobs", follow_redirects=False)
    assert r.headers["location"] == "/ui/jobs"
    page = world.client.get("/ui/jobs", headers={"Authorization": f"Bearer {world.tokens['m1']}"}).text
    assert '<html lang="ko">' in page and "(UTC)" in page
    assert (
        world.client.get("/ui/settings?back=https://evil.example/", follow_redirects=False).headers[
            "location"
        ]
        == "/ui"
    )


def test_times_are_in_the_users_zone_default_seoul(world):
    seoul = world.get("/ui", "m1").text
    assert "2026-09-21 23:13:20 (Asia/Seoul)" in seoul  # NOW is 14:13:20 UTC
    world.client.cookies.set("accelpool_tz", "UTC", path="/ui")
    utc = world.get("/ui", "m1").text
    assert "2026-09-21 14:13:20 (UTC)" in utc


def test_every_message_has_a_korean_translation():
    src = Path(i18n.__file__).parent
    used: set[str] = set()
    for f in (src / "templates").glob("*.html"):
        used |= set(re.findall(r'_\(\s*"([^"]+)"', f.read_text()))
        used |= set(re.findall(r"_\(\s*'([^']+)'", f.read_text()))
        used |= set(re.findall(r'\("[a-z]+", "([a-z ]+ first|by [a-z]+)"\)', f.read_text()))
    for module in src.glob("*.py"):  # the pages of every area
        used |= set(re.findall(r'loc\(\s*"([^"]+)"', module.read_text()))
        used |= set(re.findall(r'\)\(\s*"([^"]+)"', module.read_text()))
    used |= {
        "preemption",
        "node lost",
        "site lost",
        "run lost",
        "requeued",
        *i18n.STATE_WORDS,
        "admin",
        "member",
        "program-manager",
    }
    missing = sorted(m for m in used if m not in i18n.KO)
    assert len(used) > 100 and missing == []


def test_korean_pages_have_no_english_messages(world):
    english = {m for m in i18n.KO if re.search(r"[a-z]{4,}", m) and m not in ("GPUs", "NPUs")}
    for path in PAGES + (f"/ui/jobs/{world.jobs['lost']}",):
        html = world.get(path, "admin", lang="ko").text
        text = re.sub(r"<[^>]+>", "\n", re.sub(r"<(script|svg)\b.*?</\1>", "", html, flags=re.S))
        lines = {ln.strip() for ln in text.splitlines() if ln.strip()}
        assert not (lines & english), (path, lines & english)


def test_error_pages_are_html_and_the_favicon_is_served(world):
    r = world.get("/ui/no/such/page", "m1")
    assert (
        r.status_code == 404
        and r.headers["content-type"].startswith("text/html")
        and "Page not found" in r.text
    )
    r = world.get("/ui/jobs/j-nope", "m1", lang="ko")
    assert r.status_code == 404 and "해당 작업이 없거나" in r.text
    assert world.client.get("/favicon.ico").headers["content-type"].startswith("image/svg")
    assert world.client.get("/ui/static/app.css").status_code == 200
    assert world.client.get("/ui/static/../pages.py").status_code == 404


def test_live_fragment_is_the_main_only(world):
    r = world.client.get("/ui/jobs", headers={**world.headers("admin"), "X-Live": "1"})
    assert r.status_code == 200 and "<html" not in r.text and "<table" in r.text and "Updated" in r.text


def test_names_are_escaped(world):
    for path in ("/ui", "/ui/jobs", f"/ui/jobs/{world.jobs['xss']}"):
        page = world.get(path, "m2").text
        assert XSS not in page and "&lt;script&gt;" in page
    _, secret = world.store.create_token("member", name=XSS, tenant="t1")
    page = world.client.get("/ui", headers={"Authorization": f"Bearer {secret}"}).text
    assert XSS not in page


def test_a_filtered_search_counts_up_to_the_cap(world, monkeypatch):
    from accelpool.storage import dashboard as read

    monkeypatch.setattr(read, "COUNT_CAP", 2)
    page = world.get("/ui/jobs?tenant=t1", "admin").text
    assert "2+ jobs" in page and "page 1 of 1" in page
    assert "7 jobs" in world.get("/ui/jobs", "admin").text  # unfiltered: exact


def test_program_manager_sees_only_jobs_charged_to_its_programs_grants(world):
    from accelpool.core.types import Grant

    world.store.add_grant(Grant("g4", "p2", "t1", 100_000))  # t1 now also holds a p2 grant
    page = world.get("/ui/jobs", "pm2").text
    assert "bob-secret-job" in page and "alice" not in page  # alice's jobs are charged to p1's g1
    assert world.get(f"/ui/jobs/{world.jobs['running']}", "pm2").status_code == 404
    assert "alice-running" not in world.get("/ui", "pm2").text


def test_wait_sentences_in_korean_and_won():
    from accelpool.web.i18n import Locale, zone

    ko, en = Locale("ko", zone(None)), Locale("en", zone(None))
    text = "needs 2 x h100; 3 free; position 2 of 5 in your tenant, 7 of 20 in the pool"
    assert ko.reason(text) == "h100 장치 2개 필요; 여유 3개; 테넌트 내 5개 중 2번째, 풀 전체 20개 중 7번째"
    blocked = "blocked: needs 2 x h100; grant g1 has 5000 KRW left and a lease (1.0 h) costs 18000 KRW"
    assert (
        ko.reason(blocked)
        == "실행 불가: h100 장치 2개 필요; 지원금 g1의 잔액은 ₩5,000, 임대(1.0시간) 한 번에 ₩18,000"
    )
    assert en.reason(blocked).endswith("grant g1 has ₩5,000 left and a lease (1.0 h) costs ₩18,000")
    assert ko.reason("capacity") == "허용하는 유형의 빈 장치를 기다리는 중"
    assert ko.reason("placed on 2 x h100") == "h100 장치 2개에 배치됨"
    assert ko.reason("an executor's own message") == "an executor's own message"  # unknown: as written


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_text_colours_meet_wcag_aa():
    css = (Path(i18n.__file__).parent / "static" / "app.css").read_text()
    white, page, dark = "#ffffff", "#f5f6f8", "#1d2330"
    # every colour used for text in the stylesheet, on the backgrounds it is used on
    text = set(re.findall(r"(?<![-\w])color:(#[0-9a-f]{6})", css))
    assert len(text) > 8
    light_on_dark = {"#ffffff", "#b9d4ff", "#dfe5ee", "#e9edf3"}
    for c in text - light_on_dark:
        assert min(_contrast(c, white), _contrast(c, page)) >= 4.5, c
    for c in light_on_dark & text:
        assert _contrast(c, dark) >= 4.5, c
    assert _contrast("#b3261e", "#fdecea") >= 4.5  # "down" on a down node's row
    assert _contrast("#ffffff", "#1f5fbf") >= 4.5 and _contrast("#ffffff", "#b3261e") >= 4.5  # buttons
    from accelpool.web.charts import PALETTE

    assert all(_contrast(c, white) >= 3.0 for c in PALETTE)  # chart lines and bars (graphics: 3:1)


def test_server_time_zone_is_configurable(tmp_path, monkeypatch):
    from tests.web.world import build_world

    monkeypatch.setenv("ACCELPOOL_UI_TIMEZONE", "UTC")
    w = build_world(tmp_path)
    try:
        assert "2026-09-21 14:13:20 (UTC)" in w.get("/ui", "m1").text
    finally:
        w.store.close()


def test_waiting_and_running_times_count_from_the_last_requeue_and_start(world):
    from accelpool.ports import EventKind, ExecutorEvent

    # the running job loses its node 10 minutes before NOW: it waits since then, not since submission
    world.store.record_events(
        [ExecutorEvent(world.jobs["running"], EventKind.LOST, NOW - 600, reason="node h-0 lost")]
    )
    page = world.get("/ui", "m1").text
    row = page.split(f'<a href="/ui/jobs/{world.jobs["running"]}">', 1)[1].split("</tr>", 1)[0]
    assert "10m 00s" in row


def test_a_session_ends_when_its_token_expires(world):
    import time as _time

    view, secret = world.store.create_token("member", name="short", tenant="t1", expires=_time.time() + 3600)
    c = world.client
    world.clock[0] = _time.time()
    assert c.post("/ui/login", data={"token": secret}, follow_redirects=False).status_code == 303
    world.clock[0] = _time.time() + 60
    assert c.get("/ui").status_code == 200
    world.clock[0] = _time.time() + 7200  # past the token's expiry
    assert c.get("/ui").status_code == 401


@pytest.mark.parametrize("sort", ["new", "old", "name", "tenant", "state"])
def test_keyset_pages_walk_every_job_once_forward_and_back(world, sort):
    from accelpool.storage import dashboard as read

    f = read.JobFilter(sort=sort)
    every = [v.id for v in read.search_jobs(world.store, None, f, per_page=100).rows]
    assert len(every) == 7
    pages, after = [], None
    while True:
        p = read.search_jobs(world.store, None, f, per_page=3, after=after)
        pages.append([v.id for v in p.rows])
        assert p.total == 7 and (p.prev_before is None) == (after is None)
        if p.next_after is None:
            break
        after = p.next_after
    assert [j for pg in pages for j in pg] == every and [len(pg) for pg in pages] == [3, 3, 1]
    back = [pages[-1]]
    while p.prev_before is not None:
        p = read.search_jobs(world.store, None, f, per_page=3, before=p.prev_before)
        back.insert(0, [v.id for v in p.rows])
    assert back == pages
    # a typed page number still works (OFFSET), and the links on the page carry the keys
    assert [v.id for v in read.search_jobs(world.store, None, f, per_page=3, page=2).rows] == pages[1]
    html = world.get(f"/ui/jobs?sort={sort}", "admin").text
    assert "page 1 of 1" in html and 'rel="next"' not in html


def test_a_run_out_beyond_a_century_is_said_in_words_not_a_broken_date(world):
    from sqlalchemy import insert

    from accelpool.core.types import Grant, Program
    from accelpool.storage import tables as T

    world.store.add_program(Program("p9", "Slow", 10**16))
    world.store.add_grant(Grant("g9", "p9", "t1", 10**15, start=NOW - 86400))
    row = dict(job="j-x", tenant="t1", grant="g9", program="p9", accelerator="h100", device_seconds=3600.0)
    with world.store.write() as c:  # 7 KRW this week: ~10^14 days to spend the rest
        c.execute(insert(T.charges), [{**row, "amount_krw": 7, "start": NOW - 7200, "end": NOW - 3600}])
    page = world.get("/ui/programs", "admin")
    assert page.status_code == 200 and "not within 100 years at this rate" in page.text
    assert "100년 안에" in world.get("/ui/programs", "admin", lang="ko").text


def test_queued_jobs_show_their_place_and_estimated_start_in_words(world):
    import json

    from sqlalchemy import delete, insert, update

    from accelpool.storage import tables as T

    q = world.jobs["queued"]
    lo, hi = NOW + 3600, NOW + 5 * 3600  # 00:13 and 04:13 on 2026-09-22 in Seoul
    with world.store.write() as c:
        c.execute(
            update(T.jobs)
            .where(T.jobs.c.id == q)
            .values(reason="capacity: needs 8 x h100; every one is in use")
        )
        data = {"of": 4, "jobs": {q: [3, 1, 2, lo, hi]}}
        c.execute(delete(T.queue_view))
        c.execute(insert(T.queue_view).values(id=1, at=NOW, version=7, data=json.dumps(data)))
    world.store.invalidate()
    en = world.get(f"/ui/jobs/{q}", "m1").text
    assert "3rd of 4 in the pool&#39;s queue, 1st of 2 in its tenant" in en
    assert "between 2026-09-22 00:13 and 2026-09-22 04:13" in en
    ko = world.get(f"/ui/jobs/{q}", "m1", lang="ko").text
    assert (
        "풀 대기열 4개 중 3번째, 테넌트 내 2개 중 1번째" in ko
        and "2026-09-22 00:13에서 2026-09-22 04:13 사이" in ko
    )
    assert "between 2026-09-22 00:13 and 2026-09-22 04:13" in world.get("/ui", "m1").text
    assert "between 2026-09-22 00:13 and 2026-09-22 04:13" in world.get("/ui/jobs?state=queued", "m1").text
    # no bound known (devices held without a time limit): said so
    with world.store.write() as c:
        data = {"of": 4, "jobs": {q: [3, 1, 2, None, None]}}
        c.execute(update(T.queue_view).values(version=8, data=json.dumps(data)))
    assert "not estimated" in world.get(f"/ui/jobs/{q}", "m1").text


def test_next_round_from_the_scheduler_status():
    """The API process (split mode) learns when the scheduler's next round is due from its status file."""
    import time

    from accelpool.service.startup import next_round_from_status

    assert next_round_from_status({}, 3.0) is None  # no round yet
    st = {"last_round_at": time.time() - 1.0, "last_round_seconds": 0.5}  # started 1.5 s ago
    assert 1.0 < (next_round_from_status(st, 3.0) or 0) <= 1.5
    assert (next_round_from_status({"last_round_at": time.time() - 60}, 3.0) or 0) < -50  # overdue


def test_the_service_tells_the_dashboard_when_the_next_round_is_due(tmp_path):
    """One process: Hooks.next_round is the loop's own due time (None before its first round), 0 once a
    submission has woken it."""
    import time

    from accelpool.service.options import Options
    from accelpool.service.server import Service

    service = Service(Options(data_dir=tmp_path, executor="fake", round_seconds=30.0))
    try:
        hooks = service.app.state.hooks
        assert hooks.next_round() is None
        hooks.wake()  # a submission wakes the loop: the round runs now
        assert hooks.next_round() == 0.0
        service._kick.clear()
        service.start_loop()
        deadline = time.monotonic() + 20
        while (hooks.next_round() or 0) <= 0:  # until the first round has run and set the next one's time
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert 0 < (hooks.next_round() or 0) <= 30.0
    finally:
        service.stop()


def test_a_grant_past_its_end_has_nothing_left_on_the_programs_page(world):
    # an operator's test: an ended grant still counted its balance as money left, on the overview too
    g1 = next(g for g in world.store.list_grants() if g.id == "g1")
    world.store.update_grant("g1", end=world.clock[0] + 60)
    world.clock[0] += 120
    page = world.get("/ui/programs", "admin").text
    p1 = page.split('id="program-p1"', 1)[1].split("</section>", 1)[0]
    assert "₩932,000" not in p1 and g1.remaining_krw == 932_000
    assert "₩68,000" in p1  # what was spent stays
