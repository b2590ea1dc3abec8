"""Request limits (issue 12, item 4): size, nesting, string lengths, NUL and encoding; 4xx naming the field."""

from __future__ import annotations

import json

import pytest

from accelpool.api.limits import Limits, Refused, check_json


def _raw(world, content: bytes, who: str = "m1", path: str = "/api/v1/jobs"):
    return world.call(who, "POST", path, content=content, headers={"Content-Type": "application/json"})


def _job(**extra) -> dict:
    return {"name": "j", "command": "echo hi", "resources": {"type": "h100", "count": 1}, **extra}


def _err(r) -> dict:
    return r.json()["error"]


def test_body_over_one_mib_is_413_before_reaching_the_route(world):
    r = world.submit(env={"BIG": "x" * (11 << 20)})  # the 11.4 MB env of the torture run
    assert r.status_code == 413, r.text
    assert _err(r)["field"] == "(body)" and "larger than" in _err(r)["reason"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (_job(env={"HOME": "/a\x00b"}), "env.HOME"),
        (_job(name="a\x00b"), "name"),
        (_job(command="echo\x00"), "command"),
        (_job(workdir="/tmp/\x00"), "workdir"),
        (_job(resources={"type": "h1\x0000", "count": 1}), "resources.type"),
    ],
)
def test_nul_anywhere_is_422_naming_the_field(world, spec, field):
    r = world.submit(**{k: v for k, v in spec.items()})
    assert r.status_code == 422, r.text
    assert _err(r)["field"] == field and "NUL" in _err(r)["reason"]
    assert world.store.list_jobs()[0] == []


def test_nul_in_a_key_names_the_key(world):
    r = _raw(world, json.dumps(_job(env={"A\x00": "1"})).encode())
    assert r.status_code == 422 and _err(r)["field"] == "env.A\\u0000"


def test_long_strings_are_refused_naming_the_field(world):
    r = world.submit(command="x" * 200_000)
    assert r.status_code == 422 and _err(r)["field"] == "command"
    r = world.submit(env={"A": "y" * 40_000})  # the spec's own cap per env value
    assert r.status_code == 422 and _err(r)["field"] == "env.A", r.text
    r = world.submit(env={f"V{i}": "1" for i in range(300)})
    assert r.status_code == 422 and _err(r)["field"] == "env", r.text


def test_deep_nesting_is_422_naming_where(world):
    deep = {"name": "j", "command": "c", "resources": {"type": "h100"}, "env": {"a": [[[[[[[[]]]]]]]]}}
    inner: object = "x"
    for _ in range(40):
        inner = [inner]
    deep["constraints"] = {"zone": inner}
    r = _raw(world, json.dumps(deep).encode())
    assert r.status_code == 422, r.text
    assert _err(r)["field"].startswith("constraints.zone.0.0") and "nested deeper" in _err(r)["reason"]
    r = _raw(world, b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}")  # too deep to parse at all
    assert r.status_code == 422 and _err(r)["field"].startswith("name.0.0"), r.text


def test_invalid_utf8_and_lone_surrogates_name_the_field(world):
    body = json.dumps(_job(command="PLACEHOLDER")).encode().replace(b"PLACEHOLDER", b"echo \xff\xfe")
    r = _raw(world, body)
    assert r.status_code == 422 and _err(r)["field"] == "command", r.text
    assert "UTF-8" in _err(r)["reason"]
    body = json.dumps(_job(env={"A": "PLACEHOLDER"})).encode().replace(b"PLACEHOLDER", b"\\ud800")
    r = _raw(world, body)
    assert r.status_code == 422 and _err(r)["field"] == "env.A", r.text


def test_query_and_path_nul_or_bad_utf8_are_422(world):
    r = world.call("m1", "GET", "/api/v1/jobs?tenant=t1%00")
    assert r.status_code == 422 and _err(r)["field"] == "tenant"
    r = world.call("m1", "GET", "/api/v1/jobs?tenant=%ff")
    assert r.status_code == 422 and _err(r)["field"] == "tenant"
    r = world.call("m1", "GET", "/api/v1/jobs/ab%00c")
    assert r.status_code == 422 and _err(r)["field"] == "(path)"
    r = world.call("m1", "GET", "/api/v1/jobs?tenant=" + "a" * 5000)
    assert r.status_code == 422 and _err(r)["field"] == "tenant"


def test_cursor_beyond_a_64_bit_integer_is_422(world):
    for cursor in (2**63, 2**64, 10**30):
        r = world.call("m1", "GET", f"/api/v1/jobs?cursor={cursor}")
        assert r.status_code == 422 and _err(r)["field"] == "cursor", r.text
    assert world.call("m1", "GET", f"/api/v1/jobs?cursor={2**63 - 1}").status_code == 200


