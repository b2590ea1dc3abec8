"""`accelpool up` drives the sites an operator registers, with no code: a cloud site on the local executor
and an HPC site on the real test Slurm (scripts/slurm.sh), registered through the CLI while the service
runs. Jobs are placed by data class and price on both sites and run there; the HPC controller's outage
(its Slurm commands start failing, through a wrapper directory given as the site's ``bin_dir``: the shared
test Slurm itself is never stopped) moves its public job to the cloud within 30 s while its financial job
waits; when the controller answers again the financial job runs at HPC again, the stale Slurm run of the
moved job is cancelled (never doubled), and usage by site shows each site at its own price."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.slurm_outage import slurm_wrappers

from accelpool.sdk import Client
from accelpool.service.process import ServerProcess

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]


def _tagged(conf: str, tag: str) -> dict[str, str]:
    """Our Slurm jobs still queued or running: accelpool job id -> Slurm job id."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "pending,running,completing", "-O", "JobID:|,Comment:|"],
        env={**os.environ, "SLURM_CONF": conf},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    jobs = {}
    for line in out.splitlines():
        sid, _, comment = line.partition("|")
        if comment.startswith(tag):
            jobs[comment.strip("|").rsplit(":", 1)[-1]] = sid.strip()
    return jobs


def _cli(data: Path, *args: str) -> str:
    p = subprocess.run(
        [sys.executable, "-m", "accelpool.cli.main", *args, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout


def test_registered_local_and_slurm_sites_run_jobs_and_a_site_outage_moves_them(
    tmp_path: Path, slurm_conf: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    outage = slurm_wrappers(tmp_path / "slurm-bin")
    tag = f"accelpool:e2e-sites-{os.getpid()}:"
    server = ServerProcess(data, "--round-seconds", "0.5", "--site-down-seconds", "3").start()
    jobs: list[str] = []
    admin = Client(server.url, (data / "admin-token").read_text().strip())
    try:
        # Registered through the CLI while the service runs: the scheduler drives them from its next round.
        _cli(
            data, "sites", "add", "cloud", "--executor", "local", "--region", "seoul", "--price", "h100=3000"
        )
        _cli(
            data,
            *("sites", "add", "hpc", "--executor", "slurm", "--region", "daejeon"),
            *("--data-class", "public", "--data-class", "financial", "--price", "h100=2000"),
            *("--connection", f"slurm_conf={slurm_conf}", "--connection", f"bin_dir={outage.parent}"),
            *("--connection", f"instance=e2e-sites-{os.getpid()}"),
        )
        _cli(data, "nodes", "add", "c0", "h100", "8", "--site", "cloud")

        def nodes() -> dict[str, Any]:
            return {n["name"]: n for n in admin.get("nodes")["items"]}

        _wait(lambda: {"s-gpu-0", "s-gpu-1"} <= set(nodes()), 60, "Slurm nodes discovered")
        assert {nodes()[n]["site"] for n in ("s-gpu-0", "s-gpu-1", "s-npu-0")} == {"hpc"}
        assert nodes()["c0"]["site"] == "cloud"

        now = time.time()
        admin.put("prices", {"h100": 9999})  # the pool's price: never used, both sites have their own
        admin.post("tenants", {"id": "lab"})
        admin.post("programs", {"id": "p", "budget_krw": 10**9, "start": now - 3600})
        admin.post(
            "grants", {"id": "g", "program": "p", "tenant": "lab", "amount_krw": 10**8, "start": now - 3600}
        )
        lab = Client(server.url, (data / "admin-token").read_text().strip(), tenant="lab")

        def submit(name: str, count: int, data_class: str = "public") -> str:
            spec = {
                "name": name,
                "program": "p",
                "resources": {"type": "h100", "count": count},
                "constraints": {"data_class": data_class},
                "command": f"echo {name} started at $ACCELPOOL_NODE; sleep 600",
                "grace_seconds": 1,
            }
            job = str(lab.submit(spec, tenant="lab")["id"])
            jobs.append(job)
            return job

        def site(job: str) -> str | None:
            v = lab.job(job)
            if v["state"] != "running" or not v.get("placement"):
                return None
            return str(v["placement"].get("site", "default"))

        fin = submit("fin", 2, "financial")
        pub = submit("pub", 4)
        # hpc is the only site certified for financial data, and the cheaper one for public data
        _wait(lambda: site(fin) == "hpc" and site(pub) == "hpc", 60, "fin and pub running at hpc")
        _wait(lambda: set(_tagged(slurm_conf, tag)) == {fin, pub}, 30, "both as Slurm jobs")
        pub2 = submit("pub2", 4)  # hpc has 2 h100 left: the cloud takes it
        _wait(lambda: site(pub2) == "cloud", 60, "pub2 running at the cloud")
        _wait(lambda: "pub2 started at c0" in lab.logs(pub2), 30, "pub2's logs through the API")
        _wait(lambda: "fin started at s-gpu-" in lab.logs(fin), 30, "fin's logs from Slurm through the API")
        # Billing starts at the executor's STARTED: wait until the scheduler has seen pub start at hpc (it is
        # billed), or an outage before that poll would rightly leave its hpc run unbilled (CI at 43c5b60).
        _wait(lambda: lab.job(pub)["charged_krw"] > 0, 30, "pub's start at hpc seen and billed")

        # The HPC controller stops answering.
        outage.write_text("")
        t0 = time.time()

        def moved() -> bool:
            assert site(fin) in (None, "hpc")  # financial data never runs on the uncertified cloud
            return site(pub) == "cloud"

        _wait(moved, 30, "pub requeued onto the cloud")
        took = time.time() - t0
        assert took < 30.0
        assert lab.job(fin)["state"] == "queued"
        assert {s["id"]: s["down"] for s in admin.get("sites")["items"]}["hpc"] is True
        hpc_nodes = [n for n in admin.get("nodes")["items"] if n["site"] == "hpc"]
        assert hpc_nodes  # its nodes stay registered; the site is down

        # The controller answers again: fin runs at hpc again, pub's stale Slurm run is cancelled.
        outage.unlink()
        _wait(lambda: site(fin) == "hpc", 60, "fin running at hpc again")
        # (fin's own stale run there is stopped too; its new attempt is submitted once that one has ended)
        _wait(lambda: set(_tagged(slurm_conf, tag)) == {fin}, 30, "pub's stale Slurm run cancelled")
        assert site(pub) == "cloud" and site(fin) == "hpc"
        assert {s["id"]: s["down"] for s in admin.get("sites")["items"]}["hpc"] is False

        # fin never started at the uncertified cloud: the cloud's local executor never had a log for it
        assert not list((data / "sites" / "cloud" / "executor" / "logs").glob(f"{fin}*"))
        assert list((data / "sites" / "cloud" / "executor" / "logs").glob(f"{pub2}*"))

        # Usage by site, each site at its own price.
        time.sleep(1.0)
        rows = {r["site"]: r for r in admin.usage(by=["site"])["items"]}
        assert set(rows) == {"cloud", "hpc"}, rows
        for s, price in (("cloud", 3000), ("hpc", 2000)):
            exact = rows[s]["device_hours"] * price
            assert abs(rows[s]["krw"] - exact) <= 0.02 * exact + 5, (s, rows[s])

        # The stale run is never billed: pub is charged its hpc run up to the site's loss, at hpc's price,
        # and its cloud run at the cloud's price, nothing more (the stale run's events were dropped).
        admin.cancel(pub)
        _wait(lambda: lab.job(pub)["state"] == "cancelled", 30, "pub cancelled")
        time.sleep(1.5)  # the round that books its last slice
        runs, start = [], None
        for e in admin.get(f"jobs/{pub}/events")["items"]:
            if e["state"] == "running" and start is None:
                start = e["time"]
            elif e["state"] != "running" and start is not None:
                runs.append(e["time"] - start)
                start = None
        assert len(runs) == 2, admin.get(f"jobs/{pub}/events")["items"]
        expected = 4 * (runs[0] * 2000 + runs[1] * 3000) / 3600
        charged = lab.job(pub)["charged_krw"]
        assert abs(charged - expected) <= 0.02 * expected + 5, (charged, expected, runs)
    finally:
        if outage.exists():
            outage.unlink()
        for j in jobs:
            try:
                admin.cancel(j)
            except Exception:
                pass
        deadline = time.time() + 30
        while _tagged(slurm_conf, tag) and time.time() < deadline:
            time.sleep(0.5)
        left = _tagged(slurm_conf, tag)
        server.kill(signal.SIGTERM)
        if left:
            subprocess.run(["scancel", *left.values()], env={**os.environ, "SLURM_CONF": slurm_conf})
    assert not left, f"Slurm jobs left after cancel: {left}"


def _wait(pred: Any, timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")
