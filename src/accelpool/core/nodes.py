"""What an operator may change on a node while jobs run on it (pure; the stores call these under the node's
row lock and persist the change, or answer the Conflict)."""

from __future__ import annotations

from collections.abc import Iterable

from accelpool.core.errors import Conflict
from accelpool.core.round_types import Placement


def devices_in_use(running: Iterable[Placement], node: str) -> int:
    """1 + the highest device index running jobs hold on ``node`` (0: none): the fewest devices it may keep."""
    used = 0
    for p in running:
        for name, devices in p.devices:
            if name == node and devices:
                used = max(used, *(int(d) + 1 for d in devices))
    return used


def check_resize(node: str, devices: int, used: int) -> None:
    """A node never shrinks under the devices running jobs hold (Conflict on ``devices``)."""
    if devices < used:
        raise Conflict(
            f"node '{node}' has devices up to index {used - 1} in use by running jobs; "
            "drain it first (nodes drain) and shrink it once they are gone",
            "devices",
        )


def check_remove(node: str, used: int) -> None:
    """A node leaves the pool only while no job runs on it (Conflict on ``name``)."""
    if used:
        raise Conflict(
            f"node '{node}' runs jobs; drain it (nodes drain) and remove it once they are gone",
            "name",
        )


def check_move(node: str, used: int) -> None:
    """A node changes zone only while no job runs on it (Conflict on ``zone``)."""
    if used:
        raise Conflict(f"node '{node}' runs jobs; drain it before changing its zone", "zone")
