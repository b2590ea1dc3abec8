"""CLI tests: the tenant and operator commands against a live API app (in-process HTTP via a transport)."""

from __future__ import annotations

import json
import re
import time

import pytest
from fastapi.testclient import TestClient

from accelpool.api.app import create_app
from accelpool.cli.main import main
from accelpool.core.types import Grant, Node, Program, Tenant
from accelpool.sdk import Client
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    store = SqlStore(sqlite_url(tmp_path / "cli.sqlite"))
    store.add_nodes([Node("h-0", "h100", 8), Node("r-0", "rngd", 8)])
    store.set_prices({"h100": 4000, "rngd": 1200})
    store.add_tenant(Tenant("t1"))
    store.add_program(Program("p1", "P1", 10**8))
    store.add_grant(Grant("g1", "p1", "t1", 10**6))
    admin = store.create_token("admin")[1]
    member = store.create_token("member", tenant="t1")[1]
    transport = TestClient(create_app(store))._transport
    real = Client.__init__

    def patched(self, url, token, **kw):
        real(self, url, token, transport=transport, **{k: v for k, v in kw.items() if k != "transport"})

    monkeypatch.setattr(Client, "__init__", patched)
    monkeypatch.setenv("ACCELPOOL_URL", "http://testserver")
    monkeypatch.setenv("ACCELPOOL_HOME", str(tmp_path / "home"))

    def run(*args, token=member):
        monkeypatch.setenv("ACCELPOOL_TOKEN", token)
        capsys.readouterr()
        code = main(list(args))
        cap = capsys.readouterr()
        return code, cap.out, cap.err

    run.admin = admin
    run.store = store
    yield run
    store.close()


