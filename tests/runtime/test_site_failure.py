"""Site failure with the real reconciler and two local-executor sites (no Slurm needed): a site whose
controller stops answering is marked down after the timeout, its jobs are requeued onto the other allowed
site, and when it answers again its stale runs are stopped (never doubled)."""

from __future__ import annotations

import time
from pathlib import Path

from accelpool.catalog import bundled_catalog
from accelpool.core.policies import POLICIES
from accelpool.core.types import Job, JobState, Node, Site
from accelpool.executors.local import LocalExecutor
from accelpool.executors.sites import SiteExecutors
from accelpool.ports import RunSpec
from accelpool.runtime.clock import SystemClock
from accelpool.runtime.reconciler import Reconciler
from accelpool.storage.memory import MemoryStore


class Controlled(LocalExecutor):
    """A local site whose 'controller' can be told to stop answering."""

    answering = True

    def reachable(self) -> bool:
        return self.answering


def test_a_silent_site_is_marked_down_its_jobs_move_and_stale_runs_are_stopped(tmp_path: Path) -> None:
    clock = SystemClock()
    store = MemoryStore(bundled_catalog())
    store.add_sites(
        [
            Site("a", data_classes=frozenset({"public", "personal"}), prices={"h100": 1000}),
            Site("b", data_classes=frozenset({"public"}), prices={"h100": 2000}),
        ]
    )
    store.add_nodes([Node("a0", "h100", 4, site="a"), Node("b0", "h100", 4, site="b")])
    site_a = Controlled(tmp_path / "a", clock=clock)
    site_b = Controlled(tmp_path / "b", clock=clock)
    ex = SiteExecutors(
        {"a": site_a, "b": site_b},
        clock,
        down_after_seconds=1.0,
        probe_interval_seconds=0.1,
        on_site_health=store.set_site_down,
    )
    rec = Reconciler(store, ex, clock, POLICIES["fifo"], round_seconds=0.2)
    run = RunSpec(command="sleep 60", grace_seconds=0.5)
    store.submit(Job("pub", scale=2, submit_time=clock.now()), {"h100": 1.0}, run)
    store.submit(Job("per", scale=2, data_class="personal", submit_time=clock.now()), {"h100": 1.0}, run)

    def until(pred, timeout: float = 20.0) -> float:
        t0 = time.time()
        while time.time() - t0 < timeout:
            rec.step()
            p = store.jobs["per"].status.placement
            assert p is None or p.site == "a"  # personal data only where certified
            if pred():
                return time.time() - t0
            time.sleep(0.05)
        raise AssertionError({j: (r.status.state, r.reason, r.events) for j, r in store.jobs.items()})

    def st(j: str):
        return store.jobs[j].status

    try:
        until(lambda: st("pub").state is JobState.RUNNING and st("per").state is JobState.RUNNING)
        assert st("pub").placement.site == "a" and st("per").placement.site == "a"  # a is cheaper
        site_a.answering = False
        took = until(lambda: st("pub").state is JobState.RUNNING and st("pub").placement.site == "b")
        assert took < 30.0
        assert ex.down == {"a"} and st("per").state is JobState.QUEUED
        assert ex.active() == {"pub"} and site_b.pids("pub")
        assert site_a.active() == {"pub", "per"}  # still running out of sight, not in the pool
        site_a.answering = True
        until(lambda: st("per").state is JobState.RUNNING and "pub" not in site_a.active())
        assert st("pub").placement is not None, "\n".join(map(str, store.jobs["pub"].events))
        assert st("per").placement.site == "a" and st("pub").placement.site == "b"
        assert site_a.active() == {"per"} and site_b.active() == {"pub"}  # pub's stale run was stopped
        for _ in range(5):
            until(lambda: True)
        assert st("pub").state is JobState.RUNNING  # the stale run's end did not end the job
        events = [e for e in store.jobs["pub"].events if e[1] == JobState.PREEMPTED]
        assert len(events) == 1 and "site-lost: a" in events[0][2]
    finally:
        for j in list(ex.active()):
            ex.stop(j, "teardown")
        for s in (site_a, site_b):
            for j in list(s.active()):
                s.stop(j, "teardown")
        deadline = time.time() + 10
        while (site_a.active() or site_b.active()) and time.time() < deadline:
            site_a.poll()
            site_b.poll()
            time.sleep(0.05)
        ex.close()


def test_a_new_site_whose_controller_hangs_holds_no_round(tmp_path: Path) -> None:
    # an operator's test: a Slurm site with a wrong slurm.conf, added while the service ran, stopped
    # scheduling for the whole pool for 30-45 s (its first polls and node discoveries waited for sinfo's
    # and squeue's 10 s timeouts); a probed site is now polled only once a probe has answered
    from accelpool.core.types import Node as PoolNode
    from accelpool.executors.fake import FakeExecutor

    class Hanging(FakeExecutor):
        calls: list[str] = []

        def reachable(self) -> bool:
            time.sleep(5.0)
            return False

        def poll(self):  # type: ignore[no-untyped-def]
            self.calls.append("poll")
            time.sleep(5.0)
            return []

        def nodes(self) -> list[PoolNode]:
            self.calls.append("nodes")
            time.sleep(5.0)
            return []

    sites = SiteExecutors({"default": FakeExecutor(SystemClock())}, SystemClock(), probe_interval_seconds=0.1)
    try:
        sites.add_site("bad", Hanging(SystemClock()))
        t0 = time.monotonic()
        for _ in range(3):  # three rounds
            sites.poll()
            sites.nodes_by_site()
        assert time.monotonic() - t0 < 1.0 and Hanging.calls == []
    finally:
        sites.close()
