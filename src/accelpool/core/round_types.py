"""The data one scheduling round reads and writes: a job's placement, its status, the snapshot the round
decides on, the decision it takes, and the KRW of a lease. ``core/rounds.py`` decides (and re-exports these
names, which the ports, stores and executors import from there)."""

from __future__ import annotations

import functools
import itertools
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TypeVar

from accelpool.core.allocation import Allocation
from accelpool.core.reasons import QueueView
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import (
    DEFAULT_SITE,
    AcceleratorType,
    Grant,
    Job,
    JobState,
    Node,
    Program,
    Site,
    Tenant,
    WaitReason,
)


@dataclass(frozen=True)
class Placement:
    """Where a job runs: one accelerator type, specific devices on one or more nodes of one site."""

    job: str
    accelerator: str
    devices: tuple[tuple[str, tuple[int, ...]], ...]
    site: str = DEFAULT_SITE

    @functools.cached_property
    def count(self) -> int:
        return sum(len(d) for _, d in self.devices)

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.devices)


@dataclass(frozen=True)
class JobStatus:
    """A job as the scheduler sees it in a snapshot."""

    job: Job
    state: JobState
    placement: Placement | None = None
    steps_done: float = 0.0
    seconds_on: Mapping[str, float] = field(default_factory=dict)
    metered_until: float | None = None  # billed up to here; None while its process has not started
    carry: Fraction = Fraction(0)  # exact KRW metered but not yet billed (under 1 KRW; core.ledger)
    attempt_started: float | None = None  # the current run's STARTED, until its first progress report
    restart_measured: float | None = None  # s from STARTED to the first progress report, last measured


def changed_since(statuses: Sequence[JobStatus], seen: Sequence[JobStatus | None]) -> list[int]:
    """Indices of the statuses that are other objects than ``seen``'s at the same index (a JobStatus is
    frozen: the same object is the same status). The round's caches re-read only these."""
    if len(statuses) != len(seen):
        raise ValueError(f"changed_since: {len(statuses)} statuses against {len(seen)} seen")
    return list(itertools.compress(range(len(statuses)), map(operator.is_not, statuses, seen)))


T = TypeVar("T")


def rows_in(old: Sequence[str], new: Sequence[str]) -> list[int]:
    """Per id of ``new``, its index in ``old`` (-1: not there), by one dict and C-level maps."""
    prev = dict(zip(old, range(len(old)), strict=True))
    return list(map(prev.get, new, itertools.repeat(-1, len(new))))


def at_rows(items: Sequence[T], take: list[int]) -> list[T]:
    """``items[k]`` for each k of ``take`` (-1: ``items``' last, a stand-in the caller overwrites or
    compares by identity); ``items`` must not be empty when ``take`` is not."""
    if len(take) >= 2:
        return list(operator.itemgetter(*take)(items))
    return [items[k] for k in take]


class ChangeMemo:
    """``changed_since``, answered once per pair of lists: the round's three caches (the problem cache,
    ``core.placement._holding``, ``core.ranking._job_rows``) each keep the last round's list of statuses
    itself (never changed once built), so in a round where all three ran the round before they ask the
    same question of the same two lists. Keyed by the lists' identities, holding them (so an identity is
    never reused by another list); callers only read the answer."""

    __slots__ = ("changed", "seen", "statuses")

    def __init__(self) -> None:
        self.statuses: Sequence[JobStatus] | None = None
        self.seen: Sequence[JobStatus | None] | None = None
        self.changed: list[int] = []

    def __call__(self, statuses: Sequence[JobStatus], seen: Sequence[JobStatus | None]) -> list[int]:
        if statuses is self.statuses and seen is self.seen:
            return self.changed
        got = changed_since(statuses, seen)
        self.statuses, self.seen, self.changed = statuses, seen, got
        return got

    def tell(
        self, statuses: Sequence[JobStatus], seen: Sequence[JobStatus | None], changed: list[int]
    ) -> None:
        """Record ``changed`` as the answer for the two lists (the caller computed it, e.g. from two lists
        equal to these item by item)."""
        self.statuses, self.seen, self.changed = statuses, seen, changed


@dataclass(frozen=True)
class Snapshot:
    """Immutable facts for one round. ``nodes`` are the healthy nodes only.

    Lease facts (the Reconciler fills them in): ``lease_boundary`` says whether this round may preempt;
    ``run_started[j]`` is when running job j's current run began (a running job without an entry counts as
    past every minimum run time); ``lease_end`` is when the current lease ends (for wait reasons).
    ``nodes_down``: nodes out of service (drained or lost), for wait reasons only."""

    now: float
    nodes: tuple[Node, ...]
    jobs: tuple[JobStatus, ...]
    throughput: ThroughputMatrix
    accelerators: Mapping[str, AcceleratorType] = field(default_factory=dict)
    tenants: tuple[Tenant, ...] = ()
    programs: tuple[Program, ...] = ()
    grants: tuple[Grant, ...] = ()
    prices_krw_per_hour: Mapping[str, int] = field(default_factory=dict)
    round_seconds: float = 360.0
    lease_boundary: bool = True
    run_started: Mapping[str, float] = field(default_factory=dict)
    lease_end: float | None = None
    sites: tuple[Site, ...] = ()
    nodes_down: tuple[Node, ...] = ()
    down_causes: Mapping[str, str] = field(default_factory=dict)  # node -> "drained" / "lost" (wait reasons)


@dataclass(frozen=True)
class Decision:
    """What a round decided. ``preempt`` pairs a running job with the reason it must stop."""

    now: float
    allocation: Allocation
    start: tuple[Placement, ...] = ()
    keep: tuple[Placement, ...] = ()
    preempt: tuple[tuple[str, str], ...] = ()
    waiting: Mapping[str, WaitReason] = field(default_factory=dict)
    positions: Mapping[str, int] = field(default_factory=dict)
    boundary: bool = True
    details: Mapping[str, str] = field(default_factory=dict)
    """Each waiting job's reason in words with its numbers (``core.reasons.explain``)."""
    queue: QueueView = field(default_factory=QueueView)
    """The queue in fair order: each queued job's position in the pool and in its tenant, and its
    estimated start range (``core.reasons.QueueView``, ``core.estimates``; blocked jobs have no place)."""

    def placements(self) -> tuple[Placement, ...]:
        return self.keep + self.start


def round_cost_krw(devices: int, price_krw_per_hour: int, seconds: float) -> int:
    """KRW for ``devices`` of a type for ``seconds`` (rounded up: a grant is never under-reserved).

    Exact: integer arithmetic, with the seconds taken as their shortest decimal form (0.1 s is 1/10 s)."""
    if float(seconds).is_integer():
        return -(-int(devices) * int(price_krw_per_hour) * int(seconds) // 3600)
    return math.ceil(int(devices) * int(price_krw_per_hour) * Fraction(repr(float(seconds))) / 3600)
