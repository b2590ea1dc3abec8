"""The pool page's sites: each registered site's operator, region, data classes, executor, nodes and
state (taken out by whom, when and why), and for admins and operators a form to take a site out or bring it
back, through the REST API's own handler (the same rules: a reason goes with taking it out)."""

from __future__ import annotations

import re

from tests.web.test_dashboard import _csrf
from tests.web.test_korean import english_left

from accelpool.core.types import Node, Site


def _with_sites(world) -> None:
    world.store.create_site(
        Site("busan-dc", operator="BNK", region="busan", data_classes=frozenset({"public", "financial"}))
    )
    world.store.create_site(Site("h-dc", operator="H", region="seoul"))
    world.store.add_nodes([Node("b-0", "h100", 4, site="busan-dc")])
    world.store.update_site(
        "h-dc", down=True, down_by="root", down_at=world.clock[0], down_reason="전원 공사"
    )


def test_no_section_without_registered_sites(world):
    assert 'id="sites"' not in world.get("/ui/pool", "admin").text


def test_sites_are_shown_with_their_nodes_and_who_took_one_out(world):
    _with_sites(world)
    page = world.get("/ui/pool", "m1").text
    table = page.split('id="sites"')[1].split("</table>")[0]
    rows = re.findall(r"<tr.*?</tr>", table, flags=re.S)[1:]
    busan = next(r for r in rows if "busan-dc" in r)
    assert "BNK" in busan and "financial" in busan and ">1<" in busan and ">4<" in busan
    held = next(r for r in rows if "h-dc" in r)
    assert 'class="is-down"' in held and "taken out" in held and "root" in held and "전원 공사" in held
    assert "/ui/sites/" not in page  # a member has no form
    ko = world.get("/ui/pool", "admin", lang="ko").text
    assert "데이터 등급" in ko and "금융" in ko
    assert english_left(ko) - {"BNK", "seoul", "local"} == set()  # those are the sites' data


def test_an_operator_takes_a_site_out_and_brings_it_back(world):
    _with_sites(world)
    world.tokens["op"] = world.store.create_token("operator", name="night shift")[1]
    page = world.get("/ui/pool", "op").text
    assert 'action="/ui/sites/busan-dc"' in page and "Take out" in page
    h = world.headers("op")
    form = {"csrf": _csrf(page), "down": "1", "reason": "cooling failure"}
    r = world.client.post("/ui/sites/busan-dc", data=form, headers=h, follow_redirects=False)
    assert r.status_code == 303, r.text
    site = next(s for s in world.store.sites() if s.id == "busan-dc")
    assert site.down and site.down_by == "night shift" and site.down_reason == "cooling failure"
    page = world.get("/ui/pool", "op").text
    assert "cooling failure" in page and "Bring back" in page
    r = world.client.post("/ui/sites/busan-dc", data={"csrf": _csrf(page), "down": "0"}, headers=h)
    assert r.status_code == 200 and not next(s for s in world.store.sites() if s.id == "busan-dc").down
    # a member's post is refused by the API's own check
    member = world.get("/ui/pool", "m1").text
    r = world.client.post(
        "/ui/sites/busan-dc", data={"csrf": _csrf(member), "down": "1"}, headers=world.headers("m1")
    )
    assert r.status_code == 403 and "may not do this" in r.text
