"""Workload: what a simulation replays (jobs, their throughputs, the pool, tenants, programs, grants, prices).

Every trace reader returns one. Units: seconds, devices, steps/s, integer KRW per device-hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from accelpool.core.errors import InputError
from accelpool.core.types import AcceleratorType, Cluster, Grant, Job, Program, Site, Tenant


@dataclass(frozen=True)
class Workload:
    """A trace, ready to replay. ``throughputs[job id]`` is ``{type: steps/s}`` for the whole job (its scale).

    ``notes`` record what a reader assumed or dropped (shown in reports); ``skipped`` counts input lines the
    reader left out on purpose (e.g. CPU-only pods), never malformed ones (those raise InputError).
    """

    name: str
    jobs: tuple[Job, ...]
    throughputs: Mapping[str, Mapping[str, float]]
    cluster: Cluster
    accelerators: Mapping[str, AcceleratorType] = field(default_factory=dict)
    tenants: tuple[Tenant, ...] = ()
    programs: tuple[Program, ...] = ()
    grants: tuple[Grant, ...] = ()
    prices_krw_per_hour: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    skipped: int = 0
    sites: tuple[Site, ...] = ()  # a multi-site pool (sim/pool.py); none: every node at the default site

    def capacity(self) -> dict[str, int]:
        return self.cluster.capacity()


MAX_DEVICES_PER_TYPE = 100_000
MAX_DEVICES_PER_NODE = 1_024


def _parse_counts(spec: str, option: str, *, minimum: int, maximum: int, example: str) -> dict[str, int]:
    """``"a=1,b=2"`` -> ``{"a": 1, "b": 2}``: no empty entries, no type twice, counts in ``[minimum, maximum]``."""
    out: dict[str, int] = {}
    parts = spec.split(",")
    for part in (p.strip() for p in parts):
        if not part:
            raise InputError(
                f"--{option} {spec!r} has an empty entry (expected e.g. {example})", field=option, value=spec
            )
        name, sep, count = part.partition("=")
        key = name.strip().lower()
        if not sep or not key:
            raise InputError(
                f"--{option} entry {part!r} is not TYPE=COUNT (e.g. {example})", field=option, value=spec
            )
        try:
            n = int(count.strip())
        except ValueError:
            raise InputError(
                f"--{option}: count {count.strip()!r} for {key!r} is not an integer", field=option, value=spec
            ) from None
        if not minimum <= n <= maximum:
            raise InputError(
                f"--{option}: count for {key!r} must be {minimum}..{maximum:,}, got {n}",
                field=option,
                value=spec,
            )
        if key in out:
            raise InputError(f"--{option}: type {key!r} is given twice", field=option, value=spec)
        out[key] = n
    return out


def parse_cluster(spec: str) -> dict[str, int]:
    """``"v100=36,p100=36,k80=36"`` -> ``{"v100": 36, ...}`` (devices per type).

    A type may have 0 devices (to keep it in the pool's list), but the pool must have at least one device;
    empty entries and a type named twice are refused.
    """
    if not spec.strip():
        raise InputError(
            "empty cluster spec (expected e.g. v100=36,p100=36,k80=36)", field="cluster", value=spec
        )
    out = _parse_counts(spec, "cluster", minimum=0, maximum=MAX_DEVICES_PER_TYPE, example="v100=36")
    if not any(out.values()):
        raise InputError(f"--cluster {spec!r} has no devices (every count is 0)", field="cluster", value=spec)
    return out


def parse_devices_per_node(spec: str | int | None, default: int = 8) -> int | dict[str, int]:
    """``4`` or ``"v100=4,p100=4,k80=8"`` (types not named get ``default``); every count is 1..1024."""
    if spec is None:
        return default
    text = str(spec).strip()
    if text.isascii() and text.lstrip("+-").isdigit():
        n = int(text)
        if not 1 <= n <= MAX_DEVICES_PER_NODE:
            raise InputError(
                f"--devices-per-node must be 1..{MAX_DEVICES_PER_NODE}, got {n}",
                field="devices-per-node",
                value=spec,
            )
        return n
    if not text:
        raise InputError("--devices-per-node is empty (e.g. 4 or v100=4,k80=8)", field="devices-per-node")
    return _parse_counts(text, "devices-per-node", minimum=1, maximum=MAX_DEVICES_PER_NODE, example="v100=4")
