"""The allocation problem every policy solves, and the Allocation it returns.

Notation (used by every policy module):

    j in jobs (n), t in accelerator types (T), g in tenants (G)
    x[j,t]      fraction of wall time job j runs on type t                     (decision, 0..1)
    tput[j,t]   steps/s of job j on type t, whole job at its scale              (0 where unknown)
    scale[j]    devices job j needs at once, all of one type (gang)
    cap[t]      devices of type t in the pool
    allowed[j,t] job j may run on t (catalogue, program rules, constraints already applied)

    every policy returns x with
        sum_t x[j,t] <= 1                       (a job runs on at most one type at a time)
        sum_j x[j,t] * scale[j] <= cap[t]       (capacity)
        x[j,t] = 0 where not allowed[j,t]
    and, where the problem carries them, the program rules:
        sum_{j of tenant g} x[j,t] * scale[j] <= tenant_cap[g,t]             (a cap on all of g's jobs)
        sum_{j in cap group c} x[j,t] * scale[j] <= cap_limit[c,t]          (a program's tenant cap)
    where cap group c = cap_index[j] is one (tenant, program) pair: the jobs a tenant charges to grants of
    one program (cap_index[j] = -1: the job is in no cap group)
        sum_{j not public} x[j,t] * scale[j] <= cap[t] - public_reserve[t]

    Columns of one group (``column_group``: one type held at several sites, core.sites.site_columns) share
    the program rules: each of those rows sums over every column c of the group (their bound, read at any
    of its columns, is the type's), while capacity stays per column:
        sum_{j of tenant g} sum_{c in group} x[j,c] * scale[j] <= tenant_cap[g,c]    (and so on)
        sum_{j not public} sum_{c in group} x[j,c] * scale[j] <= sum_{c in group} cap[c] - public_reserve[c]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from accelpool.core.types import WaitReason

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

FEASIBILITY_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class WarmHint:
    """One max-min-fairness allocation's water-filling stages, for the next round's to start from.

    ``rows``: a key per resource row (kind, types, tenant, ordinal: stable across rounds while the row
    exists); ``stages``: each stage's or ceiling probe's level, row prices (in ``rows`` order) and
    whether a stage gave them, in the order solved (policies/_waterfill.py, Hint). Data
    the caller keeps and passes back (core.rounds.DecideCache), never module state; a start only.
    """

    rows: tuple[Hashable, ...]
    stages: tuple[tuple[float, FloatArray, bool], ...]


@dataclass(frozen=True, eq=False)
class AllocationProblem:
    """Everything a policy needs, as arrays indexed by job (rows) and accelerator type (columns).

    Money: ``price_krw_per_hour[t]`` is KRW per device-hour (integers); ``budget_krw[j]`` is what the job's
    grant has left (``-1``: no grant limit). Time: ``remaining_steps[j]`` and ``time_to_deadline[j]`` (s,
    ``inf`` when none) serve deadline-aware policies; ``horizon_seconds`` is how long the allocation is meant
    to hold (the round, or a planning window). ``per_device_levels``: max-min levels count devices
    (``RoundConfig.per_device_levels``).

    Fairness: ``fair_weight[j]`` is job j's weight in the policies that share fairly (fair-share,
    max-min-fairness, finish-time-fairness). With ``fairness`` "tenant" it is the job's part of the
    hierarchical shares program -> tenant -> job (core.problem); with "job" (or when not given) it is the
    job's own ``weight``. ``weight`` itself stays the job's own (max-throughput weighs throughput by it).
    """

    job_ids: tuple[str, ...]
    types: tuple[str, ...]
    capacity: FloatArray
    scale: FloatArray
    weight: FloatArray
    throughput: FloatArray
    allowed: BoolArray
    tenant_ids: tuple[str, ...] = ()
    tenant_index: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tenant_weight: FloatArray = field(default_factory=lambda: np.ones(0))
    quota: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    tenant_cap: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    cap_index: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cap_limit: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    public: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    public_reserve: FloatArray = field(default_factory=lambda: np.zeros(0))
    priority: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    submit_time: FloatArray = field(default_factory=lambda: np.zeros(0))
    price_krw_per_hour: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    budget_krw: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    remaining_steps: FloatArray = field(default_factory=lambda: np.zeros(0))
    time_to_deadline: FloatArray = field(default_factory=lambda: np.zeros(0))
    horizon_seconds: float = 360.0
    per_device_levels: bool = True
    fair_weight: FloatArray = field(default_factory=lambda: np.zeros(0))
    fairness: str = "tenant"
    column_group: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Column -> group (a type held at several sites is one group of per-site columns sharing the program
    rules, see the module notation). Default: every column its own group."""
    warm_hint: WarmHint | None = None
    """A previous allocation's ``Allocation.warm_hint`` (max-min-fairness: every water-filling stage's
    level and row prices, the rows named), passed in by the caller that keeps it, as ``warm_start``: it
    chooses where each stage's and ceiling probe's master starts, and its probes' prices may refuse a probe
    or narrow a ceiling search by weak duality (proofs at any prices). So the stage-1 level is the same;
    every stage is its LP's optimum, but where the stage limit or work budget stops may move, and later
    levels may differ from a cold run's (a review's 120 cases of random_rules, eps 0: 14 differed, 13
    higher, 1 lower; equal with no stop). Rows gone since are dropped, new rows start at price 0. Ignored
    by the other policies."""
    warm_start: tuple[float, ...] = ()
    """A previous allocation's ``Allocation.warm_start`` (max-min-fairness: a level and one price per
    resource row), passed in by the caller that keeps it (the core keeps none). It only chooses the plans
    the first column-generation masters start from: every stage still ends on its own LP duals, so the
    stage-1 level is the same with or without it (later stages may freeze other jobs where an LP has
    several optimal duals). Ignored when the row count differs, and by the other policies."""
    keep_type: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per job, the column of the type it runs on and would keep (-1: none), passed in by the caller
    (core.rounds under leases); empty: none. max-min-fairness then picks, among the allocations that give
    every job at least its water-filling level, one that keeps the most running devices on the types they
    hold (a tie-break on the optimal face: the levels are the same). Ignored by the other policies."""

    def __post_init__(self) -> None:
        n, tt = len(self.job_ids), len(self.types)
        defaults: dict[str, object] = {}
        if len(self.tenant_ids) == 0:
            defaults["tenant_ids"] = ("default",)
            defaults["tenant_index"] = np.zeros(n, dtype=np.int64)
        g = len(defaults.get("tenant_ids", self.tenant_ids))  # type: ignore[arg-type]
        fill: dict[str, Callable[[], np.ndarray]] = {  # built only for fields left empty
            "tenant_weight": lambda: np.ones(g),
            "quota": lambda: np.zeros((g, tt)),
            "tenant_cap": lambda: np.full((g, tt), np.inf),
            "cap_index": lambda: np.full(n, -1, dtype=np.int64),
            "public": lambda: np.zeros(n, dtype=bool),
            "public_reserve": lambda: np.zeros(tt),
            "priority": lambda: np.zeros(n, dtype=np.int64),
            "submit_time": lambda: np.zeros(n),
            "price_krw_per_hour": lambda: np.zeros(tt, dtype=np.int64),
            "budget_krw": lambda: np.full(n, -1, dtype=np.int64),
            "remaining_steps": lambda: np.full(n, np.inf),
            "time_to_deadline": lambda: np.full(n, np.inf),
            "fair_weight": lambda: np.asarray(self.weight, dtype=np.float64),
            "column_group": lambda: np.arange(tt, dtype=np.int64),
        }
        for name, make in fill.items():
            current = getattr(self, name)
            if np.size(current) == 0:
                value = make()
                if np.shape(current) != np.shape(value):
                    defaults[name] = value
        for name, default in defaults.items():
            object.__setattr__(self, name, default)
        if np.size(self.cap_limit) == 0 and np.shape(self.cap_limit) != (0, tt):
            object.__setattr__(self, "cap_limit", np.zeros((0, tt)))
        for name, shape in (
            ("capacity", (tt,)),
            ("scale", (n,)),
            ("weight", (n,)),
            ("throughput", (n, tt)),
            ("allowed", (n, tt)),
            ("cap_index", (n,)),
            ("column_group", (tt,)),
        ):
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"{name} has shape {np.shape(getattr(self, name))}, expected {shape}")
        groups = self.cap_limit.shape[0]
        if self.cap_limit.shape[1:] != (tt,) or (n and int(self.cap_index.max(initial=-1)) >= groups):
            raise ValueError(f"cap_limit has shape {self.cap_limit.shape}; cap_index must be below {groups}")
        if np.size(self.keep_type) and np.shape(self.keep_type) != (n,):
            raise ValueError(f"keep_type has shape {np.shape(self.keep_type)}, expected (0,) or {(n,)}")

    @property
    def n_jobs(self) -> int:
        return len(self.job_ids)

    @property
    def n_types(self) -> int:
        return len(self.types)

    def groups(self) -> list[IntArray]:
        """The columns of each group, in order of their first column (each column alone by default)."""
        _, first, inverse = np.unique(self.column_group, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        return [np.nonzero(inverse == k)[0].astype(np.int64) for k in np.argsort(first, kind="stable")]

    def grouped(self) -> bool:
        """Some group has several columns (program rules span columns)."""
        return len(np.unique(self.column_group)) < self.n_types

    def without_money(self, rows: list[int]) -> AllocationProblem:
        """This problem with the budgets of jobs ``rows`` at 0: no policy gives them a share and
        ``blocked_reasons`` calls them blocked (jobs that cannot be paid for as things stand)."""
        money = self.budget_krw.copy()
        money[np.asarray(rows, dtype=np.int64)] = 0
        return dataclasses.replace(self, budget_krw=money)

    def usable(self) -> BoolArray:
        """allowed, with a positive throughput, and the job fits in the type's capacity at all."""
        fits = self.scale[:, None] <= self.capacity[None, :] + FEASIBILITY_TOLERANCE
        return self.allowed & (self.throughput > 0) & fits


