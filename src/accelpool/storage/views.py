"""Read models the API returns: plain frozen values built from rows inside storage/."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accelpool.core.types import JobState


@dataclass(frozen=True)
class JobView:
    id: str
    seq: int
    tenant: str
    name: str
    state: JobState
    reason: str
    position: int | None
    placement: dict[str, Any] | None
    steps_done: float
    submit_time: float
    start_time: float | None
    end_time: float | None
    preemptions: int
    attempts: int
    spec: dict[str, Any]
    run: dict[str, Any]
    reserved_krw: int = 0
    charged_krw: int | None = None

    @property
    def grant(self) -> str | None:
        g = self.spec.get("grant")
        return None if g is None else str(g)


@dataclass(frozen=True)
class JobEvent:
    time: float
    state: str
    reason: str


@dataclass(frozen=True)
class TokenView:
    id: str
    name: str
    role: str
    tenant: str | None
    program: str | None
    created: float
    revoked: bool


@dataclass(frozen=True)
class NodeView:
    name: str
    accelerator: str
    devices: int
    zone: str
    down: bool
    labels: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class UsageRow:
    """Device-hours and KRW for one group (the keys that were grouped on; others are None)."""

    tenant: str | None
    program: str | None
    accelerator: str | None
    period: str | None
    jobs: int
    device_hours: float
    krw: int
