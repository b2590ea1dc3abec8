"""Multi-site pool files for the simulator: sites with their nodes, certifications and prices, and the mix of
data classes among the trace's jobs.

    # pool.yaml
    prices: {v100: 3000}                 # the pool's price per device-hour (KRW), for sites that set none
    data_classes: {public: 0.7, financial: 0.3}   # share of the trace's jobs per class (seeded draw)
    sites:
      - id: cloud-a
        operator: Cloud A
        region: seoul
        data_classes: [public]
        prices: {v100: 2500}             # this site's own prices
        devices: {v100: 24, k80: 24}     # devices per type at this site
        devices_per_node: 4              # node size (default 8)
      - id: hpc
        region: daejeon
        data_classes: [public, financial]
        devices: {v100: 16, p100: 36}

Errors name the file, the line and the field.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from accelpool.core.errors import InputError
from accelpool.core.types import DATA_CLASSES, Node, Site
from accelpool.sim.workload import Workload

_SITE_KEYS = {"id", "operator", "region", "data_classes", "prices", "devices", "devices_per_node", "executor"}


@dataclass(frozen=True)
class Pool:
    sites: tuple[Site, ...]
    nodes: tuple[Node, ...]
    prices: Mapping[str, int]
    data_classes: Mapping[str, float]


def _line(node: yaml.Node | None) -> int | None:
    return None if node is None else node.start_mark.line + 1


def _lines(doc: yaml.Node, path: tuple[object, ...]) -> int | None:
    """The line of the value at ``path`` (keys and list indices) in the YAML node tree, if found."""
    node: yaml.Node | None = doc
    for key in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return _line(node)
    return _line(node)


def load_pool(path: Path) -> Pool:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the pool file: {exc.strerror}", file=str(path)) from None
    try:
        doc = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            file=str(path),
            line=mark.line + 1 if mark else None,
        ) from None

    def err(msg: str, where: tuple[object, ...], field: str, value: object = None) -> InputError:
        return InputError(
            msg, file=str(path), line=_lines(doc, where) if doc else None, field=field, value=value
        )

    if not isinstance(data, dict) or not isinstance(data.get("sites"), list) or not data["sites"]:
        raise err("a pool file needs a non-empty 'sites' list", (), "sites")
    prices = _prices(data.get("prices") or {}, ("prices",), "prices", err)
    sites: list[Site] = []
    nodes: list[Node] = []
    seen: set[str] = set()
    for i, s in enumerate(data["sites"]):
        where: tuple[object, ...] = ("sites", i)
        if not isinstance(s, dict):
            raise err("each site is a mapping with at least 'id' and 'devices'", where, f"sites[{i}]")
        unknown = sorted(set(s) - _SITE_KEYS)
        if unknown:
            raise err(
                f"unknown field '{unknown[0]}' (one of {', '.join(sorted(_SITE_KEYS))})",
                where,
                f"sites[{i}].{unknown[0]}",
            )
        sid = s.get("id")
        if not isinstance(sid, str) or not sid or sid in seen:
            raise err("each site needs a unique 'id' (text)", (*where, "id"), f"sites[{i}].id", sid)
        seen.add(sid)
        classes = s.get("data_classes", ["public"])
        if not isinstance(classes, list) or not classes or any(c not in DATA_CLASSES for c in classes):
            raise err(
                f"data_classes: a list of {', '.join(DATA_CLASSES)}",
                (*where, "data_classes"),
                f"sites[{i}].data_classes",
                classes,
            )
        devices = s.get("devices")
        if not isinstance(devices, dict) or not devices:
            raise err("devices: {type: count, ...}", (*where, "devices"), f"sites[{i}].devices", devices)
        per = s.get("devices_per_node", 8)
        if not isinstance(per, int) or isinstance(per, bool) or not 1 <= per <= 1024:
            raise err(
                "devices_per_node: a whole number 1..1024",
                (*where, "devices_per_node"),
                f"sites[{i}].devices_per_node",
                per,
            )
        for t, n in devices.items():
            if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 100_000:
                raise err(
                    f"devices of {t}: a whole number 0..100000",
                    (*where, "devices", t),
                    f"sites[{i}].devices.{t}",
                    n,
                )
            full, rest = divmod(n, per)
            sizes = [per] * full + ([rest] if rest else [])
            nodes += [Node(f"{sid}-{t}-{k:04d}", str(t), size, site=sid) for k, size in enumerate(sizes)]
        sites.append(
            Site(
                sid,
                str(s.get("operator", "")),
                str(s.get("region", "")),
                frozenset(classes),
                str(s.get("executor", "fake")),
                {},
                _prices(s.get("prices") or {}, (*where, "prices"), f"sites[{i}].prices", err),
            )
        )
    mix = data.get("data_classes") or {"public": 1.0}
    if (
        not isinstance(mix, dict)
        or any(c not in DATA_CLASSES for c in mix)
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in mix.values())
        or sum(mix.values()) <= 0
    ):
        raise err(
            f"data_classes: {{class: share}} over {', '.join(DATA_CLASSES)}",
            ("data_classes",),
            "data_classes",
            mix,
        )
    return Pool(tuple(sites), tuple(nodes), prices, {k: float(v) for k, v in mix.items()})


def _prices(d: Any, where: tuple[object, ...], field: str, err: Any) -> dict[str, int]:
    if not isinstance(d, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10**9 for v in d.values()
    ):
        raise err("prices: {type: whole KRW per device-hour}", where, field, d)
    return {str(k): int(v) for k, v in d.items()}


def apply_pool(workload: Workload, pool: Pool, seed: int = 0) -> Workload:
    """The workload on the pool's sites: its nodes, sites and prices; each job a data class drawn (seeded)
    from the pool's mix."""
    from accelpool.core.types import Cluster

    rng = random.Random(seed)
    classes = sorted(pool.data_classes)
    weights = [pool.data_classes[c] for c in classes]
    jobs = tuple(replace(j, data_class=rng.choices(classes, weights)[0]) for j in workload.jobs)
    return replace(
        workload,
        jobs=jobs,
        cluster=Cluster(pool.nodes),
        sites=pool.sites,
        prices_krw_per_hour={**workload.prices_krw_per_hour, **pool.prices},
        notes=(*workload.notes, f"pool file: {len(pool.sites)} sites; data classes drawn with seed {seed}"),
    )
