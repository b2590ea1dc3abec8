"""A Ray site's address is checked before ``ray.init``: ``ray.init`` on a port where nothing listens did not
give up within five minutes here (Ray 2.x), and a site's executor is built in the scheduler's thread, so one
mistyped port held every site's scheduling. ``reach`` refuses it at once, naming the address."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from accelpool.executors.ray_nodes import reach


@pytest.fixture
def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()  # nothing listens there now: a connection is refused
    return port


@pytest.fixture
def open_port() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    yield int(s.getsockname()[1])
    s.close()


def test_a_port_where_nothing_listens_is_refused_at_once_naming_the_address(closed_port: int) -> None:
    for address in (f"127.0.0.1:{closed_port}", f"ray://127.0.0.1:{closed_port}"):
        began = time.monotonic()
        with pytest.raises(ConnectionError) as err:
            reach(address, timeout=60.0)
        assert time.monotonic() - began < 30.0  # refused, not waited out
        assert repr(address) in str(err.value)
        assert "refused" in str(err.value).lower()


def test_a_listening_address_and_addresses_left_to_ray_pass(open_port: int) -> None:
    reach(f"127.0.0.1:{open_port}")
    reach(f"ray://127.0.0.1:{open_port}")
    reach(f"[::1]:{open_port}") if socket.has_ipv6 and _ipv6_listens(open_port) else None
    for address in (None, "", "auto", "local", "not an address", "host:port"):
        reach(address)  # nothing to check: Ray's own error (or its local cluster) stands


def _ipv6_listens(port: int) -> bool:
    try:
        with socket.create_connection(("::1", port), timeout=1):
            return True
    except OSError:
        return False


def test_the_ray_executor_checks_before_it_connects(
    closed_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray")
    from accelpool.executors.ray import RayExecutor

    def no_init(*args: object, **kwargs: object) -> None:
        raise AssertionError("ray.init was called with an address that refuses connections")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_init)
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{closed_port}"):
        RayExecutor(address=f"127.0.0.1:{closed_port}", log_dir=tmp_path / "logs", remote_dir=str(tmp_path))


def test_a_ray_site_with_a_refused_address_is_marked_down_with_the_cause(
    closed_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the operator sees: the site down, its cause naming the address, the round not held."""
    ray = pytest.importorskip("ray")
    from accelpool.catalog import bundled_catalog
    from accelpool.core.types import Site
    from accelpool.executors.fake import FakeExecutor
    from accelpool.runtime.clock import SystemClock
    from accelpool.service.sites import ExecutorFactory, SiteWiring
    from accelpool.storage.memory import MemoryStore

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init on a refused address"))
    clock = SystemClock()
    store = MemoryStore()
    factory = ExecutorFactory(tmp_path, catalog=bundled_catalog(), clock=clock)
    wiring = SiteWiring(store, clock, FakeExecutor(clock), factory.for_site)
    store.add_sites([Site("cloud", executor="ray", connection={"address": f"127.0.0.1:{closed_port}"})])
    wiring.refresh()
    assert {s.id: s.down for s in store.sites()}["cloud"] is True
    why = wiring.failures()["cloud"]
    assert (
        why.startswith("ConnectionError") and f"127.0.0.1:{closed_port}" in why and "refused" in why.lower()
    )
    assert factory.ray_site is None  # not taken: a corrected address may still be driven by Ray
