"""GET /jobs/{id}/logs serves a job's output in pages (at most 1 MiB characters each), never as one body."""

from __future__ import annotations


def test_logs_come_in_bounded_pages(world) -> None:
    jid = world.submit().json()["id"]
    world.start(jid)
    text = "".join(f"line {i:07d}\n" for i in range(200_000))  # 2.6 MB
    world.app.state.hooks.logs = lambda j: text
    got, offset, pages = [], 0, 0
    while True:
        r = world.call("m1", "GET", f"/api/v1/jobs/{jid}/logs", params={"offset": offset})
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["logs"]) <= 1024 * 1024 and page["size"] == len(text) and page["offset"] == offset
        got.append(page["logs"])
        pages += 1
        if page["next_offset"] is None:
            break
        offset = page["next_offset"]
    assert "".join(got) == text and pages == 3
    r = world.call("m1", "GET", f"/api/v1/jobs/{jid}/logs", params={"offset": 5, "limit": 10})
    assert r.json()["logs"] == text[5:15] and r.json()["next_offset"] == 15
    r = world.call("m1", "GET", f"/api/v1/jobs/{jid}/logs", params={"limit": 2 * 1024 * 1024})
    assert r.status_code == 422 and r.json()["error"]["field"] == "limit", r.text


def test_a_job_never_started_has_no_output_and_the_scheduler_is_not_asked(world) -> None:
    jid = world.submit().json()["id"]
    asked: list[str] = []
    world.app.state.hooks.logs = lambda j: asked.append(j) or "stale"
    r = world.call("m1", "GET", f"/api/v1/jobs/{jid}/logs")
    assert r.status_code == 200 and r.json()["logs"] == "" and r.json()["size"] == 0
    assert "no output" in world.call("m1", "GET", f"/ui/jobs/{jid}").text
    assert asked == []
    world.start(jid)
    assert world.call("m1", "GET", f"/api/v1/jobs/{jid}/logs").json()["logs"] == "stale"
    assert asked == [jid]
