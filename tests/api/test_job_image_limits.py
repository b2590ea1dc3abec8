"""The job spec's ``image`` and ``limits``: validated at submission (422 naming the field), stored with the
job's run spec (the executor enforces them; tests/executors/test_sandbox_limits.py)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"image": "-v /:/host busybox"}, "image"),
        ({"image": "bad image"}, "image"),
        ({"limits": {"memory": "lots"}}, "limits.memory"),
        ({"limits": {"memory": 1000}}, "limits.memory"),  # below 1 MiB
        ({"limits": {"scratch": "-5m"}}, "limits.scratch"),
        ({"limits": {"memory": "9" * 400}}, "limits.memory"),  # a float of it is inf: was a 500
        ({"limits": {"scratch": "9" * 300 + "t"}}, "limits.scratch"),
        ({"limits": {"processes": 0}}, "limits.processes"),
        ({"limits": {"cpus": 0}}, "limits.cpus"),
        ({"limits": {"gpus": 1}}, "limits.gpus"),
    ],
)
def test_bad_image_or_limits_are_422_naming_the_field(world, spec, field) -> None:
    r = world.submit(**spec)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field, r.text


def test_image_and_limits_reach_the_run_spec(world) -> None:
    r = world.submit(image="localhost/busybox:1", limits={"memory": "64m", "processes": 50, "cpus": 0.5})
    assert r.status_code == 201, r.text
    run = world.store.run_spec(r.json()["id"])
    assert run.image == "localhost/busybox:1"
    assert dict(run.limits) == {"memory": 64 * 1024**2, "processes": 50.0, "cpus": 0.5}