def test_submit_list_show_cancel(cli, tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_text("name: demo\nresources: {type: h100, count: 2}\ncommand: echo hi\n")
    code, out, _ = cli("submit", str(spec), "--json")
    assert code == 0
    job = json.loads(out)
    assert job["state"] == "queued" and job["count"] == 2
    code, out, _ = cli("jobs", "--json")
    assert [j["id"] for j in json.loads(out)] == [job["id"]]
    code, out, _ = cli("jobs")
    assert "demo" in out and "queued" in out
    code, out, _ = cli("show", job["id"], "--json")
    assert json.loads(out)["events"][0]["reason"] == "submitted"
    code, out, _ = cli("cancel", job["id"])
    assert code == 0 and "cancelled" in out


def test_bad_yaml_names_line_and_field_exit_2(cli, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: demo\nresources:\n  type: h100\n  count: -1\ncommand: echo\n")
    code, _, err = cli("submit", str(spec))
    assert code == 2 and "bad.yaml:4" in err and "resources.count" in err


def test_server_refusal_is_reported(cli, tmp_path):
    spec = tmp_path / "big.yaml"
    spec.write_text("name: big\nresources: {type: h100, count: 64}\ncommand: echo\n")
    code, _, err = cli("submit", str(spec))
    assert code == 2 and "resources.count" in err


def test_unknown_job_is_exit_1(cli):
    code, _, err = cli("show", "j-nope")
    assert code == 1 and "no such job" in err


@pytest.mark.parametrize("bad", ["", "..", ".", "../tokens", "../whoami", "j-1/events", "x?offset=1", "a#b"])
def test_an_id_that_would_change_the_path_exits_2_before_any_request(cli, bad):
    for cmd in ("show", "logs", "cancel"):
        code, out, err = cli(cmd, bad)
        assert code == 2 and ("is not an id" in err or "non-empty id" in err), (cmd, bad, out, err)
        assert "Traceback" not in err and out == ""


def test_usage_and_grants(cli):
    cli.store.submit(
        __import__("accelpool.core.types", fromlist=["Job"]).Job("j1", tenant="t1", grant="g1"), {"h100": 1.0}
    )
    from accelpool.core.types import Charge

    cli.store.record_charges([Charge("j1", "t1", "g1", "h100", 3600.0, 4000, 0.0, 900.0)])
    code, out, _ = cli("usage", "--json")
    rep = json.loads(out)
    assert rep["total_krw"] == 4000 and rep["items"][0]["device_hours"] == 1.0
    assert rep["items"][0]["site"] == "default"  # the implicit site, shown by default
    code, out, _ = cli("usage")
    row = next(ln for ln in out.splitlines() if "4,000" in ln and "t1" in ln)
    assert [c.strip() for c in row.split("│")[1:-1]][3:5] == ["h100", "default"]  # the site column
    code, out, _ = cli("usage", "--by", "tenant", "--period", "month")
    assert "4,000" in out
    code, out, _ = cli("grants", "--json")
    assert json.loads(out)[0]["remaining_krw"] == 10**6 - 4000


def test_operator_commands(cli):
    a = cli.admin
    assert cli("nodes", "add", "n-9", "rngd", "4", token=a)[0] == 0
    code, out, _ = cli("nodes", "--json", token=a)
    assert {n["name"] for n in json.loads(out)} == {"h-0", "r-0", "n-9"}
    assert cli("prices", "set", "h100=5000", token=a)[0] == 0
    code, out, _ = cli("prices", "--json", token=a)
    assert json.loads(out)["h100"] == 5000
    assert cli("prices", "set", "h100=abc", token=a)[0] == 2
    assert cli("tenants", "create", "t2", token=a)[0] == 0
    assert cli("programs", "create", "p2", "1000000", "--cap", "h100=4", token=a)[0] == 0
    code, out, _ = cli("grants", "--json", "create", "p2", "t2", "5000", token=a)
    assert json.loads(out)["amount_krw"] == 5000
    code, out, _ = cli("tokens", "--json", "create", "member", "--tenant", "t2", token=a)
    tok = json.loads(out)
    assert tok["secret"].startswith("ap_")
    code, out, _ = cli("tokens", "--json", token=a)
    assert all("secret" not in t for t in json.loads(out))
    assert cli("tokens", "revoke", tok["id"], token=a)[0] == 0
    code, _, err = cli("nodes", "add", "x", "h100", "1")  # a member may not
    assert code == 1 and "403" in err
    code, out, _ = cli("programs", "--json", token=a)
    progs = {p["id"]: p for p in json.loads(out)}
    assert progs["p2"]["budget_krw"] == 1_000_000 and progs["p2"]["granted_krw"] == 5000
    assert progs["p2"]["rules"]["tenant_caps"] == {"h100": 4}
    code, out, _ = cli("tenants", "--json", token=a)
    assert {t["id"] for t in json.loads(out)} == {"t1", "t2"}
    code, out, _ = cli("programs", token=a)
    assert code == 0 and "p2" in out and "1,000,000" in out  # KRW with separators
    code, out, _ = cli("tenants", token=a)
    assert code == 0 and "t2" in out


def test_listings_content(cli):
    a = cli.admin
    code, out, _ = cli("nodes", "--json", token=a)
    nodes = {n["name"]: n for n in json.loads(out)}
    assert (
        nodes["h-0"]["devices"] == 8 and nodes["h-0"]["accelerator"] == "h100" and nodes["h-0"]["busy"] == 0
    )
    code, out, _ = cli("prices", "--json", token=a)
    assert json.loads(out) == {"h100": 4000, "rngd": 1200}
    code, out, _ = cli("grants", "--json", token=a)
    assert [(g["id"], g["program"], g["tenant"], g["amount_krw"]) for g in json.loads(out)] == [
        ("g1", "p1", "t1", 10**6)
    ]
    code, out, _ = cli("tokens", "--json", token=a)
    assert sorted(t["role"] for t in json.loads(out)) == ["admin", "member"]
    code, out, _ = cli("jobs", "--json")
    assert code == 0 and json.loads(out) == []


def test_connection_options_after_the_arguments(cli):
    a = cli.admin
    code, out, _ = cli(
        "nodes", "add", "n-8", "h100", "2", "--zone", "z1", "--json", "--token", a, token="bad"
    )
    assert code == 0 and json.loads(out)["zone"] == "z1"
    code, out, _ = cli("prices", "set", "h100=4100", "--json", "--token", a, token="bad")
    assert code == 0 and json.loads(out)["krw_per_device_hour"]["h100"] == 4100
    code, out, _ = cli("tenants", "create", "t5", "--json", "--token", a, token="bad")
    assert code == 0 and json.loads(out)["id"] == "t5"
    code, out, _ = cli("grants", "create", "p1", "t5", "100", "--json", "--token", a, token="bad")
    assert code == 0 and json.loads(out)["tenant"] == "t5"
    import typer

    from accelpool.cli.main import app

    root = typer.main.get_command(app)
    for group in ("nodes", "prices", "programs", "grants", "tenants", "tokens"):
        assert cli(group, "--help")[0] == 0
        for name, cmd in root.commands[group].commands.items():
            assert cmd.help, f"{group} {name} has no help text"
            opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
            assert {"--url", "--token", "--data-dir", "--json"} <= opts, f"{group} {name}"


def test_connection_options_before_the_command_and_precedence(cli):
    """The options are declared once (cli/connection.py) and may come before the command (root), before the
    subcommand (group) or after the arguments; the innermost given value wins."""
    a = cli.admin
    code, out, _ = cli("--token", a, "--json", "tenants", token="bad")
    assert code == 0 and any(t["id"] == "t1" for t in json.loads(out))
    code, out, _ = cli("tenants", "--token", a, "--json", "create", "t6", token="bad")
    assert code == 0 and json.loads(out)["id"] == "t6"
    # a command's own (bad) token wins over the root's (good) one: the server refuses it
    code, _, err = cli("--token", a, "tenants", "create", "t7", "--token", "wrong", token="bad")
    assert code != 0 and all(t.id != "t7" for t in cli.store.list_tenants())
    # every command of the CLI that talks to the server has the same four options
    import typer

    from accelpool.cli.main import app

    root = typer.main.get_command(app)
    for name in ("submit", "jobs", "show", "cancel", "logs", "usage"):
        opts = {o for p in root.commands[name].params for o in getattr(p, "opts", [])}
        assert {"--url", "--token", "--data-dir", "--json"} <= opts, name


def test_server_rejections_exit_2_with_one_message(cli, tmp_path):
    a = cli.admin
    code, _, err = cli("programs", "create", "p1", "5", token=a)
    assert code == 2 and "already exists" in err and "409" not in err
    code, _, err = cli("programs", "create", "p7", "99999999999999999999999", token=a)
    assert code == 2 and "budget_krw" in err and "Traceback" not in err
    code, _, err = cli("prices", "set", "h100=99999999999999999999999", token=a)
    assert code == 2 and "h100" in err
    code, _, err = cli("programs", "create", "p8", "5", "--cap", "h100=-1", token=a)
    assert code == 2 and "tenant_caps" in err
    code, _, err = cli("programs", "create", "p8", "5", "--cap", "zz=1", token=a)
    assert code == 2 and "zz" in err
    code, _, err = cli("nodes", "add", "n-7", "h100", "1", "--zone", "", token=a)
    assert code == 2 and "zone" in err
    code, _, err = cli("nodes", "add", "h-0", "rngd", "1", token=a)
    assert code == 2 and "already exists" in err
    for days in ("nan", "inf", "-1"):
        code, _, err = cli("grants", "create", "p1", "t1", "10", "--days", days, token=a)
        assert code == 2 and "--days" in err and "Traceback" not in err, err
        code, _, err = cli("usage", "--days", days)
        assert code == 2 and "--days" in err
    spec = tmp_path / "wrong.yaml"
    spec.write_text("name: demo\nprogram: nope\ncommand: echo\n")
    code, _, err = cli("submit", str(spec))
    assert code == 2 and "wrong.yaml:2" in err and "program" in err and "409" not in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "text,where",
    [
        ("name: d\ncommand: echo\nmax_run_time: .nan\n", "j.yaml:3"),
        ("name: d\ncommand: echo\nmax_run_time: .inf\n", "j.yaml:3"),
        ("name: d\ncommand: echo\nresources: {type: h100, count: true}\n", "j.yaml:3"),
        ("name: d\ncommand: echo\nresources: {type: h100, count: '2'}\n", "j.yaml:3"),
        ("name: d\ncommand: echo\nname: e\n", "j.yaml:3"),
        ("name: d\ncomand: echo\n", "j.yaml:2: field 'comand': unknown field (did you mean 'command'?)"),
    ],
)
def test_bad_job_yaml_exits_2_without_traceback(cli, tmp_path, text, where):
    spec = tmp_path / "j.yaml"
    spec.write_text(text)
    code, _, err = cli("submit", str(spec))
    assert code == 2 and where in err and "Traceback" not in err, err


def test_a_job_file_of_nested_aliases_is_refused_at_once(cli, tmp_path):
    # a tenant's test: 12 lines of aliases standing for 43 million strings held the CLI for minutes at 6 GB
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, cur in zip("abcdefg", "bcdefgh", strict=True):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    spec = tmp_path / "bomb.yaml"
    spec.write_text("\n".join(lines) + "\nname: a\ncommand: echo\nenv: {X: *h}\n")
    t0 = time.monotonic()
    code, _, err = cli("submit", str(spec))
    assert code == 2 and "bomb.yaml" in err and "aliases" in err and "Traceback" not in err, err
    assert time.monotonic() - t0 < 10.0
    # an alias inside its own anchor (a review found it looped the check forever)
    loop = tmp_path / "loop.yaml"
    loop.write_text("name: x\ncommand: &a [*a]\n")
    t0 = time.monotonic()
    code, _, err = cli("submit", str(loop))
    assert code == 2 and "aliases" in err and time.monotonic() - t0 < 10.0, err
    # a few aliases, as a person writes them, still work
    ok = tmp_path / "ok.yaml"
    ok.write_text("command: &c echo\nname: *c\n")
    code, out, err = cli("submit", str(ok), "--json")
    assert code == 0 and json.loads(out)["name"] == "echo", err


def test_operator_updates(cli):
    a = cli.admin
    code, out, _ = cli("grants", "update", "g1", "--amount", "2000000", "--json", token=a)
    assert code == 0 and json.loads(out)["amount_krw"] == 2_000_000
    code, _, err = cli("programs", "update", "p1", "--budget", "5", token=a)
    assert code == 2 and "granted" in err
    code, out, _ = cli("programs", "update", "p1", "--budget", "3000000", "--json", token=a)
    assert code == 0 and json.loads(out)["budget_krw"] == 3_000_000
    code, out, _ = cli("nodes", "update", "h-0", "--devices", "4", "--json", token=a)
    assert code == 0 and json.loads(out)["devices"] == 4
    code, out, _ = cli("tenants", "update", "t1", "--public", "--json", token=a)
    assert code == 0 and json.loads(out)["public"] is True


def test_schema_job(cli):
    code, out, _ = cli("schema", "job")
    assert code == 0 and json.loads(out)["title"] == "accelpool job"


def test_show_prints_times_and_tables_never_cut_ids_at_80_columns(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "name: a-job-with-a-rather-long-name-for-a-narrow-terminal\nresources: {type: h100, count: 2}\n"
        "command: echo hi\n"
    )
    code, out, _ = cli("submit", str(spec), "--json")
    job = json.loads(out)["id"]
    code, out, _ = cli("show", job)
    assert code == 0
    assert " UTC" in out and "submit_time" in out
    assert re.search(r"\b\d{9,}\.\d+", out) is None  # no epoch floats
    code, out, _ = cli("jobs")
    assert job in out  # the whole id, on one line, in 80 columns
    code, out, _ = cli("catalog")
    assert "x220-enterprise" in out and "Sources" in out and "https://" in out


def test_sites_are_registered_from_the_cli_and_nodes_join_them(cli):
    a = cli.admin
    code, out, err = cli(
        "sites",
        "--json",
        "add",
        "bank",
        "--operator",
        "cloud-b",
        "--region",
        "busan",
        "--data-class",
        "public",
        "--data-class",
        "financial",
        "--executor",
        "slurm",
        "--price",
        "h100=5000",
        token=a,
    )
    assert code == 0, err
    assert json.loads(out)["data_classes"] == ["financial", "public"] and json.loads(out)["prices"] == {
        "h100": 5000
    }
    assert cli("sites", "add", "x", "--price", "h100=lots", token=a)[0] == 2
    assert cli("nodes", "add", "b-0", "h100", "4", "--site", "bank", token=a)[0] == 0
    code, out, _ = cli("nodes", "--json", token=a)
    assert {n["name"]: n["site"] for n in json.loads(out)}["b-0"] == "bank"
    code, out, _ = cli("sites", token=a)
    assert code == 0 and "bank" in out and "busan" in out


def test_adding_a_node_of_an_unpriced_type_warns(cli):
    code, out, err = cli("nodes", "add", "n-h200", "h200", "4", token=cli.admin)
    assert code == 0 and "node n-h200" in out and "warning: h200 has no price" in err


def test_operator_edges_an_operator_found(cli):
    a = cli.admin
    code, _, err = cli("programs", "update", "p1", token=a)  # nothing to change is not a success
    assert code == 2 and "--budget" in err
    code, _, err = cli("usage", "--days", "1e300")  # named as the option, not as a field 'since'
    assert code == 2 and "--days" in err and "since" not in err
    code, out, _ = cli("programs", "create", "p-now", "5", "--json", token=a)
    assert code == 0 and json.loads(out)["start"] > 1e9  # starts now, not in 1970


def test_a_node_is_removed_by_an_operator_once_no_job_runs_on_it(cli):
    from accelpool.core.rounds import Decision, Placement
    from accelpool.core.types import Job

    op = cli.store.create_token("operator", name="night shift")[1]
    assert cli("nodes", "add", "typo-0", "h100", "8", token=op)[0] == 0
    code, out, _ = cli("nodes", "remove", "typo-0", "--json", token=op)
    assert code == 0 and json.loads(out) == {"name": "typo-0", "removed": True}
    assert "typo-0" not in {n.name for n in cli.store.list_nodes()}
    code, _, err = cli("nodes", "remove", "typo-0", token=op)
    assert code == 1 and "no such node" in err, err
    code, _, err = cli("nodes", "remove", "h-0")  # a member may not
    assert code == 1 and "403" in err
    # a node a running job holds stays: drain it first
    cli.store.submit(Job("j1", tenant="t1", grant="g1"), {"h100": 1.0})
    cli.store.record_decision(
        Decision(now=0.0, allocation=None, start=(Placement("j1", "h100", (("h-0", (0,)),)),))
    )
    code, _, err = cli("nodes", "remove", "h-0", token=op)
    assert code == 2 and "runs jobs; drain it" in err, err
    assert "h-0" in {n.name for n in cli.store.list_nodes()}
