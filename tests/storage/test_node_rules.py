"""A node never shrinks under the devices running jobs hold, nor changes zone while jobs run on it (the rule is
core.nodes; the store asks it under the node's row lock)."""

from __future__ import annotations

import pytest

from accelpool.core import nodes
from accelpool.core.errors import Conflict
from accelpool.core.rounds import Decision, Placement
from accelpool.core.types import Job, Node
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore


def test_devices_in_use_is_one_past_the_highest_index_held_on_that_node():
    running = [Placement("a", "h100", (("n", (2, 3)), ("m", (7,)))), Placement("b", "h100", (("n", (0,)),))]
    assert nodes.devices_in_use(running, "n") == 4
    assert nodes.devices_in_use(running, "m") == 8
    assert nodes.devices_in_use(running, "x") == 0
    nodes.check_resize("n", 4, 4)
    nodes.check_move("x", 0)
    with pytest.raises(Conflict) as e:
        nodes.check_resize("n", 3, 4)
    assert e.value.field == "devices"
    with pytest.raises(Conflict) as e:
        nodes.check_move("n", 4)
    assert e.value.field == "zone"


def test_the_store_refuses_to_shrink_or_move_a_node_under_a_running_job(tmp_path):
    store = SqlStore(sqlite_url(tmp_path / "nodes.sqlite"))
    try:
        store.add_nodes([Node("n", "h100", 8, zone="seoul")])
        store.submit(Job("a"), {"h100": 1.0})
        start = (Placement("a", "h100", (("n", (2, 3)),)),)
        store.record_decision(Decision(now=1.0, allocation=None, start=start))  # type: ignore[arg-type]
        with pytest.raises(Conflict):
            store.update_node("n", devices=3)
        with pytest.raises(Conflict):
            store.update_node("n", zone="busan")
        view = store.update_node("n", devices=4)
        assert view is not None and view.devices == 4
        store.cancel("a", 2.0)
        view = store.update_node("n", devices=1, zone="busan")
        assert view is not None and (view.devices, view.zone) == (1, "busan")
    finally:
        store.close()
