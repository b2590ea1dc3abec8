"""Queue order and wait reasons in words, with the numbers behind them.

Fair order (the order idle devices are handed out in, and the queue positions users see):

    key_j = (D_g + A_j) / W_g      for job j of tenant g
    D_g   devices tenant g's jobs hold now
    A_j   devices asked for by g's waiting jobs ahead of j in g's own order (priority, submit time, id)
    W_g   tenant g's effective weight: the sum of its jobs' fair weights (program -> tenant -> job shares,
          see core.problem); with per-job fairness every key is 0 (order: priority, then submit time)

    order: priority field (high first), then key_j, then submit time, then id.

This is start-time fair queueing over devices: a tenant's k jobs of one device each queue exactly as one
job of k devices would, so splitting work gains nothing; the priority field is the only thing that jumps
the queue. A job that cannot run as things stand (no usable type, or its grant cannot pay for one lease)
is *blocked*: it gets no position.

Each waiting job gets a sentence with numbers (``explain``): the stores keep it as the job's reason, which
the CLI, API and dashboard show.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from accelpool.core.allocation import AllocationProblem
from accelpool.core.types import JobState, WaitReason

if TYPE_CHECKING:
    from accelpool.core.rounds import JobStatus, Snapshot


BLOCKED = "blocked"  # the start of a blocked job's reason (``explain``): it has no position
SUBMITTED = "submitted"  # the reason of a job no round has considered yet: no position either


def ranked(state: str, reason: str) -> bool:
    """Whether a job with this stored state and reason has a place in the queue: queued, considered by a
    round, and not blocked (the stores' reads filter on the same words: ``BLOCKED``, ``SUBMITTED``)."""
    return state == JobState.QUEUED and reason != SUBMITTED and not reason.startswith(BLOCKED)


def fair_order(problem: AllocationProblem, running: np.ndarray, id_rank: np.ndarray) -> np.ndarray:
    """Job indices in fair order (see the module notation); ``running[j]``: job j holds devices now."""
    n = problem.n_jobs
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.zeros(n)
    if problem.fairness == "tenant":
        g = problem.tenant_index
        groups = len(problem.tenant_ids)
        weight = np.bincount(g, weights=np.minimum(problem.scale, problem.fair_weight), minlength=groups)
        held = np.bincount(g, weights=problem.scale * running, minlength=groups)
        inner = np.lexsort((id_rank, problem.submit_time, -problem.priority, g))
        asked = np.where(running, 0.0, problem.scale)[inner]
        ahead = np.cumsum(asked) - asked
        gi = g[inner]
        first = np.ones(n, dtype=bool)
        first[1:] = gi[1:] != gi[:-1]
        offset = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        ahead = ahead - ahead[offset]
        keys[inner] = (held[gi] + ahead) / np.maximum(weight[gi], 1e-300)
    return np.lexsort((id_rank, problem.submit_time, keys, -problem.priority))


def _all_down(missing: list[str], allowed: frozenset[str], snapshot: Snapshot) -> str:
    """``every warboy node is down (2 drained, 2 lost)``, or ``the pool has no warboy node``."""
    names = "/".join(missing)
    causes: dict[str, int] = {}
    for n in snapshot.nodes_down:
        if n.accelerator in allowed:
            c = snapshot.down_causes.get(n.name, "down")
            causes[c] = causes.get(c, 0) + 1
    if not causes:
        return f"the pool has no {names} node"
    order = {"drained": 0, "lost": 1, "down": 2}
    counts = ", ".join(f"{causes[c]} {c}" for c in sorted(causes, key=lambda c: (order.get(c, 3), c)))
    return f"every {names} node is down ({counts})"


def duration_words(s: float) -> str:
    """Seconds in words for reasons and errors: "45 s", "90 min", "2.0 h"."""
    s = max(0.0, s)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _yield_clause(yields: Mapping[str, float] | None, t: str | None) -> str:
    """``; preemptible jobs on h100 may yield at the lease boundary at 14:06 UTC`` (pool clock, UTC)."""
    if not yields or t is None or t not in yields:
        return ""
    at = yields[t]
    if not math.isfinite(at):
        return ""
    day = at % 86400.0
    return f"; preemptible jobs on {t} may yield at the lease boundary at {int(day // 3600):02d}:{int(day % 3600 // 60):02d} UTC"


def explain(
    problem: AllocationProblem,
    statuses: Sequence[JobStatus],
    waiting: Mapping[str, WaitReason],
    blocked: Mapping[str, WaitReason],
    short: Mapping[str, tuple[int, int]],
    snapshot: Snapshot,
    unpaid: Mapping[str, tuple[int, int] | str] | None = None,
    yields: Mapping[str, float] | None = None,
) -> dict[str, str]:
    """A sentence with numbers for every waiting job (job id -> text), led by its reason code.

    ``"<code>: ..."`` for a job in the queue, ``"blocked (<code>): ..."`` for one that cannot run as things
    stand (``unpaid``: a job that is not preemptible whose grant cannot pay its whole max_run_time, job id
    -> (KRW left, KRW of the run; core.placement.whole_runs_unpaid), or whose grant's period ends before
    that run would, job id -> why in words; core.periods.whole_runs_cut_short). The text holds facts that change rarely (what the job needs, its grant's balance against a
    lease's cost, missing node types), not the queue position or free devices of the moment, so a store
    rewrites it only when the facts change; positions come with the decision (``Decision.positions``).
    ``yields``: per type, the lease boundary at which preemptible jobs holding it may yield
    (``core.estimates.yield_boundaries``): a job waiting for devices or for its share on that type says
    when ("preemptible jobs on h100 may yield at the lease boundary at 14:06 UTC"); it changes once a
    lease."""
    if not waiting:
        return {}
    ids = problem.job_ids
    types = problem.types
    usable = problem.usable()
    tput = np.where(usable, problem.throughput, -1.0)
    best = np.argmax(tput, axis=1) if problem.n_types else np.zeros(problem.n_jobs, dtype=np.int64)
    prices = problem.price_krw_per_hour.tolist()
    horizon = problem.horizon_seconds
    grants = {g.id: g.remaining_krw for g in snapshot.grants}
    shut: dict[str, str] = {}  # grants outside their period (core.periods), when a job waits for money
    if WaitReason.BUDGET in waiting.values():
        from accelpool.core.periods import closed_by_id  # it imports round_types, which imports this

        shut = closed_by_id(snapshot)
    healthy = {n.accelerator for n in snapshot.nodes}
    can_run: list[bool] = np.asarray(usable.any(axis=1), dtype=bool).tolist()
    best_list: list[int] = np.asarray(best, dtype=np.int64).tolist()
    index = {j: i for i, j in enumerate(ids)} if len(waiting) < len(ids) // 4 else None
    out: dict[str, str] = {}
    pairs = (
        ((index[j], j, w) for j, w in waiting.items())
        if index is not None
        else ((i, j, w) for i, j in enumerate(ids) if (w := waiting.get(j)) is not None)
    )
    for i, jid, why in pairs:
        job = statuses[i].job
        k = best_list[i]
        runs = can_run[i]
        t = types[k] if runs else "/".join(sorted(job.allowed)) or "a type it runs on"
        need = f"needs {job.scale} x {t}"
        code = str.__str__(why)
        if jid in blocked:
            cut = unpaid.get(jid) if unpaid is not None else None
            if why is WaitReason.BUDGET and cut is not None:
                run = duration_words(job.max_run_seconds or 0.0)
                if isinstance(cut, str):
                    text = (
                        f"{need}; {cut}, before its max_run_time ({run}) would end if it started now (a job "
                        "that may not be stopped starts only when its whole run fits in its grant's period)"
                    )
                else:
                    text = (
                        f"{need}; grant {job.grant} has {cut[0]} KRW left and its max_run_time ({run}) costs at "
                        f"least {cut[1]} KRW, set aside when it starts (it is not preemptible)"
                    )
            elif why is WaitReason.BUDGET and (job.grant or "") in shut:
                text = f"{need}; {shut[job.grant or '']}: it pays for no run now"
            elif why is WaitReason.BUDGET:
                cost = -(-int(job.scale * prices[k] * horizon) // 3600) if runs else 0
                left = grants.get(job.grant or "", 0)
                text = f"{need}; grant {job.grant} has {left} KRW left and a lease ({duration_words(horizon)}) costs {cost} KRW"
            elif why is WaitReason.RULE:
                text = f"{need}; its constraints or its program's rules allow none of the types it runs on"
            else:
                missing = sorted(a for a in job.allowed if a not in healthy)
                if missing and len(missing) == len(job.allowed):
                    text = f"{need}; " + _all_down(missing, job.allowed, snapshot)
                else:
                    text = f"{need}; no node in service can take {job.scale} devices of a type it runs on"
            out[jid] = f"{BLOCKED} ({code}): {text}"
            continue
        if jid in short and (job.grant or "") in shut:
            text = f"{need}; {shut[job.grant or '']}: it pays for no run now"
        elif jid in short:
            left, cost = short[jid]
            if not job.time_sliced and job.max_run_seconds is not None:
                text = (
                    f"{need}; grant {job.grant} has {left} KRW left after what its running jobs set aside, "
                    f"and its max_run_time ({duration_words(job.max_run_seconds)}) costs {cost} KRW, set aside "
                    "when it starts (it is not preemptible)"
                )
            else:
                text = (
                    f"{need}; grant {job.grant} has {left} KRW left after the leases of its running jobs "
                    f"and a lease ({duration_words(horizon)}) costs {cost} KRW"
                )
        elif why is WaitReason.GANG:
            text = f"{need} at once; free devices are spread over too many nodes"
        elif why is WaitReason.QUOTA:
            text = f"{need}; its tenant's quota or cap on {t} is in use"
        elif why is WaitReason.SHARE:
            text = f"{need}; waits for its fair share: jobs that have run less go first, at a lease boundary"
            text += _yield_clause(yields, t if runs else None)
        elif why is WaitReason.PRIORITY:
            text = f"{need}; jobs with a higher priority hold the devices"
        elif why is WaitReason.RULE:  # a program rule (the public reserve) keeps it off free devices
            text = need
        else:
            text = f"{need}; every one is in use" + _yield_clause(yields, t if runs else None)
        out[jid] = f"{code}: {text}"
    return out


class LazyText(Mapping[str, str]):
    """A read-only job id -> text mapping built by ``make`` (pure, on values never changed afterwards)
    the first time it is read, once: ``Decision.details`` of a round whose sentences nobody reads (the
    simulator's) costs nothing."""

    __slots__ = ("_make", "_data")

    def __init__(self, make: Callable[[], dict[str, str]]) -> None:
        self._make: Callable[[], dict[str, str]] | None = make
        self._data: dict[str, str] | None = None

    def _get(self) -> dict[str, str]:
        if self._data is None:
            assert self._make is not None
            self._data, self._make = self._make(), None
        return self._data

    def __getitem__(self, key: str) -> str:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return repr(self._get())


class Positions(Mapping[str, int]):
    """A read-only job id -> queue position mapping (``ids[k]`` is at position k + 1), its dict built the
    first time a job is looked up or the mapping is iterated, once: ``Decision.positions`` of a round whose
    positions nobody reads by job (the simulator's) costs no dict of the whole queue. ``len`` needs none."""

    __slots__ = ("_data", "_ids")

    def __init__(self, ids: tuple[str, ...]) -> None:
        self._ids = ids
        self._data: dict[str, int] | None = None

    def _get(self) -> dict[str, int]:
        if self._data is None:
            self._data = dict(zip(self._ids, range(1, len(self._ids) + 1), strict=True))
        return self._data

    def __getitem__(self, key: str) -> int:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return repr(self._get())

    def find(self, key: str) -> int | None:
        """``get(key)`` without building the dict when it is not built yet (a scan of the ids)."""
        if self._data is not None:
            return self._data.get(key)
        try:
            return self._ids.index(key) + 1
        except ValueError:
            return None


def position_of(positions: Mapping[str, int], key: str) -> int | None:
    """``positions.get(key)``; a lazy Positions is searched rather than built."""
    return positions.find(key) if isinstance(positions, Positions) else positions.get(key)


@dataclass(frozen=True, eq=False)
class QueueView:
    """The queue as the scheduler would hand idle devices out: queued jobs in fair order, blocked jobs left
    out (they have no position). For the job at index k of ``ids``: position k + 1 of ``len(ids)`` in the
    pool, ``tenant_position[k]`` of ``tenant_of[k]`` among its tenant's queued jobs, and its estimated
    start range ``earliest[k]`` .. ``latest[k]`` (seconds on the pool's clock; NaN: unknown; see
    ``estimate_starts``). Arrays, not one object per job: a queue of 10,000 jobs is rebuilt every tick.

    ``starts``: the (earliest, latest) arrays, or a function of no arguments that computes them from the
    round's inputs (pure, on values that are never changed): they are then worked out the first time
    ``earliest``, ``latest``, ``spot`` or ``rows`` is read, once. A reader (a store writing the queue, the
    API) sees the same figures either way; a caller that never reads them (the simulator) does not pay the
    replay of the whole queue every round."""

    ids: tuple[str, ...] = ()
    tenant_position: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tenant_of: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    starts: tuple[np.ndarray, np.ndarray] | Callable[[], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=lambda: (np.zeros(0), np.zeros(0))
    )

    @functools.cached_property
    def _ranges(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.starts
        return s() if callable(s) else s

    @property
    def earliest(self) -> np.ndarray:
        return self._ranges[0]

    @property
    def latest(self) -> np.ndarray:
        return self._ranges[1]

    def __len__(self) -> int:
        return len(self.ids)

    @functools.cached_property
    def index(self) -> dict[str, int]:
        return {j: k for k, j in enumerate(self.ids)}

    def spot(self, job_id: str) -> QueueSpot | None:
        """The job's place and start range, or None when it is not in the queue (running, blocked)."""
        k = self.index.get(job_id)
        if k is None:
            return None
        lo, hi = float(self.earliest[k]), float(self.latest[k])
        return QueueSpot(
            k + 1,
            len(self.ids),
            int(self.tenant_position[k]),
            int(self.tenant_of[k]),
            None if math.isnan(lo) else lo,
            None if math.isnan(hi) else hi,
        )

    def rows(self) -> list[tuple[str, int, int, int, float | None, float | None]]:
        """(job id, position, tenant position, tenant count, earliest, latest) per queued job, in order."""
        lo = [None if math.isnan(x) else x for x in self.earliest.tolist()]
        hi = [None if math.isnan(x) else x for x in self.latest.tolist()]
        return list(
            zip(
                self.ids,
                range(1, len(self.ids) + 1),
                self.tenant_position.tolist(),
                self.tenant_of.tolist(),
                lo,
                hi,
                strict=True,
            )
        )


@dataclass(frozen=True)
class QueueSpot:
    """One queued job's place: ``position`` of ``of`` in the pool, ``tenant_position`` of ``tenant_of`` in
    its tenant, and its estimated start range (None: unknown; ``estimate_starts``)."""

    position: int
    of: int
    tenant_position: int
    tenant_of: int
    earliest: float | None
    latest: float | None

    @property
    def range(self) -> tuple[float | None, float | None]:
        return self.earliest, self.latest


def tenant_ranks(problem: AllocationProblem, queue: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each job of ``queue`` (indices in fair order): its 1-based place among its tenant's jobs in the
    queue, and how many its tenant has there."""
    n = len(queue)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if len(problem.tenant_ids) == 1:  # one tenant: its place is the pool's (the same figures, no sort)
        return np.arange(1, n + 1, dtype=np.int64), np.full(n, n, dtype=np.int64)
    g = problem.tenant_index[queue]
    per = np.bincount(g, minlength=len(problem.tenant_ids))
    by_tenant = np.argsort(g, kind="stable")  # fair order kept inside each tenant
    rank = np.empty(n, dtype=np.int64)
    starts = np.cumsum(per) - per
    rank[by_tenant] = np.arange(n) - starts[g[by_tenant]]
    return rank + 1, per[g]


def estimate_starts(
    problem: AllocationProblem,
    usable: np.ndarray,
    queue: Sequence[int],
    running: Sequence[tuple[int, int, float, float]],
    now: float,
    durations: np.ndarray,
    free: Mapping[int, int],
    max_work: int = 200_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Estimated start ranges (earliest, latest; NaN: unknown) of the jobs in ``queue`` (indices, fair
    order), like ``squeue --start``, by replaying the back-fill:

    ``latest``    the time it starts if every running job and every job ahead of it runs to its
                  ``max_run_time`` (unknown when some devices it needs are held without such a bound);
    ``earliest``  the same, but preemptible jobs yield at their first lease boundary past their minimum
                  run (unknown even then: no bound at all).

    Both assume no node is lost, no job ranked ahead of it arrives and the fair order stays as it is; any
    job may end before its bound, so a job may start before ``earliest``.

    ``running``: (type index, devices, early end, late end) of every job holding devices; ``durations``:
    (queued jobs x 2) early and late run length once started (inf: no bound); ``free``: idle devices per
    type index. At each moment devices come free the replay starts, in fair order, every job that fits on
    a type it runs on, fastest first (the scheduler's back-fill; devices counted per type, not per node).
    Past ``max_work`` job visits the rest is unknown."""
    n = len(queue)
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    if n == 0:
        return lo, hi
    rows = np.asarray(queue, dtype=np.int64)
    scale_q = problem.scale[rows]
    usable_q = usable[rows]
    scale = scale_q.tolist()
    tput = problem.throughput
    n_types = usable.shape[1]
    memo: dict[int, list[int]] = {}

    def types_of(q: int) -> list[int]:
        """The types queued job q runs on, fastest first (worked out when the replay first needs it)."""
        got = memo.get(q)
        if got is None:
            i = int(rows[q])
            ks = np.nonzero(usable[i])[0]
            got = memo[q] = ks[np.argsort(-tput[i, ks], kind="stable")].tolist()
        return got

    for scenario, out in ((0, lo), (1, hi)):
        heap = [(end, k, d) for k, d, *ends in running if math.isfinite(end := ends[scenario])]
        heapq.heapify(heap)
        avail = np.zeros(n_types, dtype=np.int64)
        for k, c in free.items():
            avail[k] = max(0, c)
        left = np.arange(n)
        t = now
        work = 0
        while len(left) and work < max_work:
            # the jobs that fit now (one array operation); taking devices only shrinks this set, so the
            # walk in fair order visits only them
            fit = (usable_q[left] & (scale_q[left, None] <= avail[None, :])).any(axis=1)
            work += 1 + len(left) // 100
            cand = np.nonzero(fit)[0]
            placed = []
            while cand.size and work < max_work:
                # the first job in fair order among those that fit takes its fastest type with room; then
                # only the candidates that still fit stay (taking devices only shrinks the set)
                pos = int(cand[0])
                q = int(left[pos])
                s = scale[q]
                k = next(k for k in types_of(q) if avail[k] >= s)
                avail[k] -= s
                out[q] = t
                end = t + float(durations[q, scenario])
                if end < math.inf:
                    heapq.heappush(heap, (end, k, s))
                placed.append(pos)
                cand = cand[1:]
                lq = left[cand]
                cand = cand[(usable_q[lq] & (scale_q[lq, None] <= avail[None, :])).any(axis=1)]
                work += 1 + len(cand) // 100
            if placed:
                left = np.delete(left, placed)
            if not heap or not len(left):
                break
            t = heap[0][0]
            while heap and heap[0][0] <= t:
                _, k, d = heapq.heappop(heap)
                avail[k] += d
    lo = np.where(np.isnan(lo), hi, lo)
    return lo, hi
