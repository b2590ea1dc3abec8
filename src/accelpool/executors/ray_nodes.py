"""The RayExecutor's NodeSource half: Ray's alive nodes with recognised accelerators, as pool nodes.

Nodes (``nodes()``, the NodeSource port): every alive Ray node with accelerator devices. Its catalogue type
comes from, in order: the node label ``accelpool.io/accelerator``, Ray's ``accelerator_type:<NAME>``
resource, the label ``ray.io/accelerator-type``; ``<NAME>`` is matched against catalogue ids and aliases
(``H100`` -> h100, ``FURIOSA_RNGD`` -> rngd via ``furiosa-rngd``) and ``type_aliases``. Its device count is
the type's Ray resource (``GPU``, ``FURIOSA``, ``RBLN``, ...). A node with devices but no recognised type is
listed in ``unrecognized()`` with the reason and left out of the pool (never guessed). Node names are the
label ``accelpool.io/node`` if set, else ``ray-<first 12 hex digits of the Ray node id>``.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Mapping
from typing import Any

from accelpool.core.errors import InputError
from accelpool.core.types import AcceleratorType, Node

log = logging.getLogger("accelpool.executors.ray")
NODE_LABEL = "accelpool.io/node"
TYPE_LABEL = "accelpool.io/accelerator"
REACH_SECONDS = 3.0
"""How long ``reach`` waits for a Ray address to accept a TCP connection."""


def reach(address: str | None, timeout: float = REACH_SECONDS) -> None:
    """Before ``ray.init``: raise ConnectionError naming ``address`` when a Ray address of the form
    ``host:port`` or ``ray://host:port`` does not accept a TCP connection within ``timeout`` seconds.

    ``ray.init`` on an address where nothing listens tries for 20 s and more before it gives up (Ray 2.x:
    the GCS client's retries), and a site's executor is built in the scheduler's thread, so a mistyped
    address held every site's scheduling that long; a refused port is refused at once here, a silent host
    after ``timeout``. Other addresses (None, ``auto``, ``local``) are left to Ray."""
    if not address or address in ("auto", "local"):
        return
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not host:
        return  # not host:port: Ray's own error says what is wrong with it
    host = host.removeprefix("[").removesuffix("]")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ConnectionError(
            f"cannot reach the Ray cluster at {address!r}: {why} (no answer on {host} port {port} "
            f"within {timeout:g} s)"
        ) from None


class RayNodes:
    """Mixin of RayExecutor: node discovery. Uses ``_ray``, ``catalog``, ``type_aliases``, ``_node_ids``,
    ``_alive`` and ``_unrecognized``, which the executor sets up."""

    _ray: Any
    catalog: Mapping[str, AcceleratorType]
    type_aliases: dict[str, str]
    _node_ids: dict[str, str]
    _alive: set[str]
    _unrecognized: dict[str, str]

    # -- NodeSource ---------------------------------------------------------------------------------------

    def nodes(self) -> list[Node]:
        """Alive Ray nodes with recognised accelerators, as pool nodes (refreshed on every call)."""
        return self._refresh_nodes()

    def unrecognized(self) -> dict[str, str]:
        """Nodes with accelerator devices whose type is unknown: node name -> reason."""
        return dict(self._unrecognized)

    def _refresh_nodes(self) -> list[Node]:
        out: list[Node] = []
        unknown: dict[str, str] = {}
        alive: set[str] = set()
        for n in self._ray.nodes():
            if not n.get("Alive"):
                continue
            node_id = n["NodeID"]
            alive.add(node_id)
            labels: dict[str, str] = dict(n.get("Labels") or {})
            resources: dict[str, float] = dict(n.get("Resources") or {})
            name = labels.get(NODE_LABEL) or f"ray-{node_id[:12]}"
            self._node_ids[name] = node_id
            acc, why = self._node_type(labels, resources)
            if acc is None:
                if why:
                    unknown[name] = why
                continue
            t = self.catalog[acc]
            devices = int(resources.get(t.ray_resource or "", 0))
            if devices <= 0:
                unknown[name] = f"type {acc} but no '{t.ray_resource}' resource"
                continue
            zone = labels.get("accelpool.io/zone", "default")
            out.append(Node(name, acc, devices, zone=zone, labels=tuple(sorted(labels.items()))))
        for name, why in unknown.items():
            if self._unrecognized.get(name) != why:
                log.warning("Ray node %s left out of the pool: %s", name, why)
        self._unrecognized = unknown
        self._alive = alive
        return sorted(out, key=lambda x: x.name)

    def _resolve(self, name: str) -> str | None:
        alias = self.type_aliases.get(name.lower())
        if alias is not None:
            return alias if alias in self.catalog else None
        resolve = getattr(self.catalog, "resolve", None)
        for cand in (name, name.replace("_", "-"), re.sub(r"^[A-Za-z]+[_-]", "", name)):
            if resolve is not None:
                try:
                    return str(resolve(cand))
                except (InputError, KeyError, ValueError):
                    continue  # not this spelling; try the next
            elif cand in self.catalog:
                return cand
        return None

    def _node_type(self, labels: Mapping[str, str], resources: Mapping[str, float]) -> tuple[str | None, str]:
        names = []
        if TYPE_LABEL in labels:
            names.append(labels[TYPE_LABEL])
        names += [k.split(":", 1)[1] for k in resources if k.startswith("accelerator_type:")]
        if "ray.io/accelerator-type" in labels:
            names.append(labels["ray.io/accelerator-type"])
        for nm in names:
            acc = self._resolve(nm)
            if acc is not None:
                return acc, ""
        device_resources = {t.ray_resource for t in self.catalog.values() if t.ray_resource}
        has = sorted(r for r in device_resources if resources.get(r, 0) > 0)
        if not has:
            return None, ""
        if names:
            return None, f"accelerator type {', '.join(names)} is not in the catalogue"
        return None, f"has {', '.join(has)} devices but no accelerator_type resource or {TYPE_LABEL} label"
