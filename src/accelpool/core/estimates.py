"""The round's queue with estimated start ranges (``Decision.queue``): what a waiting user sees.

``queue_view`` takes the jobs the round leaves queued, in the fair order the back-fill hands idle devices
out in (blocked jobs left out), and gives each its place in the pool and among its tenant's queued jobs
(``core.reasons.tenant_ranks``) and a start range (``core.reasons.estimate_starts``) from the devices held
after the round: a running job holds its devices until ``max_run_time`` after its run began (no bound
without one); in the early case a preemptible one yields at its first lease boundary past its minimum run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from accelpool.core.allocation import AllocationProblem
from accelpool.core.reasons import QueueView, estimate_starts, tenant_ranks
from accelpool.core.round_config import RoundConfig
from accelpool.core.round_types import JobStatus, Placement, Snapshot
from accelpool.core.types import Job

if TYPE_CHECKING:
    from accelpool.core.rounds import DecideCache


def program_min(snapshot: Snapshot, floor: float) -> dict[str, float]:
    """Grant id -> its program's minimum run, where larger than the operator's ``floor``."""
    out: dict[str, float] = {}
    if snapshot.programs:
        by_program = {p.id: p.rules.min_run_seconds for p in snapshot.programs}
        for g in snapshot.grants:
            m = by_program.get(g.program)
            if m is not None and m > floor:
                out[g.id] = m
    return out


def queue_view(
    snapshot: Snapshot,
    statuses: list[JobStatus],
    problem: AllocationProblem,
    usable: np.ndarray,
    queue: np.ndarray,
    held: tuple[list[Placement], list[Placement]],
    lease: float,
    config: RoundConfig,
    cache: DecideCache,
    idle: dict[int, int],
    queue_ids: Sequence[str] | None = None,
) -> QueueView:
    """The queued jobs ``queue`` (indices in fair order) with their places and start ranges; ``held``: the
    round's kept and started placements; ``idle``: free devices per type index after the round;
    ``queue_ids``: the ids of ``queue`` when the caller has them."""
    rows = queue.tolist()
    tenant_position, tenant_of = tenant_ranks(problem, queue)
    if not rows:
        return QueueView((), tenant_position, tenant_of, (np.zeros(0), np.zeros(0)))

    def starts() -> tuple[np.ndarray, np.ndarray]:
        mins = _MinRun(snapshot, config, lease)
        running = _releases(snapshot, statuses, problem, held, mins, cache)
        late_all, sliced_all = _run_bounds(statuses, problem, cache)
        late = late_all[queue]
        early = late
        if sliced_all[queue].any():
            need = np.array([mins.of(statuses[i].job) if sliced_all[i] else math.inf for i in rows])
            early = np.minimum(late, np.maximum(lease, np.ceil(need / lease - 1e-9) * lease))
        durations = np.stack([early, late], axis=1)
        return estimate_starts(problem, usable, rows, running, snapshot.now, durations, idle)

    ids = problem.job_ids
    # the start ranges (a replay of the whole queue) are worked out when a reader first asks for them
    # (see QueueView); everything they read is a value of this round, never changed afterwards, and the
    # cache's entries are keyed by identity, so a later round's entries give the same figures
    return QueueView(
        tuple(queue_ids) if queue_ids is not None else tuple([ids[i] for i in rows]),
        tenant_position,
        tenant_of,
        starts,
    )


def yield_boundaries(
    snapshot: Snapshot, statuses: list[JobStatus], kept: list[Placement], config: RoundConfig, lease: float
) -> dict[str, float]:
    """Per type, the first lease boundary at which a preemptible job that keeps devices of it is past its
    minimum run (so it may yield to a waiting job then; for wait reasons). Empty without leases."""
    if config.lease_seconds is None or not kept:
        return {}
    mins = _MinRun(snapshot, config, lease)
    by_id = {s.job.id: s.job for s in statuses}
    began = snapshot.run_started
    now = snapshot.now
    out: dict[str, float] = {}
    for p in kept:
        job = by_id.get(p.job)
        if job is None or not job.time_sliced:
            continue
        at = mins.boundary_after(began.get(p.job, now) + mins.of(job))
        if at < out.get(p.accelerator, math.inf):
            out[p.accelerator] = at
    return out


class _MinRun:
    """Minimum runs (the operator's, or the job's program's when larger) and lease boundaries."""

    def __init__(self, snapshot: Snapshot, config: RoundConfig, lease: float) -> None:
        now, end = snapshot.now, snapshot.lease_end
        self.first = end if end is not None and end > now + 1e-9 else now + lease
        self.lease = lease
        self.floor = config.min_run()
        self.programs = program_min(snapshot, self.floor)

    def of(self, job: Job) -> float:
        return self.programs.get(job.grant, self.floor) if job.grant is not None else self.floor

    def boundary_after(self, t: float) -> float:
        """The first lease boundary at or after ``t``."""
        first = self.first
        return first if t <= first else first + math.ceil((t - first) / self.lease - 1e-9) * self.lease


def _releases(
    snapshot: Snapshot,
    statuses: list[JobStatus],
    problem: AllocationProblem,
    held: tuple[list[Placement], list[Placement]],
    mins: _MinRun,
    cache: DecideCache,
) -> list[tuple[int, int, float, float]]:
    """(type index, devices, early end, late end) of every placement whose devices come free at some
    time in the replay (a job with neither a max_run_time nor time slicing holds them for good)."""
    from accelpool.core.placement import _index_of

    now = snapshot.now
    tindex = {t: k for k, t in enumerate(problem.types)}
    index = _index_of(problem.job_ids, cache)
    late_all, sliced_all = _run_bounds(statuses, problem, cache)
    began = snapshot.run_started
    out: list[tuple[int, int, float, float]] = []
    for placements, new in ((held[0], False), (held[1], True)):
        for p in placements:
            i = index[p.job]
            bound, sliced = float(late_all[i]), bool(sliced_all[i])
            k = tindex.get(p.accelerator)
            if k is None or (bound == math.inf and not sliced):
                continue
            t0 = now if new else began.get(p.job, now)
            late = t0 + bound
            early = min(late, mins.boundary_after(t0 + mins.of(statuses[i].job))) if sliced else late
            out.append((k, p.count, early, late))
    return out


def _run_bounds(
    statuses: list[JobStatus], problem: AllocationProblem, cache: DecideCache
) -> tuple[np.ndarray, np.ndarray]:
    """Each job's ``max_run_seconds`` (inf: none) and whether it is time-sliced, kept while the same job
    tuple comes back (the problem cache hands out the same ``job_ids`` while the jobs are the same)."""
    got = cache.run_bounds
    if got is None or got[0] is not problem.job_ids:
        late = np.array([math.inf if (m := s.job.max_run_seconds) is None else m for s in statuses])
        sliced = np.array([s.job.time_sliced for s in statuses], dtype=bool)
        got = cache.run_bounds = (problem.job_ids, late, sliced)
    return got[1], got[2]
