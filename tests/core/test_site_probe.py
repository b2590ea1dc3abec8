"""A probe takes a site down and brings it back; one an operator took out stays down (core.sites.probed, which
MemoryStore and SqlStore both apply)."""

from __future__ import annotations

from accelpool.core.sites import probed
from accelpool.core.types import Site


def test_a_probe_changes_a_site_only_when_its_health_changes_and_never_lifts_an_operators_hold():
    up = Site("s")
    down = probed(up, True)
    assert down is not None and down.down
    assert probed(up, False) is None and probed(down, True) is None
    back = probed(down, False)
    assert back is not None and not back.down
    held = Site("s", down=True, down_by="ops")
    assert probed(held, False) is None
