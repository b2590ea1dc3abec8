"""Free devices of one round, per type and node: whole gangs on as few nodes as possible (best fit).

Used by core/placement.py; the template built from the node tuple is kept in the round's ``DecideCache``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from accelpool.core.round_types import Placement
from accelpool.core.types import DEFAULT_SITE, Node

if TYPE_CHECKING:
    from accelpool.core.rounds import DecideCache


_FreeTemplate = tuple[
    tuple[Node, ...],
    dict[str, dict[str, list[int]]],
    dict[str, str | None],
    dict[str, int],
    dict[tuple[str, str | None], int],
    dict[str, str],
    dict[tuple[str, str], int],
]


class _FreeDevices:
    """Free device indices per node, per type; places gangs on as few nodes as possible (best fit)."""

    def __init__(self, nodes: tuple[Node, ...], cache: DecideCache) -> None:
        # Free lists are replaced, never changed in place, so a per-type shallow copy of a template made
        # once per node tuple (kept in the caller's cache) is enough.
        cached = cache.free_template
        if cached is None or cached[0] is not nodes:
            by_type: dict[str, dict[str, list[int]]] = {}
            for n in nodes:
                by_type.setdefault(n.accelerator, {})[n.name] = list(range(n.devices))
            totals = {t: sum(len(v) for v in d.values()) for t, d in by_type.items()}
            zones: dict[tuple[str, str | None], int] = {}
            for n in nodes:
                zones[n.accelerator, n.zone] = zones.get((n.accelerator, n.zone), 0) + n.devices
            sites: dict[tuple[str, str], int] = {}
            for n in nodes:
                sites[n.accelerator, n.site] = sites.get((n.accelerator, n.site), 0) + n.devices
            cached = cache.free_template = (
                nodes,
                by_type,
                {n.name: n.zone for n in nodes},
                totals,
                zones,
                {n.name: n.site for n in nodes},
                sites,
            )
        self.by_type = {t: dict(d) for t, d in cached[1].items()}
        self.free = dict(cached[3])  # free devices per type, kept as devices are taken (``total``)
        self.zone = cached[2]
        self.initial = cached[3]
        self.initial_zones = cached[4]
        self.site = cached[5]
        self.initial_sites = cached[6]

    def total(self, accelerator: str) -> int:
        """Free devices of the type (counted as they are taken: a pool of one device per node has hundreds
        of nodes to sum over)."""
        return self.free.get(accelerator, 0)

    def take_exact(self, p: Placement) -> bool:
        nodes = self.by_type.get(p.accelerator)
        if nodes is None:
            return False
        for n, d in p.devices:
            f = nodes.get(n)
            if f is None or (d[0] not in f if len(d) == 1 else not set(d).issubset(f)):
                return False
        gone = 0
        for n, d in p.devices:
            before = nodes[n]
            nodes[n] = after = [i for i in before if i not in d]
            gone += len(before) - len(after)
        self.free[p.accelerator] -= gone
        return True

    def place(
        self, job: str, accelerator: str, count: int, zone: str | None, site: str = DEFAULT_SITE
    ) -> Placement | None:
        """Devices for a gang of ``count`` on nodes of ``site`` (a gang never spans sites)."""
        on_type = self.by_type.get(accelerator, {})
        nodes = [
            (n, f)
            for n, f in on_type.items()
            if f and (zone is None or self.zone[n] == zone) and self.site[n] == site
        ]
        best: tuple[int, str] | None = None
        total = 0
        for n, f in nodes:
            size = len(f)
            total += size
            if size >= count and (best is None or (size, n) < best):
                best = (size, n)
        if total < count:
            return None
        if best is not None:
            chosen = [(best[1], count)]
        else:
            chosen, need = [], count
            for n, f in sorted(nodes, key=lambda nf: (-len(nf[1]), nf[0])):
                take = min(need, len(f))
                chosen.append((n, take))
                need -= take
                if need == 0:
                    break
        devices = []
        for n, k in chosen:
            free = on_type[n]
            devices.append((n, tuple(free[:k])))
            on_type[n] = free[k:]
            self.free[accelerator] -= len(free) - len(on_type[n])
        return Placement(job, accelerator, tuple(devices), site)
