"""`accelpool logs`: read in pages (never one huge body); `--follow` prints new output until the job ends."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from accelpool.api.app import Hooks, create_app
from accelpool.cli import tenant as tenant_cli
from accelpool.cli.main import main
from accelpool.core.types import Grant, Node, Program, Tenant
from accelpool.sdk import Client
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore


@pytest.fixture
def pool(tmp_path, monkeypatch):
    store = SqlStore(sqlite_url(tmp_path / "cli.sqlite"))
    store.add_nodes([Node("h-0", "h100", 8)])
    store.set_prices({"h100": 4000})
    store.add_tenant(Tenant("t1"))
    store.add_program(Program("p1", "P1", 10**8))
    store.add_grant(Grant("g1", "p1", "t1", 10**6))
    member = store.create_token("member", tenant="t1")[1]
    output = {"text": ""}
    transport = TestClient(create_app(store, hooks=Hooks(logs=lambda j: output["text"])))._transport
    real = Client.__init__

    def patched(self, url, token, **kw):
        real(self, url, token, transport=transport, **{k: v for k, v in kw.items() if k != "transport"})

    monkeypatch.setattr(Client, "__init__", patched)
    monkeypatch.setenv("ACCELPOOL_URL", "http://testserver")
    monkeypatch.setenv("ACCELPOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ACCELPOOL_TOKEN", member)
    job = Client("http://testserver", member).submit(
        {"name": "j", "command": "x", "resources": {"type": "h100"}}
    )
    from accelpool.core.rounds import Decision, Placement

    # the job runs: the API reads a job's output only once it has started (a queued one has none)
    store.record_decision(
        Decision(now=1.0, allocation=None, start=(Placement(job["id"], "h100", (("h-0", (0,)),)),))
    )
    yield job["id"], output
    store.close()


def test_logs_reads_every_page(pool, capsys) -> None:
    jid, output = pool
    output["text"] = "".join(f"line {i:07d}\n" for i in range(200_000))  # 2.6 MB: three pages
    assert main(["logs", jid]) == 0
    assert capsys.readouterr().out == output["text"]


def test_logs_follow_prints_new_output_until_the_job_ends(pool, capsys, monkeypatch) -> None:
    jid, output = pool
    output["text"] = "first\n"
    states = iter(["running", "running", "succeeded"])
    real_job = Client.job

    def job(self, job_id):
        j = real_job(self, job_id)
        j["state"] = next(states)
        output["text"] += f"more {j['state']}\n"  # the job writes while it runs
        return j

    monkeypatch.setattr(Client, "job", job)
    monkeypatch.setattr(tenant_cli.time, "sleep", lambda s: None)
    assert main(["logs", jid, "--follow"]) == 0
    assert capsys.readouterr().out == "first\nmore running\nmore running\nmore succeeded\n"


def test_logs_json_is_one_object_with_the_whole_output(pool, capsys) -> None:
    # a tenant's test: `logs --json` printed plain text (the README says every listing takes --json)
    import json

    jid, output = pool
    output["text"] = "a\nb\n"
    assert main(["logs", jid, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"id": jid, "state": "running", "logs": "a\nb\n"}
    assert main(["logs", jid, "--json", "--follow"]) == 2
    assert "--follow" in capsys.readouterr().err


def test_logs_of_a_job_that_never_started_say_so_on_stderr(pool, capsys) -> None:
    _, output = pool
    output["text"] = "stale\n"  # what the executor would answer: never asked for a job not started
    queued = Client("http://testserver", os.environ["ACCELPOOL_TOKEN"]).submit(
        {"name": "q", "command": "x", "resources": {"type": "h100"}}
    )
    assert main(["logs", queued["id"]]) == 0
    got = capsys.readouterr()
    assert got.out == "" and "has not started; queued" in got.err
