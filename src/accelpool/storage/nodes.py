"""The nodes aggregate: add, drain, resize, move or remove nodes (never under the devices running jobs hold)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, insert, select, update

from accelpool.core import nodes
from accelpool.core.types import JobState, Node
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.unit import UnitOfWork, _node_row
from accelpool.storage.views import NodeView


class NodeWrites(UnitOfWork):
    def add_nodes(self, nodes: Iterable[Node]) -> None:
        with self.write() as c:
            for n in nodes:
                row = _node_row(n)
                if c.execute(update(T.nodes).where(T.nodes.c.name == n.name).values(**row)).rowcount == 0:
                    c.execute(insert(T.nodes).values(name=n.name, down=False, **row))
        self.invalidate()

    def set_node_down(self, name: str, down: bool = True, cause: str | None = None) -> None:
        """Mark a node out of service (``cause``: "drained" by an operator, "lost" by the executor) or back."""
        with self.write() as c:
            c.execute(
                update(T.nodes)
                .where(T.nodes.c.name == name)
                .values(down=down, down_cause=cause if down else None)
            )
        self.invalidate()

    def create_node(self, node: Node) -> None:
        """Insert a node; Conflict (field ``name``) when one of that name exists (its devices and zone are
        never changed by a second add: running jobs may hold them)."""
        self._insert_new(T.nodes, T.nodes.c.name, node.name, {**_node_row(node), "down": False}, "node")

    def remove_node(self, name: str) -> bool:
        """Take a node out of the pool for good (a typo, a machine retired); False when there is none, and
        Conflict while running jobs hold devices on it (``core.nodes.check_remove``). Its jobs' history keeps
        its name."""
        with self.write() as c:
            if self._lock_row(c, T.nodes, T.nodes.c.name, name) is None:
                return False
            nodes.check_remove(name, self._used_on(c, name))
            c.execute(delete(T.nodes).where(T.nodes.c.name == name))
        self.invalidate()
        return True

    def _used_on(self, c: Any, name: str) -> int:
        """Devices running jobs hold on node ``name`` (read under the caller's transaction)."""
        q = select(T.jobs.c.id, T.jobs.c.placement).where(
            T.jobs.c.active.is_(True), T.jobs.c.state == JobState.RUNNING.value
        )
        running = (codec.placement_from_dict(j.id, j.placement) for j in c.execute(q))
        return nodes.devices_in_use((p for p in running if p is not None), name)

    def update_node(
        self, name: str, *, devices: int | None = None, zone: str | None = None, down: bool | None = None
    ) -> NodeView | None:
        """Change a node's device count (never below the devices running jobs hold on it), its zone (only
        while no job runs on it) or its down flag. None when there is no such node."""
        with self.write() as c:
            r = self._lock_row(c, T.nodes, T.nodes.c.name, name)
            if r is None:
                return None
            row: dict[str, Any] = {}
            if devices is not None or (zone is not None and zone != r.zone):
                used = self._used_on(c, name)
                if devices is not None:
                    nodes.check_resize(name, devices, used)
                    row["devices"] = devices
                if zone is not None and zone != r.zone:
                    nodes.check_move(name, used)
                    row["zone"] = zone
            if down is not None:
                row["down"] = down
                row["down_cause"] = "drained" if down else None  # an operator's drain
            if row:
                c.execute(update(T.nodes).where(T.nodes.c.name == name).values(**row))
            r = c.execute(select(T.nodes).where(T.nodes.c.name == name)).one()
        self.invalidate()
        return NodeView(
            r.name, r.accelerator, int(r.devices), r.zone, bool(r.down), list(r.labels or []), r.site
        )
