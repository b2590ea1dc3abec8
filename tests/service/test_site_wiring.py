"""The scheduler's executors follow the sites table (service/sites.py), without Slurm: sites registered
while it runs are driven from the next refresh, a changed connection waits for the site's work to end, a
connection that cannot be built marks the site down, a site down at start-up has its stale runs stopped
when it answers, and a run left at another site than the store's is stopped at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelpool.catalog import bundled_catalog
from accelpool.core.rounds import Placement
from accelpool.core.sites import connection_problem
from accelpool.core.types import Job, Site
from accelpool.executors.fake import FakeExecutor
from accelpool.executors.sites import SiteExecutors
from accelpool.ports import Launch, RunSpec
from accelpool.runtime.clock import SystemClock
from accelpool.service.server import Options, Service
from accelpool.service.sites import ExecutorFactory, SiteWiring
from accelpool.storage.engine import sqlite_url
from accelpool.storage.memory import MemoryStore
from accelpool.storage.sql import SqlStore


def _launch(job: str, site: str) -> Launch:
    return Launch(Job(job), Placement(job, "h100", (("n0", (0,)),), site), RunSpec(command="sleep 60"), 1.0)


def test_sites_registered_later_are_driven_and_changes_wait_for_their_work(tmp_path: Path) -> None:
    clock = SystemClock()
    store = MemoryStore(bundled_catalog())
    default = FakeExecutor(clock)
    built: list[tuple[str, dict[str, str]]] = []

    def make(site: Site) -> FakeExecutor:
        if site.connection.get("broken"):
            raise ValueError("cannot reach it")
        built.append((site.id, dict(site.connection)))
        return FakeExecutor(clock)

    wiring = SiteWiring(store, clock, default, make)
    assert wiring.refresh() is None  # no site registered: the service keeps its one executor
    store.add_sites([Site("cloud", executor="fake", connection={"v": "1"})])
    ex = wiring.refresh()
    assert isinstance(ex, SiteExecutors) and set(ex.executors) == {"default", "cloud"}
    assert ex.executors["default"] is default
    assert wiring.refresh() is ex and len(built) == 1  # nothing changed: nothing rebuilt

    ex.start(_launch("a", "cloud"))
    store.add_sites([Site("cloud", executor="fake", connection={"v": "2"})])
    assert wiring.refresh() is ex and len(built) == 1  # it runs work: the change waits
    ex.stop("a", "done")
    ex.poll()
    wiring.refresh()
    assert built[-1] == ("cloud", {"v": "2"})

    store.add_sites([Site("bad", executor="fake", connection={"broken": "1"})])
    wiring.refresh()
    assert "bad" not in ex.executors and "cannot reach it" in wiring.failures()["bad"]
    assert {s.id: s.down for s in store.sites()}["bad"] is True  # nothing is placed there
    store.add_sites([Site("bad", executor="fake", down=True)])  # fixed, still marked down
    wiring.refresh()
    assert "bad" in ex.executors and not wiring.failures()
    ex.poll()  # it answers (a fake executor always does): marked up again
    assert {s.id: s.down for s in store.sites()}["bad"] is False
    ex.close()


def test_a_site_down_at_start_up_stops_its_stale_runs_when_it_answers() -> None:
    clock = SystemClock()
    store = MemoryStore(bundled_catalog())
    store.add_sites([Site("a", executor="fake", down=True)])
    a = FakeExecutor(clock)
    a.start(_launch("j", "a"))  # left running at a while the control plane was down; j was requeued then
    ex = SiteExecutors({"a": a}, clock, initially_down={"a"}, on_site_health=store.set_site_down)
    assert ex.down == {"a"} and ex.active() == set()
    ex.poll()  # a answers: its runs are stale, stopped; it is marked up
    assert "a" not in ex.down and {s.id: s.down for s in store.sites()}["a"] is False
    assert ("j", "site a came back; the job was requeued") in a.stops
    ex.close()


def test_a_run_at_another_site_than_the_stores_is_stopped_at_start_up() -> None:
    clock = SystemClock()
    a, b = FakeExecutor(clock), FakeExecutor(clock)
    a.start(_launch("j", "a"))
    b.start(_launch("j", "b"))
    ex = SiteExecutors({"a": a, "b": b}, clock)
    assert ex.settle({"j": "b"}) == [("j", "a")]
    assert a.stops == [("j", "the job runs at site b")] and not b.stops
    assert ex.site_of("j") == "b"
    ex.close()


def test_connections_are_checked_per_executor_kind(tmp_path: Path) -> None:
    assert connection_problem("slurm", {"slurm_conf": "/x", "bin_dir": "/y"}) is None
    why = connection_problem("local", {"slurm_conf": "/x"})
    assert why is not None and "slurm_conf" in why and "local" in why
    factory = ExecutorFactory(tmp_path, catalog=bundled_catalog(), clock=SystemClock())
    with pytest.raises(ValueError, match="mean nothing"):
        factory("ray", tmp_path / "r", {"slurm_conf": "/x"})
    assert isinstance(factory.for_site(Site("f", executor="fake")), FakeExecutor)


def test_the_service_switches_to_site_executors_when_a_site_is_registered(tmp_path: Path) -> None:
    service = Service(Options(data_dir=tmp_path, executor="fake"))
    try:
        assert isinstance(service.executor, FakeExecutor)
        service.store.add_sites([Site("cloud", executor="fake")])
        service.refresh_sites()
        assert isinstance(service.executor, SiteExecutors)
        assert service.reconciler.executor is service.executor
        assert set(service.executor.executors) == {"default", "cloud"}
    finally:
        service.stop()


@pytest.mark.parametrize("kind", ["memory", "sql"])
def test_a_site_taken_out_by_hand_stays_down_across_restarts_until_brought_up(
    tmp_path: Path, kind: str
) -> None:
    """An operator's down outlives a scheduler restart and the site's answers; only the operator ends it."""
    clock = SystemClock()
    store = (
        MemoryStore(bundled_catalog()) if kind == "memory" else SqlStore(sqlite_url(tmp_path / "s.sqlite"))
    )
    held = Site("a", executor="fake", down=True, down_by="ops", down_at=100.0, down_reason="maintenance")
    store.add_sites([held, Site("b", executor="fake")])
    for _restart in range(2):  # each SiteWiring is a scheduler (re)start over the same store
        wiring = SiteWiring(store, clock, FakeExecutor(clock), lambda s: FakeExecutor(clock))
        ex = wiring.refresh()
        assert ex is not None
        for _ in range(3):
            ex.poll()  # a answers (a fake executor always does)
            wiring.refresh()
        a = {s.id: s for s in store.sites()}["a"]
        assert (a.down, a.down_by, a.down_at, a.down_reason) == (True, "ops", 100.0, "maintenance")
        ex.close()
    store.set_site_down("a", True)  # its controller falls silent, then answers: still the operator's
    store.set_site_down("a", False)
    assert {s.id: s.down for s in store.sites()} == {"a": True, "b": False}
    store.set_site_down("b", True)  # a site down by its health alone comes back when it answers
    store.set_site_down("b", False)
    assert {s.id: s.down for s in store.sites()}["b"] is False
    store.add_sites([Site("a", executor="fake")])  # brought up by the operator
    assert {s.id: s.down for s in store.sites()}["a"] is False


def test_a_site_brought_up_by_hand_while_silent_is_down_again_at_the_next_refresh() -> None:
    clock = SystemClock()
    store = MemoryStore(bundled_catalog())
    store.add_sites([Site("a", executor="fake", down=True)])
    silent = FakeExecutor(clock)
    silent.reachable = lambda: False  # type: ignore[attr-defined]
    wiring = SiteWiring(store, clock, FakeExecutor(clock), lambda s: silent)
    ex = wiring.refresh()
    assert ex is not None and ex.down == {"a"}
    store.add_sites([Site("a", executor="fake")])  # an operator says up; the controller still does not answer
    wiring.refresh()
    assert {s.id: s.down for s in store.sites()}["a"] is True
    ex.close()


def test_a_second_ray_site_is_refused_in_words(tmp_path: Path) -> None:
    """One Ray cluster per scheduler process (Ray's client is process-wide): the rule in the core, and the
    factory refusing a second Ray executor before anything connects (the site is then marked down)."""
    from accelpool.core.sites import second_ray_site

    sites = [Site("r1", executor="ray"), Site("s", executor="slurm")]
    assert second_ray_site("r1", "ray", sites) is None  # the same site, changed
    assert second_ray_site("s", "slurm", sites) is None
    why = second_ray_site("r2", "ray", sites)
    assert why is not None and "site r1 is driven by Ray already" in why and "process-wide" in why
    factory = ExecutorFactory(tmp_path, catalog=bundled_catalog(), clock=SystemClock())
    factory.ray_site = "r1"  # as after building r1's executor
    with pytest.raises(ValueError, match="one Ray cluster per scheduler process"):
        factory("ray", tmp_path / "r2", {"address": "10.0.0.2:6379"}, "r2")


def test_a_slurm_site_that_joins_while_the_service_runs_is_built_apart_from_the_round() -> None:
    # an operator's test: a Slurm site with a wrong slurm.conf held the round ~20 s while its executor asked
    # sinfo and squeue for its nodes and jobs; now the round goes on and the site joins once built
    import threading
    import time

    clock = SystemClock()
    store = MemoryStore(bundled_catalog())
    gate = threading.Event()

    def make(site: Site) -> FakeExecutor:
        if site.executor == "slurm":
            assert gate.wait(10.0)
            if site.connection.get("slurm_conf") == "/nonexistent":
                raise ValueError("sinfo: no such file")
        return FakeExecutor(clock)

    wiring = SiteWiring(store, clock, FakeExecutor(clock), make)
    store.add_sites([Site("cloud", executor="fake")])
    ex = wiring.refresh()
    assert ex is not None
    store.add_sites([Site("hpc", executor="slurm", connection={"slurm_conf": "/etc/slurm/slurm.conf"})])
    store.add_sites([Site("bad", executor="slurm", connection={"slurm_conf": "/nonexistent"})])
    t0 = time.monotonic()
    assert wiring.refresh() is ex and time.monotonic() - t0 < 1.0
    assert set(ex.executors) == {"default", "cloud"}  # still being built
    gate.set()
    deadline = time.monotonic() + 10.0
    while ("hpc" not in ex.executors or "bad" not in wiring.failures()) and time.monotonic() < deadline:
        time.sleep(0.05)
        wiring.refresh()
    assert set(ex.executors) == {"default", "cloud", "hpc"}
    assert "sinfo: no such file" in wiring.failures()["bad"] and {s.id: s.down for s in store.sites()}["bad"]
    ex.close()


def test_the_first_site_that_joins_at_run_time_is_built_apart_too() -> None:
    # a review: with no site before, the first one went through the start-up path and was built in the round
    import threading
    import time

    clock = SystemClock()
    store = MemoryStore(bundled_catalog())
    gate = threading.Event()

    def make(site: Site) -> FakeExecutor:
        assert gate.wait(10.0)
        return FakeExecutor(clock)

    wiring = SiteWiring(store, clock, FakeExecutor(clock), make)
    assert wiring.refresh() is None  # start-up: no site
    store.add_sites([Site("hpc", executor="slurm", connection={"slurm_conf": "/etc/slurm/slurm.conf"})])
    t0 = time.monotonic()
    ex = wiring.refresh()
    assert ex is not None and time.monotonic() - t0 < 1.0 and set(ex.executors) == {"default"}
    gate.set()
    deadline = time.monotonic() + 10.0
    while "hpc" not in ex.executors and time.monotonic() < deadline:
        time.sleep(0.05)
        wiring.refresh()
    assert set(ex.executors) == {"default", "hpc"}
    ex.close()