@dataclass(frozen=True, eq=False)
class Allocation:
    """``x[j, t]``: the fraction of wall time job j should run on type t. ``held`` says why a job gets 0."""

    job_ids: tuple[str, ...]
    types: tuple[str, ...]
    x: FloatArray
    policy: str
    objective: float = 0.0
    solve_seconds: float = 0.0
    held: Mapping[str, WaitReason] = field(default_factory=dict)
    warm_start: tuple[float, ...] = ()
    """What the next round's problem may carry as ``AllocationProblem.warm_start`` (max-min-fairness:
    the level and row prices of its first stage with prices not all 0; empty otherwise)."""
    warm_hint: WarmHint | None = None
    """What the next round's problem may carry as ``AllocationProblem.warm_hint`` (max-min-fairness)."""

    def effective_throughput(self, throughput: FloatArray) -> FloatArray:
        """steps/s each job gets on average: sum_t x[j,t] * tput[j,t]."""
        return np.asarray((self.x * throughput).sum(axis=1), dtype=np.float64)

    def as_dict(self, threshold: float = 1e-9) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        rows, cols = np.nonzero(self.x > threshold)
        for i, k in zip(rows.tolist(), cols.tolist(), strict=True):
            out.setdefault(self.job_ids[i], {})[self.types[k]] = float(self.x[i, k])
        for job in self.job_ids:
            out.setdefault(job, {})
        return out


