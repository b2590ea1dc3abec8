"""A dashboard page cursor (``?after=``/``?before=``: a job's seq) was looked up among all jobs, so paging
with another tenant's seq in ``sort=name`` order told where that job's name falls among the caller's own
(a review read another tenant's job names, a character at a time, with probe jobs). A cursor the caller
cannot see is ignored: the first page."""

from __future__ import annotations

import re


def _names(page: str) -> list[str]:
    return re.findall(r"alice-[a-z-]+", page)


def test_another_tenants_seq_as_a_cursor_gives_the_first_page(world):
    first = world.get("/ui/jobs?sort=name", "m1")
    assert first.status_code == 200
    mine = _names(first.text)
    assert "alice-cancelled" in mine and "alice-running" in mine
    secret = world.store.get_job(world.jobs["secret"]).seq  # bob-secret-job: between alice-* and nothing
    for param in ("after", "before"):
        page = world.get(f"/ui/jobs?sort=name&{param}={secret}", "m1")
        assert page.status_code == 200 and _names(page.text) == mine, (param, page.text[-2000:])
        assert "bob-secret-job" not in page.text
    # the caller's own cursor still pages
    own = world.store.get_job(world.jobs["cancelled"]).seq
    after = _names(world.get(f"/ui/jobs?sort=name&after={own}", "m1").text)
    assert "alice-cancelled" not in after and after == [n for n in mine if n > "alice-cancelled"]