def test_big_integers_go_to_the_route_for_its_bounds(world):
    r = _raw(world, json.dumps(_job(priority=10**30)).encode())
    assert r.status_code == 422 and _err(r)["field"] == "priority"


@pytest.mark.parametrize("digits", [1001, 4301, 50_000])
@pytest.mark.parametrize(
    ("who", "path", "body", "field"),
    [
        (
            "m1",
            "/api/v1/jobs",
            '{"name": "j", "command": "x", "resources": {"type": "h100", "count": 1}, "steps": %s}',
            "steps",
        ),
        ("m1", "/api/v1/jobs", '{"resources": {"type": "h100", "count": -%s}}', "resources.count"),
        ("admin", "/api/v1/tenants", '{"id": "t9", "quota": {"h100": %s}}', "quota.h100"),
        ("pm1", "/api/v1/grants", '{"program": "p1", "tenant": "t1", "amount_krw": %s}', "amount_krw"),
        ("admin", "/api/v1/tenants", "[%s]", "0"),
    ],
)
def test_an_integer_too_long_to_read_is_422_naming_it(world, who, path, body, field, digits):
    # Python refuses to read an integer of over 4,300 digits: POST /jobs answered 500, other routes 400
    r = _raw(world, (body % ("1" + "0" * (digits - 1))).encode(), who=who, path=path)
    assert r.status_code == 422, r.text
    assert _err(r)["field"] == field and f"integer of {digits} digits" in _err(r)["reason"]
    assert world.store.list_jobs()[0] == []


def test_check_json_passes_ordinary_documents_and_non_json():
    check_json(json.dumps(_job(env={"A": "é한"})).encode(), Limits())
    check_json(b"not json at all", Limits())
    with pytest.raises(Refused):
        check_json(b'{"a": "\\u0000"}', Limits())


@pytest.mark.parametrize("field", ["workdir", "checkpoint_dir"])
@pytest.mark.parametrize("path", ["work", "./ckpt", "../up", "", "~/x"])
def test_a_relative_path_is_422_naming_the_field(world, field, path):
    r = world.submit(**{field: path})
    assert r.status_code == 422, r.text
    assert (
        _err(r)["field"] == field
        and "absolute" in _err(r)["reason"]
        and repr(path)[1:-1] in _err(r)["reason"]
    )
    assert world.store.list_jobs()[0] == []


def test_an_absolute_path_is_accepted(world):
    r = world.submit(workdir="/tmp", checkpoint_dir="/tmp/ckpt-x")
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (
            b'{"name": "a", "command": "echo A", "command": "echo B", "resources": {"type": "h100"}}',
            "command",
        ),
        (b'{"name": "a", "command": "echo", "resources": {"type": "h100", "type": "rngd"}}', "type"),
        (b'{"name": "a", "command": "echo", "env": {"X": "1", "X": "2"}}', "X"),
        (b'{"name": "a", "command": "echo", "max_run_time": NaN, "name": "b"}', "name"),  # the fallback parse
    ],
)
def test_a_key_given_twice_is_422_naming_it_and_makes_nothing(world, body, key):
    # a tenant's test: the last one won silently ("echo B" ran), while the CLI refuses the same in YAML
    r = _raw(world, body)
    assert r.status_code == 422, r.text
    assert _err(r)["field"] == key and "duplicate key" in _err(r)["reason"]
    assert world.store.list_jobs()[0] == []
    with pytest.raises(Refused):
        check_json(body, Limits())


def test_a_body_that_is_not_json_names_the_body_and_where(world):
    # a tenant's test: the field was "1" (a character position) and the reason only "JSON decode error"
    r = _raw(world, b"{bad json")
    assert r.status_code == 422 and _err(r)["field"] == "(body)", r.text
    assert "not valid JSON at character 1" in _err(r)["reason"]
    r = world.call("m1", "POST", "/api/v1/jobs")
    assert r.status_code == 422 and _err(r) == {
        "status": 422,
        "field": "(body)",
        "reason": "a JSON body is required",
    }


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "a\n"}, "name"),
        ({"env": {"A\n": "x"}}, "env"),
        ({"env": {"UID": "0"}}, "env"),
        ({"image": "busybox\n"}, "image"),
        ({"image": "busybox:1", "env": {"A": "x\nB=y"}}, "image"),
    ],
)
def test_a_trailing_line_break_or_one_podman_would_split_is_422(world, fields, field):
    """Python's ``$`` matches before a final newline: ``name: "a\\n"`` was accepted and broke the CLI's
    tables; an image's env value with a line break became two variables in podman's env file."""
    r = world.submit(**fields)
    assert r.status_code == 422, r.text
    assert _err(r)["field"].split(".")[0] == field, _err(r)
    assert world.store.list_jobs()[0] == []


def test_a_line_break_in_an_env_value_is_fine_without_an_image(world):
    r = world.submit(env={"A": "x\ny"})
    assert r.status_code == 201, r.text
