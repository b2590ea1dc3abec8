"""Workload: what a simulation replays (jobs, their throughputs, the pool, tenants, programs, grants, prices).

Every trace reader returns one. Units: seconds, devices, steps/s, integer KRW per device-hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from accelpool.core.errors import InputError
from accelpool.core.types import AcceleratorType, Cluster, Grant, Job, Program, Tenant


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

    def capacity(self) -> dict[str, int]:
        return self.cluster.capacity()


def parse_cluster(spec: str) -> dict[str, int]:
    """``"v100=36,p100=36,k80=36"`` -> ``{"v100": 36, ...}`` (devices per type)."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, sep, count = part.partition("=")
        if not sep or not name.strip():
            raise InputError(
                f"cluster entry {part!r} is not TYPE=COUNT (e.g. v100=36)", field="cluster", value=spec
            )
        try:
            n = int(count)
        except ValueError:
            raise InputError(
                f"device count {count!r} for {name!r} is not an integer", field="cluster"
            ) from None
        if n < 0:
            raise InputError(f"device count for {name!r} must be >= 0, got {n}", field="cluster")
        out[name.strip().lower()] = out.get(name.strip().lower(), 0) + n
    if not out:
        raise InputError(
            "empty cluster spec (expected e.g. v100=36,p100=36,k80=36)", field="cluster", value=spec
        )
    return out


def parse_devices_per_node(spec: str | int | None, default: int = 8) -> int | dict[str, int]:
    """``4`` or ``"v100=4,p100=4,k80=8"`` (types not named get ``default``)."""
    if spec is None:
        return default
    if isinstance(spec, int):
        return spec
    if spec.strip().isdigit():
        return int(spec)
    return parse_cluster(spec)