Policy = Callable[[AllocationProblem], Allocation]


def check_feasible(problem: AllocationProblem, alloc: Allocation, tol: float = 1e-6) -> list[str]:
    """Every way ``alloc`` breaks the invariants above (empty list: feasible). Used by tests and guards."""
    x = alloc.x
    errors: list[str] = []
    if x.shape != (problem.n_jobs, problem.n_types):
        return [f"x has shape {x.shape}"]
    if np.any(x < -tol):
        errors.append("negative fraction")
    if np.any(x.sum(axis=1) > 1 + tol):
        errors.append("a job gets more than all of its time")
    if np.any((x > tol) & ~problem.allowed):
        errors.append("a job runs on a type it may not use")
    used = (x * problem.scale[:, None]).sum(axis=0)
    if np.any(used > problem.capacity + tol * np.maximum(1.0, problem.capacity)):
        errors.append(f"capacity exceeded: used {used.round(6).tolist()} > {problem.capacity.tolist()}")
    if problem.grouped():  # program rules bind each group's sum: check them on the summed problem
        problem, x = _summed(problem, x)
    return errors + _rule_errors(problem, x, tol)


def _rule_errors(problem: AllocationProblem, x: FloatArray, tol: float) -> list[str]:
    errors: list[str] = []
    g = len(problem.tenant_ids)
    per_tenant = np.zeros((g, problem.n_types))
    np.add.at(per_tenant, problem.tenant_index, x * problem.scale[:, None])
    if np.any(per_tenant > problem.tenant_cap + tol * np.maximum(1.0, problem.capacity)):
        errors.append("a tenant cap is exceeded")
    grouped = problem.cap_index >= 0
    per_group = np.zeros(problem.cap_limit.shape)
    np.add.at(per_group, problem.cap_index[grouped], (x * problem.scale[:, None])[grouped])
    if np.any(per_group > problem.cap_limit + tol * np.maximum(1.0, problem.capacity)):
        errors.append("a program's tenant cap is exceeded")
    private = (x[~problem.public] * problem.scale[~problem.public, None]).sum(axis=0)
    if np.any(private > problem.capacity - problem.public_reserve + tol * np.maximum(1.0, problem.capacity)):
        errors.append("the public-use reserve is taken by non-public jobs")
    return errors


def _summed(problem: AllocationProblem, x: FloatArray) -> tuple[AllocationProblem, FloatArray]:
    """``problem`` and ``x`` with each column group summed into one column (rules read at its first
    column, capacity summed): what the program rules of a grouped problem bind."""
    groups = problem.groups()
    first = np.array([g[0] for g in groups], dtype=np.int64)
    x = np.stack([x[:, g].sum(axis=1) for g in groups], axis=1).reshape(problem.n_jobs, len(groups))
    cap = np.array([problem.capacity[g].sum() for g in groups])
    one = AllocationProblem(
        job_ids=problem.job_ids,
        types=tuple(problem.types[c] for c in first.tolist()),
        capacity=cap,
        scale=problem.scale,
        weight=problem.weight,
        throughput=problem.throughput[:, first],
        allowed=np.stack([problem.allowed[:, g].any(axis=1) for g in groups], axis=1).reshape(x.shape),
        tenant_ids=problem.tenant_ids,
        tenant_index=problem.tenant_index,
        tenant_weight=problem.tenant_weight,
        quota=problem.quota[:, first],
        tenant_cap=problem.tenant_cap[:, first],
        cap_index=problem.cap_index,
        cap_limit=problem.cap_limit[:, first],
        public=problem.public,
        public_reserve=problem.public_reserve[first],
    )
    return one, x
