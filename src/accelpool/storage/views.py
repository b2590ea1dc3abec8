"""Read models the API returns: plain frozen values built from rows inside storage/."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accelpool.core.reasons import QueueSpot
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
    queue: QueueSpot | None = None  # a queued job's place in the fair order and its estimated start range

    @property
    def grant(self) -> str | None:
        g = self.spec.get("grant")
        return None if g is None else str(g)


@dataclass(frozen=True)
class JobEvent:
    time: float
    state: str
    reason: str
    cause: str | None = None  # core.lifecycle.StopCause, on a line that ends a run


@dataclass(frozen=True)
class TokenView:
    id: str
    name: str
    role: str
    tenant: str | None
    program: str | None
    created: float
    revoked: bool
    expires: float | None = None  # epoch seconds; None: never


@dataclass(frozen=True)
class NodeView:
    name: str
    accelerator: str
    devices: int
    zone: str
    down: bool
    labels: list[list[str]] = field(default_factory=list)
    site: str = "default"


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
    site: str | None = None


def row_view(r: Any, charged: int | None = None) -> JobView:
    """A JobView from a jobs row (a Row, or the dict a submission inserts; ``seq`` 0 when not known)."""
    d: dict[str, Any] = r if isinstance(r, dict) else r._asdict()

    def g(k: str) -> Any:
        return d.get(k)

    return JobView(
        id=g("id"),
        seq=int(g("seq") or 0),
        tenant=g("tenant"),
        name=g("name"),
        state=JobState(g("state")),
        reason=g("reason"),
        position=g("position"),
        placement=g("placement"),
        steps_done=float(g("steps_done")),
        submit_time=float(g("submit_time")),
        start_time=g("start_time"),
        end_time=g("end_time"),
        preemptions=int(g("preemptions")),
        attempts=int(g("attempts")),
        spec=dict(g("spec")),
        run=dict(g("run")),
        reserved_krw=int(g("reserved_krw")),
        charged_krw=charged,
        queue=g("queue"),
    )
