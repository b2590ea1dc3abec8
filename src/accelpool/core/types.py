"""Frozen domain values shared by every part of accelpool.

Units, everywhere: time in seconds, capacity in devices, speed in steps/s, money in integer KRW.
Nothing here does I/O; every value is immutable and hashable where it can be.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType

KRW = int
"""Money: integer Korean won. Never a float."""


def frozen_map(items: Mapping[str, object] | None = None) -> Mapping[str, object]:
    """A read-only view of a copy of ``items`` (a frozen mapping for frozen dataclasses)."""
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True)
class AcceleratorType:
    """One kind of accelerator device, as the catalogue describes it.

    ``id`` is the short name used everywhere in specs and on the CLI (``h100``, ``rngd``). Figures that no
    source published are ``None``: they stay unknown and are never guessed.
    """

    id: str
    name: str
    vendor: str
    country: str
    memory_gb: float | None = None
    memory_bw_gbps: float | None = None
    bf16_tflops_dense: float | None = None
    fp8_tflops_dense: float | None = None
    int8_tops_dense: float | None = None
    tdp_w: float | None = None
    training_capable: bool = True
    k8s_resource: str | None = None
    ray_resource: str | None = "GPU"
    visible_devices_env: str = "CUDA_VISIBLE_DEVICES"
    family: str = "gpu"
    aliases: tuple[str, ...] = ()
    release_year: int | None = None
    confidence: str = "medium"
    sources: tuple[str, ...] = ()
    notes: str = ""

    @property
    def domestic(self) -> bool:
        """True for accelerators designed by Korean companies (the programs' "domestic NPU")."""
        return self.country.upper() == "KR"


DATA_CLASSES = ("public", "personal", "financial", "public-sector")
"""Data classes a site may be certified for and a job may declare (``data_class``)."""

DEFAULT_SITE = "default"
"""The site of nodes registered without one (a pool that predates sites has only this site)."""


@dataclass(frozen=True)
class Site:
    """One operator's cluster in the pool: where it is, which data it may hold, how it is driven, its prices.

    ``data_classes``: the data classes it is certified for (see DATA_CLASSES). ``prices``: KRW per
    device-hour by accelerator type at this site (types not listed cost the pool's price). ``down``: out of
    the pool (its nodes leave it until it returns): its controller does not answer, or an operator took it
    out. ``down_by`` (who), ``down_at`` (unix seconds) and ``down_reason``: an operator's hand; while
    ``down_by`` is set the site stays down whatever its health (only the operator brings it up).
    ``executor`` (local, ray, slurm, fake) and ``connection`` (e.g. a Ray address or a slurm.conf path)
    tell the service how to drive it.
    """

    id: str
    operator: str = ""
    region: str = ""
    data_classes: frozenset[str] = frozenset({"public"})
    executor: str = "local"
    connection: Mapping[str, str] = field(default_factory=dict)
    prices: Mapping[str, int] = field(default_factory=dict)
    down: bool = False
    down_by: str = ""
    down_at: float | None = None
    down_reason: str = ""

    @property
    def held(self) -> bool:
        """Taken out by an operator (not by its health): stays down until an operator brings it up."""
        return bool(self.down_by)


@dataclass(frozen=True)
class Node:
    """A machine in the pool holding ``devices`` accelerators of one type, at one site."""

    name: str
    accelerator: str
    devices: int
    zone: str = "default"
    labels: tuple[tuple[str, str], ...] = ()
    site: str = DEFAULT_SITE

    def __post_init__(self) -> None:
        if self.devices < 0:
            raise ValueError(f"node {self.name!r}: devices must be >= 0, got {self.devices}")


@dataclass(frozen=True)
class Cluster:
    """The pool: its nodes. Capacity per accelerator type is derived, never stored twice."""

    nodes: tuple[Node, ...]

    def capacity(self) -> dict[str, int]:
        """Devices per accelerator type, summed over nodes."""
        cap: dict[str, int] = {}
        for node in self.nodes:
            cap[node.accelerator] = cap.get(node.accelerator, 0) + node.devices
        return cap

    def largest_node(self) -> dict[str, int]:
        """The biggest single node per type (devices)."""
        big: dict[str, int] = {}
        for node in self.nodes:
            big[node.accelerator] = max(big.get(node.accelerator, 0), node.devices)
        return big

    @staticmethod
    def uniform(capacity: Mapping[str, int], devices_per_node: int | Mapping[str, int] = 8) -> Cluster:
        """A cluster of equal nodes per type, e.g. ``{"v100": 36}`` with 4 per node -> 9 nodes."""
        nodes: list[Node] = []
        for acc, total in sorted(capacity.items()):
            per = devices_per_node if isinstance(devices_per_node, int) else devices_per_node.get(acc, 8)
            per = max(1, per)
            full, rest = divmod(total, per)
            sizes = [per] * full + ([rest] if rest else [])
            nodes += [Node(f"{acc}-{i:04d}", acc, n) for i, n in enumerate(sizes)]
        return Cluster(tuple(nodes))


class JobKind(enum.StrEnum):
    TRAINING = "training"
    FINETUNING = "finetuning"
    INFERENCE = "inference"
    BATCH = "batch"


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PREEMPTED = "preempted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class WaitReason(enum.StrEnum):
    """Why a job is not running (Slurm's pending reasons, in our words)."""

    CAPACITY = "capacity"
    QUOTA = "quota"
    BUDGET = "budget"
    RULE = "rule"
    GANG = "gang"
    PRIORITY = "priority"
    NOT_RUNNABLE = "not-runnable"
    SHARE = "fair-share"


@dataclass(frozen=True)
class Tenant:
    """A company, startup, university or public institution using the pool.

    ``quota`` is the guaranteed devices per type; idle capacity beyond it may be lent and is reclaimed
    when another tenant needs its own quota. ``weight`` scales the tenant's fair share.
    """

    id: str
    name: str = ""
    weight: float = 1.0
    quota: Mapping[str, int] = field(default_factory=dict)
    public: bool = False


@dataclass(frozen=True)
class ProgramRules:
    """Rules that come with a program's money, applied as constraints on top of any policy.

    - ``public_share``: fraction of each type's devices kept for public-program jobs whenever they have
      demand for it (``{"*": 0.3}`` means 30% of every type).
    - ``public_services_domestic_only``: public inference services must run on domestic (Korean) NPUs.
    - ``tenant_caps``: most devices of a type any one tenant of the program may hold at once.
    - ``max_contract_seconds``: longest a grant may last.
    - ``min_run_seconds``: a preemptible job charged to the program runs at least this long before it may
      be preempted (the operator's ``RoundConfig.min_run_seconds`` applies when it is larger).
    - ``weight``: the program's weight in the pool's top level of fair shares (program -> tenant -> job).
    """

    public_share: Mapping[str, float] = field(default_factory=dict)
    public_services_domestic_only: bool = False
    tenant_caps: Mapping[str, int] = field(default_factory=dict)
    max_contract_seconds: float | None = None
    min_run_seconds: float | None = None
    weight: float = 1.0

    def share_for(self, accelerator: str) -> float:
        return float(self.public_share.get(accelerator, self.public_share.get("*", 0.0)))

    def cap_for(self, accelerator: str) -> int | None:
        cap = self.tenant_caps.get(accelerator, self.tenant_caps.get("*"))
        return None if cap is None else int(cap)


@dataclass(frozen=True)
class Program:
    """A funding program (e.g. a national GPU support program) with a budget in KRW over a period."""

    id: str
    name: str
    budget_krw: KRW
    start: float = 0.0
    end: float | None = None
    public: bool = True
    rules: ProgramRules = field(default_factory=ProgramRules)


@dataclass(frozen=True)
class Grant:
    """Money a program gives a tenant. ``spent_krw`` never exceeds ``amount_krw``."""

    id: str
    program: str
    tenant: str
    amount_krw: KRW
    spent_krw: KRW = 0
    start: float = 0.0
    end: float | None = None

    @property
    def remaining_krw(self) -> KRW:
        return self.amount_krw - self.spent_krw


FASTER_TYPE = ("cost-neutral", "any", "never")
"""The values of ``Job.faster_type`` (job spec ``faster_type``), the default first."""


@dataclass(frozen=True)
class Job:
    """A unit of work a tenant submits.

    ``scale`` devices, all of one type, start together (gang). ``allowed`` limits the types (empty: any
    type the throughput matrix knows). ``total_steps`` is the work; with throughput in steps/s it gives
    the run time. ``deadline`` is absolute (seconds on the pool's clock) or None. ``data_class`` (one of
    DATA_CLASSES) limits it to sites certified for that class; ``sites`` / ``regions`` (empty: any) limit it
    further, and ``with_image`` to sites whose executor runs images (not Slurm) (core/sites.py).

    ``preemptible``: the job checkpoints and may be stopped at a lease boundary and resumed later (see
    docs/scheduling.md). A job that is not (the default), once started, runs until it ends, reaches
    ``max_run_seconds``, is cancelled, loses its node or an operator drains it. Inference jobs are never
    time-sliced, whatever they declare.
    """

    id: str
    tenant: str = "default"
    kind: JobKind = JobKind.TRAINING
    scale: int = 1
    allowed: frozenset[str] = frozenset()
    domestic_only: bool = False
    min_memory_gb: float | None = None
    zone: str | None = None
    priority: int = 0
    weight: float = 1.0
    deadline: float | None = None
    grant: str | None = None
    public: bool = False
    total_steps: float | None = None
    submit_time: float = 0.0
    max_run_seconds: float | None = None
    job_type: str = ""
    preemptible: bool = False
    restart_seconds: float | None = None  # declared restart cost (s); None: measured, else the default
    data_class: str = "public"
    sites: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    with_image: bool = (
        False  # runs in an OCI image (spec ``image:``): only at sites whose executor runs images
    )
    faster_type: str = "cost-neutral"
    """Whether the round may put it on a type faster for it than the one the policy chose (move-up, the
    back-fill; core/backfill.py): "cost-neutral" (the default) only where its KRW per step (price per
    device-hour over its speed) is not higher; "any" whatever it costs; "never" not at all (FASTER_TYPE)."""

    @property
    def time_sliced(self) -> bool:
        """May a policy stop it to give its devices to another job (preemptible and not inference)?"""
        return self.preemptible and self.kind is not JobKind.INFERENCE

    def __post_init__(self) -> None:
        if self.scale < 1:
            raise ValueError(f"job {self.id!r}: scale must be >= 1 device, got {self.scale}")
        if self.faster_type not in FASTER_TYPE:
            raise ValueError(f"job {self.id!r}: faster_type must be one of {', '.join(FASTER_TYPE)}")
        if not self.weight > 0:
            raise ValueError(f"job {self.id!r}: weight must be > 0, got {self.weight}")


@dataclass(frozen=True)
class Price:
    """Price of one device-hour of an accelerator type, in KRW."""

    accelerator: str
    krw_per_device_hour: KRW


@dataclass(frozen=True)
class Charge:
    """Money owed for usage: ``device_seconds`` on ``accelerator`` at ``site`` billed to ``grant``."""

    job: str
    tenant: str
    grant: str | None
    accelerator: str
    device_seconds: float
    amount_krw: KRW
    start: float
    end: float
    carry: Fraction | None = None  # the job's exact KRW metered but not yet billed after this charge
    site: str = DEFAULT_SITE
