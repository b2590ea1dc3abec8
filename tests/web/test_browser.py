"""The dashboard in a real browser: Debian's chromium driven by Playwright (no browser download).

Every page as admin, program manager and member, at 390 px and 1400 px: content and visibility, no
horizontal page scroll, no request to another origin (every request is intercepted), Korean without
English messages, a live update seen without a reload, a job named ``<script>`` shown as text. A
screenshot of every page goes to ``test-artifacts/screenshots/`` (the README names it)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.web.world import XSS, World, build_world

from accelpool.web import i18n

CHROMIUM = os.environ.get("ACCELPOOL_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PAGES = {"overview": "/ui", "jobs": "/ui/jobs", "programs": "/ui/programs", "pool": "/ui/pool"}
ROLES = ("admin", "pm2", "m1")

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: Any) -> Iterator[tuple[World, str]]:
    import uvicorn

    world = build_world(tmp_path_factory.mktemp("browser"))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(world.app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield world, f"http://127.0.0.1:{port}"
    server.should_exit = True
    t.join(10)
    world.store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium; scripts/test.sh does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Session:
    """A browser context signed in as one role, recording every request that leaves the origin."""

    def __init__(
        self, browser: Any, base: str, world: World, who: str, width: int, lang: str, accept: bool = False
    ) -> None:
        self.base = base
        self.foreign: list[str] = []
        self.dialogs: list[str] = []
        self.ctx = browser.new_context(
            viewport={"width": width, "height": 900},
            locale="ko-KR" if lang == "ko" else "en-US",
            extra_http_headers={"Accept-Language": "ko-KR,ko;q=0.9" if lang == "ko" else "en-US,en;q=0.9"},
        )
        self.ctx.route("**/*", self._route)
        # sign in as a person does (the form), which opens a session cookie in this context
        r = self.ctx.request.post(base + "/ui/login", form={"token": world.tokens[who]}, max_redirects=0)
        assert r.status == 303, r.text()
        self.page = self.ctx.new_page()
        self.page.on(
            "dialog", lambda d: (self.dialogs.append(d.message), d.accept() if accept else d.dismiss())
        )

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(self.base + "/") or url.startswith("data:"):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def goto(self, path: str) -> Any:
        r = self.page.goto(self.base + path)
        self.page.wait_for_load_state("load")
        return r

    def h_scroll(self) -> int:
        return int(self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))

    def close(self) -> None:
        self.ctx.close()


def _shot(s: Session, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    s.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("width", [390, 1400])
@pytest.mark.parametrize("who", ROLES)
def test_every_page_fits_and_stays_on_this_origin(served, browser, who, width):
    world, base = served
    for lang in ("en", "ko"):
        s = Session(browser, base, world, who, width, lang)
        try:
            paths = dict(PAGES)
            paths["job"] = f"/ui/jobs/{world.jobs['secret' if who == 'pm2' else 'lost']}"
            for name, path in paths.items():
                r = s.goto(path)
                assert r.status == 200, (who, path)
                assert s.h_scroll() <= 0, f"{who} {path} at {width}px scrolls sideways by {s.h_scroll()}px"
                assert s.page.locator("main h1").is_visible()
                _shot(s, f"{name}-{who}-{width}-{lang}")
            assert s.foreign == [], s.foreign
            assert s.dialogs == []
        finally:
            s.close()


def test_what_each_role_sees(served, browser):
    world, base = served
    admin = Session(browser, base, world, "admin", 1400, "en")
    pm = Session(browser, base, world, "pm2", 1400, "en")
    member = Session(browser, base, world, "m1", 1400, "en")
    try:
        admin.goto("/ui/jobs")
        text = admin.page.inner_text("main")
        assert "alice-running" in text and "bob-secret-job" in text
        member.goto("/ui/jobs")
        text = member.page.inner_text("main")
        assert "alice-running" in text and "bob-secret-job" not in text
        pm.goto("/ui/programs")
        text = pm.page.inner_text("main")
        assert "g2" in text and "g1" not in text and "₩20,000,000" in text
        assert pm.page.locator("summary", has_text="New grant").is_visible()
        member.goto("/ui/programs")
        assert member.page.locator("summary", has_text="New grant").count() == 0
        admin.goto("/ui/pool")
        assert admin.page.locator("tr.is-down").count() == 1
        assert (
            admin.page.locator("td.down").first.evaluate("e => getComputedStyle(e).color")
            == "rgb(179, 38, 30)"
        )
        assert admin.page.get_by_role("button", name="Undrain").count() == 1
        member.goto("/ui/pool")
        assert member.page.get_by_role("button", name="Drain").count() == 0
    finally:
        for s in (admin, pm, member):
            s.close()


def test_sign_in_form_and_empty_token(served, browser):
    world, base = served
    ctx = browser.new_context(viewport={"width": 390, "height": 800})
    page = ctx.new_page()
    try:
        page.goto(base + "/ui/login")
        page.click("button[type=submit]")
        assert "Enter a token" in page.inner_text("main")
        page.fill("#token", world.tokens["m1"])
        page.click("button[type=submit]")
        page.wait_for_url(base + "/ui")
        assert "alice-running" in page.inner_text("main")
        _shot(_Shot(page), "login-done-m1-390-en")  # type: ignore[arg-type]
    finally:
        ctx.close()


class _Shot:
    def __init__(self, page: Any) -> None:
        self.page = page


def test_korean_pages_show_no_english_messages(served, browser):
    world, base = served
    english = {m for m in i18n.KO if re.search(r"[a-z]{4,}", m)}
    s = Session(browser, base, world, "admin", 1400, "ko")
    try:
        for path in [*PAGES.values(), f"/ui/jobs/{world.jobs['lost']}"]:
            s.goto(path)
            assert s.page.evaluate("document.documentElement.lang") == "ko"
            lines = {ln.strip() for ln in s.page.inner_text("body").splitlines() if ln.strip()}
            assert not (lines & english), (path, lines & english)
            assert "₩" in s.page.inner_text("body") or path == "/ui/pool"
    finally:
        s.close()


def test_language_switch_in_the_footer(served, browser):
    world, base = served
    s = Session(browser, base, world, "m1", 390, "en")
    try:
        s.goto("/ui/jobs")
        s.page.select_option("select[name=lang]", "ko")
        s.page.click("footer button[type=submit]")
        s.page.wait_for_load_state("load")
        assert s.page.evaluate("document.documentElement.lang") == "ko"
        assert "작업" in s.page.inner_text("main") and s.page.url.endswith("/ui/jobs")
    finally:
        s.close()


def test_the_page_updates_itself_without_a_reload(served, browser):
    world, base = served
    s = Session(browser, base, world, "admin", 1400, "en")
    try:
        s.goto("/ui/jobs")
        s.page.evaluate("window.__marker = 'same page'")
        body = {"name": "arrived-later", "command": "true", "resources": {"type": "h100", "count": 1}}
        r = world.client.post("/api/v1/jobs?tenant=t3", json=body, headers=world.headers("admin"))
        assert r.status_code == 201, r.text
        s.page.wait_for_selector("text=arrived-later", timeout=15_000)
        assert s.page.evaluate("window.__marker") == "same page"  # no navigation happened
        assert s.foreign == []
    finally:
        s.close()


def test_a_job_named_script_is_shown_as_text(served, browser):
    world, base = served
    s = Session(browser, base, world, "m2", 1400, "en")
    try:
        s.goto(f"/ui/jobs/{world.jobs['xss']}")
        assert XSS in s.page.inner_text("main")  # the text, not a script
        assert s.page.evaluate("document.querySelectorAll('main script').length") == 0
        s.goto("/ui/jobs")
        assert XSS in s.page.inner_text("main")
        s.page.wait_for_timeout(300)
        assert s.dialogs == []
    finally:
        s.close()


def test_what_to_build_items_in_the_browser(served, browser, monkeypatch):
    """The issue's list, page by page, as a person uses it: filters, sort and keyset pages on the history;
    the job page's timeline, attempts, KRW, paged logs and cancel; burn rate, run-out and spend charts;
    the pool's chart, groups, vendors, demand, red capacity and drain; the last-updated time and zone;
    HTML error pages and the favicon."""
    from accelpool.web import jobs_pages

    world, base = served
    monkeypatch.setattr(jobs_pages, "PER_PAGE", 3)  # 7+ jobs: three pages
    s = Session(browser, base, world, "admin", 1400, "en")
    try:
        # jobs: filter by state through the form, sort, then walk the keyset pages and back
        s.goto("/ui/jobs")
        s.page.select_option("select[name=state]", "succeeded")
        s.page.click("form.filters button[type=submit]")
        s.page.wait_for_load_state("load")
        assert "state=succeeded" in s.page.url
        names = s.page.locator("#jobs tbody tr td:nth-child(2)").all_inner_texts()
        assert set(names) == {"bob-finished", "alice-lost-node"}
        s.goto("/ui/jobs?sort=name")
        seen = []
        for _ in range(5):
            seen += s.page.locator("#jobs tbody tr td:nth-child(2)").all_inner_texts()
            nxt = s.page.locator("a[rel=next]")
            if nxt.count() == 0:
                break
            nxt.click()
            s.page.wait_for_load_state("load")
        assert len(seen) >= 7 and seen == sorted(seen, key=str) and len(set(seen)) == len(seen)
        s.page.locator("a[rel=prev]").click()
        s.page.wait_for_load_state("load")
        assert "page 2 of" in s.page.inner_text("main")
        # job page: the timeline marks the node loss and the requeue, two attempts with KRW, a total
        s.goto(f"/ui/jobs/{world.jobs['lost']}")
        main = s.page.inner_text("main")
        assert "node lost" in main and "requeued" in main and "₩56,000" in main
        assert s.page.locator("table tbody tr", has_text="₩32,000").count() == 1
        # logs of a running job: the newest 200 lines, following; earlier lines a click away
        s.goto(f"/ui/jobs/{world.jobs['running']}")
        main = s.page.inner_text("main")
        assert "lines 301-500 of 500" in main and "Following" in main
        s.page.get_by_role("link", name="Earlier").click()
        s.page.wait_for_load_state("load")
        assert "lines 101-300 of 500" in s.page.inner_text("main")
        # programs: burn rate, run-out and the two spend charts
        s.goto("/ui/programs")
        main = s.page.inner_text("main")
        assert "Burn rate (last 7 days)" in main and "Projected run-out" in main and "per day" in main
        assert s.page.locator("section.chart-card svg").count() == 2
        # pool: the utilization chart, GPUs and NPUs apart with vendors, demand, red capacity, drain
        s.goto("/ui/pool")
        main = s.page.inner_text("main")
        assert "GPUs" in main and "NPUs" in main and "NVIDIA" in main and "FuriosaAI" in main
        assert "Waiting demand" in main and s.page.locator("section.chart-card svg").count() == 1
        s.page.locator("tr", has_text="a-0").get_by_role("button", name="Drain").click()
        s.page.wait_for_load_state("load")
        assert s.page.url.endswith("/ui/pool?done=1"), s.page.inner_text("main")
        assert s.page.locator("tr.is-down", has_text="a-0").count() == 1
        s.page.locator("tr", has_text="a-0").get_by_role("button", name="Undrain").click()
        s.page.wait_for_load_state("load")
        assert s.page.locator("tr.is-down", has_text="a-0").count() == 0
        # live: the page says when it was updated and in which zone
        assert re.search(r"Updated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(Asia/Seoul\)", s.page.inner_text("main"))
        # an unknown address and a job one may not see: HTML pages; the favicon is served
        r = s.goto("/ui/no/such/page")
        assert r.status == 404 and "Page not found" in s.page.inner_text("main")
        fav = s.ctx.request.get(base + "/favicon.ico")
        assert fav.status == 200 and fav.headers["content-type"].startswith("image/svg")
        assert s.foreign == []
    finally:
        s.close()


def test_a_member_cancels_its_job_from_the_page(served, browser):
    world, base = served
    s = Session(browser, base, world, "m1", 390, "en", accept=True)
    try:
        body = {"name": "to-cancel", "command": "true", "resources": {"type": "h100", "count": 1}}
        r = world.client.post("/api/v1/jobs", json=body, headers=world.headers("m1"))
        assert r.status_code == 201, r.text
        jid = r.json()["id"]
        s.goto(f"/ui/jobs/{jid}")
        s.page.get_by_role("button", name="Cancel this job").click()
        s.page.wait_for_url(re.compile(r".*done=1"))
        assert "cancelled" in s.page.inner_text("main")
        assert s.page.get_by_role("button", name="Cancel this job").count() == 0
        assert s.dialogs == ["Really cancel this job?"] and s.h_scroll() <= 0
    finally:
        s.close()


def test_a_program_manager_creates_and_changes_a_grant_from_the_page(served, browser):
    world, base = served
    s = Session(browser, base, world, "pm2", 390, "en")
    try:
        s.goto("/ui/programs")
        s.page.locator("summary", has_text="New grant").click()
        s.page.select_option("select[name=tenant]", "t1")
        s.page.fill("form.grid-form input[name=amount_krw]", "1,500,000")
        s.page.get_by_role("button", name="Create grant").click()
        s.page.wait_for_url(re.compile(r".*/ui/programs\?done=1"))
        row = s.page.locator("tr", has_text="₩1,500,000")
        assert row.count() == 1 and "t1" in row.inner_text()
        # more than the program has left: the API's refusal, in words, on the page
        form = s.page.locator("tr", has_text="g2").locator("form")
        form.locator("input[name=amount_krw]").fill("999999999999")
        form.get_by_role("button", name="Change").click()
        s.page.wait_for_load_state("load")
        assert "Refused:" in s.page.inner_text("main") and s.h_scroll() <= 0
        assert s.foreign == []
    finally:
        s.close()


CONTRAST_JS = (Path(__file__).parent / "contrast.js").read_text()
FOCUS_JS = """() => {
  const el = document.activeElement, s = getComputedStyle(el);
  const parse = (c) => (c.match(/rgba?\\(([^)]+)\\)/) || [, "0,0,0,0"])[1].split(/[ ,\\/]+/).map(Number);
  let bg = [255, 255, 255];
  for (let e = el.parentElement; e; e = e.parentElement) {
    const b = parse(getComputedStyle(e).backgroundColor);
    if (b.length < 4 || b[3] > 0) { bg = b.slice(0, 3); break; }
  }
  return {tag: el.tagName, text: (el.textContent || el.name || "").trim().slice(0, 30),
          width: parseFloat(s.outlineWidth), outline: parse(s.outlineColor).slice(0, 3), bg};
}"""


def _ratio(a: list[float], b: list[float]) -> float:
    def lum(c: list[float]) -> float:
        f = [v / 255 for v in c[:3]]
        g = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in f]
        return 0.2126 * g[0] + 0.7152 * g[1] + 0.0722 * g[2]

    x, y = lum(a), lum(b)
    return (max(x, y) + 0.05) / (min(x, y) + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_contrast_meets_wcag_aa_in_the_browser(served, browser, scheme):
    """WCAG 2.1 AA on what Chromium paints (computed styles, backgrounds composited): text 4.5:1 (3:1 when
    large), form-control boundaries, legend swatches and chart marks 3:1 (1.4.11), the keyboard focus
    outline 3:1 against what is behind it; every page for every role, the sign-in and error pages, under
    a light and a dark preferred colour scheme (the dashboard has one theme; a dark preference must not
    make any of it unreadable)."""
    world, base = served
    failures: list[str] = []
    checked = 0
    for who in ROLES:
        s = Session(browser, base, world, who, 1400, "en")
        s.page.emulate_media(color_scheme=scheme)
        try:
            paths = dict(PAGES)
            paths["job"] = f"/ui/jobs/{world.jobs['secret' if who == 'pm2' else 'lost']}"
            paths["running"] = f"/ui/jobs/{world.jobs['running']}"
            paths["missing"] = "/ui/no/such/page"
            for path in paths.values():
                s.goto(path)
                found = s.page.evaluate(CONTRAST_JS)
                checked += len(found)
                failures += [f"{who} {path}: {r}" for r in found if r["ratio"] < r["need"]]
                for _ in range(12):  # the first stops of the keyboard's focus order
                    s.page.keyboard.press("Tab")
                    f = s.page.evaluate(FOCUS_JS)
                    if f["width"] > 0 and _ratio(f["outline"], f["bg"]) < 3:
                        failures.append(f"{who} {path}: focus outline {f}")
        finally:
            s.close()
    ctx = browser.new_context(viewport={"width": 390, "height": 800})  # signed out: the sign-in page
    try:
        page = ctx.new_page()
        page.emulate_media(color_scheme=scheme)
        page.goto(base + "/ui/login")
        page.click("button[type=submit]")  # the empty-token message too
        found = page.evaluate(CONTRAST_JS)
        checked += len(found)
        failures += [f"login: {r}" for r in found if r["ratio"] < r["need"]]
        assert any(r["kind"] == "text" and "Enter a token" in r["text"] for r in found)
    finally:
        ctx.close()
    assert checked > 500
    assert failures == [], "\n".join(sorted(set(failures))[:40])
