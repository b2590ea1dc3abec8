"""The job spec's ``faster_type`` through every way in: YAML in the CLI (errors with file, line and field,
exit 2), the SDK (the CLI's client), REST (422 on a bad value), the SQL store and ``accelpool show``."""

from __future__ import annotations

import json
import time

import pytest
from tests.cli.test_users import cli  # noqa: F401 - the fixture

from accelpool.core.types import Job
from accelpool.storage.memory import MemoryStore


@pytest.mark.parametrize(("line", "want"), [("", "cost-neutral"), ("faster_type: any\n", "any")])
def test_the_field_reaches_the_store_and_show(cli, tmp_path, line, want):  # noqa: F811
    spec = tmp_path / "job.yaml"
    spec.write_text(f"name: demo\nresources: {{type: h100}}\ncommand: echo hi\n{line}")
    code, out, err = cli("submit", str(spec), "--json")
    assert code == 0, err
    job = json.loads(out)
    assert job["faster_type"] == want
    stored = cli.store.snapshot(0, 1).jobs[0].job
    assert stored.faster_type == want  # the SQL store's job spec (JSON) keeps it
    code, out, _ = cli("show", job["id"])
    assert code == 0 and "faster_type" in out and want in out


def test_a_bad_value_names_file_line_and_field_exit_2(cli, tmp_path):  # noqa: F811
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: demo\nresources: {type: h100}\ncommand: echo\nfaster_type: cheaper\n")
    code, _, err = cli("submit", str(spec))
    assert code == 2 and "bad.yaml:4" in err and "faster_type" in err and "Traceback" not in err


def test_rest_refuses_a_bad_value_with_422(cli):  # noqa: F811
    from accelpool.sdk import Client, Rejected

    c = Client("http://testserver", cli.admin)
    body = {"name": "x", "command": "true", "faster_type": "sometimes"}
    with pytest.raises(Rejected) as e:
        c.submit(body, tenant="t1")
    assert e.value.status == 422 and e.value.field == "faster_type"
    ok = c.submit({**body, "faster_type": "never"}, tenant="t1")
    assert ok["faster_type"] == "never"


def test_the_memory_store_keeps_it():
    store = MemoryStore()
    store.submit(Job("j", faster_type="never"), {"h100": 1.0})
    assert store.snapshot(0, 1).jobs[0].job.faster_type == "never"


def test_show_prints_each_run_with_its_device_seconds(cli, tmp_path):  # noqa: F811
    """``accelpool show``'s runs table: a run of 0.2 s on 2 devices reads 0.4 device-s, not 0."""
    from accelpool.core.policies import get_policy
    from accelpool.executors.fake import FakeExecutor
    from accelpool.runtime.clock import VirtualClock
    from accelpool.runtime.reconciler import Reconciler

    spec = tmp_path / "job.yaml"
    spec.write_text("name: short\nresources: {type: h100, count: 2}\ncommand: echo hi\nsteps: 2\n")
    code, out, err = cli("submit", str(spec), "--json")
    assert code == 0, err
    jid = json.loads(out)["id"]
    clock = VirtualClock(time.time())
    rec = Reconciler(cli.store, FakeExecutor(clock), clock, get_policy("max-min-fairness"), round_seconds=0.2)
    rec.step()
    for _ in range(50):
        clock.sleep_until(clock.now() + 0.2)
        rec.step()
    code, out, _ = cli("show", jid, "--json")
    [run] = json.loads(out)["runs"]
    code, out, _ = cli("show", jid)
    assert code == 0 and "runs (UTC)" in out
    assert f"{run['device_seconds']:,.1f}" in out and run["device_seconds"] < 1
