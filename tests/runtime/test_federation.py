"""Two sites at once, end to end: a cloud site run by the local executor and a supercomputing site run by
a real Slurm (scripts/slurm.sh). Data-class placement, each site's prices on the charges, and a site outage
(the site's Slurm commands fail as with a silent controller, through wrappers given as the executor's
``bin_dir``; the shared slurmctld is never stopped): its public job is requeued onto the other site within
30 s, its financial job waits (never runs on the uncertified cloud), and when the controller answers again
the stale run there is stopped, not doubled."""

from __future__ import annotations

import os
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import pytest
from tests.slurm_outage import slurm_wrappers

from accelpool.catalog import bundled_catalog
from accelpool.core.policies import POLICIES
from accelpool.core.types import Job, JobState, Node, Site, WaitReason
from accelpool.executors.local import LocalExecutor
from accelpool.executors.sites import SiteExecutors
from accelpool.executors.slurm import SlurmExecutor
from accelpool.ports import RunSpec
from accelpool.runtime.clock import SystemClock
from accelpool.runtime.reconciler import Reconciler
from accelpool.storage.memory import MemoryStore

pytestmark = pytest.mark.slurm


def slurm_env(conf: str) -> dict[str, str]:
    return {**os.environ, "SLURM_CONF": conf}


def running_slurm_jobs(conf: str, tag: str) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "-t", "running,pending,completing", "-O", "Comment:|"],
        env=slurm_env(conf),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.strip("|").rsplit(":", 1)[-1] for line in out.splitlines() if line.startswith(tag)]


def test_two_sites_data_classes_prices_and_a_site_outage(tmp_path: Path, slurm_conf: str) -> None:
    clock = SystemClock()
    store = MemoryStore(bundled_catalog())
    store.add_sites(
        [
            Site("cloud", "cloud-a", "seoul", frozenset({"public"}), "local", prices={"h100": 3000}),
            Site(
                "hpc", "kisti", "daejeon", frozenset({"public", "financial"}), "slurm", prices={"h100": 2000}
            ),
        ]
    )
    store.set_prices({"h100": 9999})  # the pool's price: never used, both sites have their own
    instance = f"fed-{os.getpid()}"
    outage = slurm_wrappers(tmp_path / "slurm-bin")
    slurm = SlurmExecutor(
        tmp_path / "slurm",
        slurm_conf=slurm_conf,
        instance=instance,
        clock=clock,
        site="hpc",
        bin_dir=str(outage.parent),
        command_timeout_seconds=4.0,
    )
    local = LocalExecutor(tmp_path / "local", clock=clock)
    hpc_nodes = [n for n in slurm.nodes() if n.accelerator == "h100"]
    assert {n.site for n in hpc_nodes} == {"hpc"} and len(hpc_nodes) == 2
    store.add_nodes([Node("c0", "h100", 4, site="cloud"), *hpc_nodes])
    ex = SiteExecutors(
        {"cloud": local, "hpc": slurm}, clock, down_after_seconds=5.0, on_site_health=store.set_site_down
    )
    rec = Reconciler(store, ex, clock, POLICIES["fifo"], round_seconds=0.5)
    run = RunSpec(command="sleep 300", grace_seconds=1.0)
    store.submit(Job("pub", scale=4, submit_time=clock.now()), {"h100": 1.0}, run)
    store.submit(Job("fin", scale=2, data_class="financial", submit_time=clock.now()), {"h100": 1.0}, run)

    def status(j: str):
        return store.jobs[j].status

    def rounds_until(pred, timeout: float) -> float:
        t0 = time.time()
        while time.time() - t0 < timeout:
            rec.step()
            # the financial job is never placed anywhere but the certified site
            p = status("fin").placement
            assert p is None or p.site == "hpc", p
            if pred():
                return time.time() - t0
            time.sleep(0.3)
        raise AssertionError(
            f"not reached in {timeout} s: { {j: (r.status.state, r.reason) for j, r in store.jobs.items()} }"
        )

    try:
        # Both run at hpc: fin because only hpc is certified for financial data, pub because hpc is cheaper.
        rounds_until(
            lambda: status("pub").state is JobState.RUNNING and status("fin").state is JobState.RUNNING, 30
        )
        assert status("pub").placement.site == "hpc" and status("fin").placement.site == "hpc"
        time.sleep(2.0)
        rec.step()
        assert sorted(running_slurm_jobs(slurm_conf, f"accelpool:{instance}:")) == ["fin", "pub"]

        # The hpc site's controller stops answering.
        outage.write_text("")
        took = rounds_until(
            lambda: status("pub").state is JobState.RUNNING and status("pub").placement.site == "cloud", 30
        )
        assert took < 30.0
        assert "hpc" in ex.down and status("fin").state is JobState.QUEUED
        rec.step()
        assert store.jobs["fin"].reason in (WaitReason.RULE, "every site it may use is down: hpc")
        snap = store.snapshot(clock.now(), 1.0)
        assert {n.site for n in snap.nodes} == {"cloud"}
        time.sleep(2.0)
        rec.step()
        assert status("fin").state is JobState.QUEUED  # it waits rather than run on the uncertified cloud

        # The controller answers again: the stale pub run at hpc is stopped, fin runs at hpc again.
        outage.unlink()
        rounds_until(lambda: "hpc" not in ex.down and status("fin").state is JobState.RUNNING, 60)
        assert status("fin").placement.site == "hpc" and status("pub").placement.site == "cloud"
        deadline = time.time() + 30
        while "pub" in running_slurm_jobs(slurm_conf, f"accelpool:{instance}:") and time.time() < deadline:
            rec.step()
            time.sleep(0.5)
        assert "pub" not in running_slurm_jobs(slurm_conf, f"accelpool:{instance}:")  # never doubled
        assert local.pids("pub")  # pub runs on the cloud

        # Charges show the site, at that site's price.
        by_site: dict[tuple[str, str], list] = {}
        for c in store.charges:
            by_site.setdefault((c.job, c.site), []).append(c)
        assert set(by_site) >= {("pub", "hpc"), ("pub", "cloud"), ("fin", "hpc")}
        assert ("fin", "cloud") not in by_site
        for (job, site), cs in by_site.items():
            price = {"hpc": 2000, "cloud": 3000}[site]
            exact = sum(Fraction(repr(c.device_seconds)) * price / 3600 for c in cs)
            assert abs(sum(c.amount_krw for c in cs) - exact) <= 2, (job, site)

        # Stopping everything leaves nothing running in Slurm (no relaunch sneaks in after the stop).
        for j in list(ex.active()):
            ex.stop(j, "done")
        deadline = time.time() + 30
        while ex.active() and time.time() < deadline:
            ex.poll()
            time.sleep(0.2)
        assert ex.active() == set()
        assert running_slurm_jobs(slurm_conf, f"accelpool:{instance}:") == []
    finally:
        outage.unlink(missing_ok=True)
        for j in list(ex.active()):
            ex.stop(j, "teardown")
        out = subprocess.run(
            ["squeue", "-h", "-O", "JobID:|,Comment:|"],
            env=slurm_env(slurm_conf),
            capture_output=True,
            text=True,
        ).stdout
        ids = [line.split("|")[0] for line in out.splitlines() if f"accelpool:{instance}:" in line]
        if ids:
            subprocess.run(["scancel", *ids], env=slurm_env(slurm_conf), capture_output=True)
        deadline = time.time() + 20
        while ex.active() and time.time() < deadline:
            ex.poll()
            time.sleep(0.2)
        ex.close()
