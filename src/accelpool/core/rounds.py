"""One scheduling round: from a snapshot and a policy to a Decision (who starts, stays, is preempted, waits).

The policy says what fraction of time each job should get on each type (x[j,t]); a round must turn that
into whole devices on real nodes. Like Gavel, a job whose received share lags its target share goes
first. With ``age[j]`` = seconds since job j was submitted (at least one round):

    received[j,t] = seconds job j has run on t / age[j]
    credit[j]     = arrival_credit * lease / age[j]   (0.5: half a lease, or half a round per-round)
    priority[j,t] = sum_t' x[j,t'] / (sum_t' received[j,t'] + credit[j])   (ranking "job", the
                    default: the job's whole time share over the share of its age it has run on any
                    type; the same on every type t with x[j,t] > 0)
    or, with ranking "ratio", x[j,t] / (received[j,t] + credit[j])     (Gavel's per-type ratio)
    or, with ranking "deficit", (x[j,t] - received[j,t]) * age[j]   (seconds owed on t)

With ranking "job", priorities are compared in bands of factor 1 + keep bonus (core.ranking._job_pair_order):
jobs of nearly equal lag keep one order (running first, larger share, submit order) instead of rotating at
every small difference. The ranking, the keep bonus and the arrival credit come from the ``RoundConfig``
passed to ``decide`` (no module switches).

The arrival credit counts a job as having run half a lease when it arrives, as Gavel starts every job
with half a round of time on every type. Without it a job that never ran ranks infinitely high and takes
a device at its first boundary from a running job at its share, however small its own share; with it
the newcomer ranks by what it is owed (x * age against half a lease) and displaces a running job once it
lags more than that job does. On the tuning trace (b436b2, 36:36:36, per-round) it cut the aware
policy's average completion time 0.9% and its preemptions 6%, the agnostic fair-share's JCT +0.2%
(docs/simulator.md, "Fifth session").

The job ratio is the default. Gavel's per-type ratio ignores time a job got on a type the allocation did
not give it (back-fill), so a back-filled job keeps claiming its allocated type as if it had not run;
counting all of a job's time fixes that. On Gavel's three Philly traces the job ratio gives the
heterogeneity-aware policy 1-5% lower average completion time than the per-type ratio (6214e9: 409,503
vs 428,900 s) and the agnostic fair-share -0.3% to +3.5% (evidence in docs/simulator.md). The deficit
favours long-starved old jobs and made fair-share ~25% worse on b436b2. Among a job's types, the one
with the highest per-type ratio x[j,t] / received[j,t] is tried first (keep bonus on the type it runs
on): Gavel's rotation, so a job given several types gets each in proportion to its share. Without it a
job stayed on the first type it got; fair-share, which spreads a job's share over its types, then kept
its tail jobs on the biggest (slowest) type while the fast ones idled (docs/simulator.md).

Pairs (j,t) are taken in passes, each in decreasing priority: every job's first type, then every job's
second type, and so on (core.ranking._job_pair_order); a job is placed at most once, on one type, all its
devices at once (gang) on as few nodes as possible; a job that already runs on the chosen type keeps its devices.
Capacity left over after the policy's pairs is back-filled with waiting jobs that may use it
(work-conserving); then a chosen job moves up to a type where it runs faster if devices there would
otherwise idle, as Gavel fills its types fastest first (core/backfill.py; ``RoundConfig.move_up``; not
for the speed-blind fifo and fair-share; under leases only jobs that start now). Every job that does not
run gets a reason.

Sites (core/sites.py): a job runs only at a site allowed for it (certified for its data class, among the
sites/regions it names, up); a gang never spans sites. Where a type is held at several sites the policy
solves a problem with a column per (site, type) (``core.sites.site_columns``: each site's devices and
price, each job's allowed sites) and its allocation is summed back per type; when a job is chosen it is
given the site the policy gave it most time at if that site has room for the whole gang, else the cheapest
allowed site (that site's price for the type, core.sites.price_for) with room, and keeps the site it runs
at. A job no site allows waits with reason "rule" and the cause in words
(``Decision.details``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem, Policy, WarmHint
from accelpool.core.estimates import program_min as min_run_by_grant
from accelpool.core.free_devices import _FreeTemplate
from accelpool.core.periods import open_grants, whole_runs_cut_short
from accelpool.core.placement import (
    _holding,
    _place,
    _Sites,
    blocked_reasons,
    whole_runs_unpaid,
)
from accelpool.core.policies import NON_PREEMPTIVE, RULES_OVER_SITES, SPEED_BLIND
from accelpool.core.problem_cache import ProblemCache as _ProblemCache
from accelpool.core.problem_cache import renewed as _renewed
from accelpool.core.quiet import _Later, _Quiet
from accelpool.core.ranking import _pair_order, _Pairs
from accelpool.core.round_config import RoundConfig
from accelpool.core.round_types import (
    ChangeMemo,
    Decision,
    JobStatus,
    Placement,
    Snapshot,
    at_rows,
    changed_since,
    round_cost_krw,
)
from accelpool.core.sites import one_plain_site, site_columns, site_table, site_view, sites_allowing
from accelpool.core.types import (
    Grant,
    JobState,
    Node,
    Site,
    WaitReason,
)

__all__ = [
    "restart_cost",
    "DecideCache",
    "Decision",
    "JobStatus",
    "Placement",
    "Snapshot",
    "blocked_reasons",
    "decide",
    "round_cost_krw",
]


_TERMINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class DecideCache:
    """Work ``decide`` may reuse from one round to the next, owned by the caller (the Reconciler keeps one).

    The core keeps no state of its own: without a cache every call builds everything afresh. Entries are
    keyed by the identity of the snapshot's inputs and hold references to them, so an identity compared
    is never reused by another object. The results are the same with or without a cache, with one
    exception: ``warm_start`` and ``warm_hint`` (the last boundary's prices) may lead max-min-fairness to
    another of several optimal allocations, and move where its stage limit or work budget stops (the
    same stage-1 level; see AllocationProblem.warm_start and warm_hint). The order of ``Decision.keep``,
    which carries no meaning, may also differ: a quiet round of fifo lists the kept jobs in job order
    (``_Quiet``).
    """

    def __init__(self) -> None:
        self.changed = ChangeMemo()  # core.round_types.changed_since, once per round for the three caches
        self.problems = _ProblemCache(self.changed)
        # decide's live statuses: (last snapshot's statuses, that round's list of them), kept when none was
        # terminal (``_live``)
        self.live: tuple[Sequence[JobStatus], list[JobStatus]] | None = None
        # rounds._site_view: (allowed sets, nodes, sites, core.sites.one_plain_site of them)
        self.one_site: tuple[list[frozenset[str]], Sequence[Node], dict[str, Site], bool] | None = None
        self.id_rank: tuple[tuple[str, ...], np.ndarray] | None = None
        self.index_of: tuple[tuple[str, ...], dict[str, int]] | None = None
        self.free_template: _FreeTemplate | None = None
        self.run_bounds: tuple[tuple[str, ...], np.ndarray, np.ndarray] | None = None
        self.whole_runs: tuple[tuple[str, ...], list[int]] | None = None  # core.placement.whole_runs_unpaid
        self.opened: tuple[tuple[Grant, ...], tuple[int, ...], tuple[Grant, ...]] | None = None
        """core.periods.open_grants: the snapshot's grants, the closed ones' positions, the grants made."""
        self.usable: tuple[tuple[np.ndarray, ...], np.ndarray] | None = None  # rounds._usable
        self.sites_allowed: (
            tuple[tuple[str, ...], tuple[Site, ...], tuple[list[frozenset[str]], dict[str, str]]] | None
        ) = None  # rounds._sites_allowing
        self.seconds_on: (
            tuple[tuple[str, ...], tuple[str, ...], Sequence[JobStatus | None], np.ndarray, np.ndarray] | None
        ) = None
        """core.ranking._job_rows: (job ids, types, the statuses (None: not read), seconds per type, type
        run on)."""
        self.pairs: tuple[np.ndarray, np.ndarray, np.ndarray | None, _Pairs] | None = None
        """core.ranking._alloc_pairs: (x, usable, priorities, what the pair order reads of them)."""
        self.fair_order: tuple[tuple[np.ndarray, ...], tuple[bytes, str], np.ndarray] | None = None
        """core.placement._fair_order: (the arrays it read, (who held devices, fairness), the order)."""
        # core.placement._holding: (job ids, statuses, holds devices, state is RUNNING)
        self.holding: tuple[tuple[str, ...], list[JobStatus], np.ndarray, np.ndarray] | None = None
        # core.rounds._keep_types: (job ids, types, statuses, keep_type (read-only), column of each type)
        self.keep_types: (
            tuple[tuple[str, ...], tuple[str, ...], list[JobStatus], np.ndarray, dict[str, int]] | None
        ) = None
        self.speed_order: tuple[np.ndarray, list[list[int]]] | None = None  # core.placement._speed_order
        self.blocked: tuple[tuple[object, ...], tuple[bytes, float], dict[str, WaitReason]] | None = None
        """core.placement._blocked: (the arrays it read, (the budgets, the horizon), the reasons)."""
        self.held_priority: tuple[Mapping[str, WaitReason], bool] | None = None  # placement._held_priority
        self.one_priority: tuple[np.ndarray, bool] | None = None  # core.placement._one_priority
        self.rule_bound: tuple[tuple[np.ndarray, ...], bool] | None = None  # core.placement._rules_bind
        self.warm_start: tuple[float, ...] = ()
        """The last lease boundary's Allocation.warm_start, handed to the next boundary's problem: the
        policy starts from the last round's prices (max-min-fairness: the same stage levels, faster)."""
        self.warm_hint: WarmHint | None = None
        """The last lease boundary's Allocation.warm_hint (every stage's level and prices, rows named),
        handed to the next boundary's problem as AllocationProblem.warm_hint (max-min-fairness)."""
        self.quiet: _Quiet | _Later | None = None
        """The last full decision in which every live job ran and none waited, with the facts it was
        taken on: a quiet round repeats it (``_Quiet``; ``_Later`` for a preemptive policy)."""


def decide(
    snapshot: Snapshot,
    policy: Policy,
    cache: DecideCache | None = None,
    config: RoundConfig | None = None,
) -> Decision:
    """Run the policy on the snapshot and turn its allocation into placements for this round.

    ``cache`` carries reusable work between calls (see DecideCache); pass the same one every round.
    ``config`` holds every setting of the round (RoundConfig(): the live defaults)."""
    if cache is None:
        cache = DecideCache()
    if config is None:
        config = RoundConfig()
    snapshot = open_grants(snapshot, cache)  # a grant outside its period (or its program's) pays nothing
    statuses = _live(snapshot.jobs, cache)
    base = _base(policy)
    keeps_running = base in NON_PREEMPTIVE
    if keeps_running and isinstance(cache.quiet, _Quiet):
        same = cache.quiet.again(snapshot, statuses, policy, config)
        if same is not None:
            return same
    horizon = config.lease_or(snapshot.round_seconds)
    problem = cache.problems.get(snapshot, statuses, config, horizon)
    sites = site_table(snapshot.sites)
    allowed, notes = _sites_allowing(problem, statuses, snapshot, sites, cache)
    problem = _site_view(problem, allowed, snapshot, sites, cache)
    problem, unpaid = whole_runs_unpaid(problem, statuses, cache)
    rows = cache.whole_runs[1] if cache.whole_runs and cache.whole_runs[0] is problem.job_ids else None
    problem, short = whole_runs_cut_short(problem, statuses, snapshot, rows)
    blocked: Mapping[str, tuple[int, int] | str] = {**unpaid, **short} if short else unpaid
    usable = _usable(problem, cache)
    prefer: dict[tuple[int, str], str] = {}
    wide = None
    if snapshot.lease_boundary or keeps_running:
        # a non-preemptive policy (fifo) runs at ticks too: it keeps every running job and only starts
        # waiting ones in its own order, which the tick's back-fill (fair order) would not follow
        wide = site_columns(
            problem,
            allowed,
            snapshot.nodes,
            sites,
            snapshot.prices_krw_per_hour,
            rules_span=base in RULES_OVER_SITES,
        )
        seen = problem if wide is None else wide.problem
        keep = (
            _keep_types(seen, statuses, cache)
            if config.lease_seconds is not None or keeps_running
            else seen.keep_type
        )
        if cache.warm_start or cache.warm_hint is not None or np.size(keep):
            seen = _renewed(
                seen,
                warm_start=cache.warm_start or seen.warm_start,
                warm_hint=cache.warm_hint or seen.warm_hint,
                keep_type=keep,
            )
        raw = policy(seen)
        cache.warm_start, cache.warm_hint = raw.warm_start, raw.warm_hint
        if wide is None:
            alloc = raw
        else:  # the policy sees each site's devices and prices; placement follows the sites it chose
            alloc, prefer = wide.collapse(raw, problem.types)
        last = cache.quiet
        if isinstance(last, _Later) and not keeps_running and last.decision.allocation is alloc:
            # the policy handed back the very allocation of the last full decision (the runtime's
            # ReusingPolicy, for an unchanged problem): the round may be quiet (_Quiet)
            same = last.again(snapshot, statuses, policy, config, (problem, cache))
            if same is not None:
                return same
        pinned, threshold = _pinned(snapshot, statuses, config, horizon, _holding(statuses, problem, cache))
        order = _pair_order(snapshot, statuses, alloc, usable, config, threshold, problem, cache)
    else:  # a tick: no policy, no preemption; only back-fill idle devices
        pinned, threshold = _pinned(snapshot, statuses, config, horizon, _holding(statuses, problem, cache))
        alloc = Allocation(
            problem.job_ids,
            problem.types,
            np.zeros((problem.n_jobs, problem.n_types)),
            "tick",
            held=blocked_reasons(problem, usable),
        )
        order = []
    placing = _Sites(sites, allowed, notes, prefer)
    decision = _place(
        snapshot,
        statuses,
        alloc,
        order,
        usable,
        problem,
        cache,
        pinned,
        horizon,
        config,
        placing,
        blocked,
        move_up=config.move_up and base not in SPEED_BLIND,
        move_running=config.lease_seconds is None,
    )
    if keeps_running:
        cache.quiet = _Quiet.after(decision, snapshot, statuses, policy, config)
    elif snapshot.lease_boundary:
        # a preemptive policy's decision stays while each job's only pair is the type it runs on (or, when
        # some job has more, while the pair order's first pass keeps every job on its type) and no job
        # could move up, and no program rule binds: checked only when a later round could use it (_Later)
        move = config.move_up and base not in SPEED_BLIND and config.lease_seconds is None
        cache.quiet = (
            _Later(decision, snapshot, statuses, policy, config, problem, alloc, usable, move, cache)
            if wide is None and not decision.waiting
            else None
        )
    return decision


def _site_view(
    problem: AllocationProblem,
    allowed: list[frozenset[str]],
    snapshot: Snapshot,
    sites: dict[str, Site],
    cache: DecideCache,
) -> AllocationProblem:
    """``core.sites.site_view``, whose first test (``one_plain_site``: one site, no prices there, every job
    allowed there; then the problem as it is) is kept while the allowed sets are the same list (kept with
    the job tuple, ``_sites_allowing``), the nodes the same tuple and the sites equal."""
    last = cache.one_site
    nodes = snapshot.nodes
    if last is None or last[0] is not allowed or last[1] is not nodes or last[2] != sites:
        last = cache.one_site = (allowed, nodes, sites, one_plain_site(allowed, nodes, sites))
    if last[3]:
        return problem
    return site_view(problem, allowed, nodes, sites, snapshot.prices_krw_per_hour)


def _live(jobs: Sequence[JobStatus], cache: DecideCache) -> list[JobStatus]:
    """The snapshot's statuses that are not terminal, in order (a new list every round: the caches key on
    it). When last round's snapshot had no terminal status and this one lists as many, only the statuses
    that are other objects than last round's are read (``changed_since``, once for the round: the
    ``ChangeMemo`` is told the answer, as the new list and last round's equal the two snapshots' lists)."""
    done = _TERMINAL
    last = cache.live
    if last is not None and len(last[0]) == len(jobs):
        changed = changed_since(jobs, last[0])
        if not any(
            (s := jobs[i]).state is done[0] or s.state is done[1] or s.state is done[2] for i in changed
        ):
            statuses = list(jobs)
            cache.changed.tell(statuses, last[1], changed)
            cache.live = (jobs, statuses)
            return statuses
    statuses = [
        s for s in jobs if s.state is not done[0] and s.state is not done[1] and s.state is not done[2]
    ]
    cache.live = (jobs, statuses) if len(statuses) == len(jobs) else None
    return statuses


def _base(policy: Policy) -> Policy:
    """The policy a wrapper calls (the runtime's ReusingPolicy and the simulator's timer keep it as
    ``.policy``), for the membership tests of ``core.policies.NON_PREEMPTIVE`` and ``RULES_OVER_SITES``
    (a wrapped policy tested as itself was never a member: the live service's rule-bound types at
    several sites were pooled into one column)."""
    inner = getattr(policy, "policy", None)
    while callable(inner):
        policy = inner
        inner = getattr(policy, "policy", None)
    return policy


def _usable(problem: AllocationProblem, cache: DecideCache) -> np.ndarray:
    """``problem.usable()``, kept while the arrays it reads are the very same objects (the problem cache
    shares them between rounds while the jobs are the same). Callers only read it."""
    key = (problem.allowed, problem.throughput, problem.scale, problem.capacity)
    last = cache.usable
    if last is None or any(a is not b for a, b in zip(last[0], key, strict=True)):
        usable = problem.usable()
        usable.setflags(write=False)  # shared between rounds: read only
        last = cache.usable = (key, usable)
    return last[1]


def _sites_allowing(
    problem: AllocationProblem,
    statuses: list[JobStatus],
    snapshot: Snapshot,
    sites: dict[str, Site],
    cache: DecideCache,
) -> tuple[list[frozenset[str]], dict[str, str]]:
    """``core.sites.sites_allowing`` of the round's jobs, kept while the problem cache hands out the same
    job tuple (the same job objects, in the same order) and the sites are equal. When the problem cache
    carried rows over to a new job set (``ProblemCache.moved``) and no job had a note, the staying jobs'
    sets are carried too and only the new jobs' are worked out (a job's set depends on it and the sites
    alone). Callers only read it."""
    last = cache.sites_allowed
    ids = problem.job_ids
    if last is not None and last[0] is ids and last[1] == snapshot.sites:
        return last[2]
    moved = cache.problems.moved
    got: tuple[list[frozenset[str]], dict[str, str]] | None = None
    if last is not None and moved is not None and moved[0] is last[0] and moved[1] is ids:
        if not last[2][1] and last[1] == snapshot.sites:
            fresh = moved[3]
            sets, notes = sites_allowing([statuses[i].job for i in fresh], sites)
            if not notes:
                carried = at_rows(last[2][0], moved[2])  # the new jobs' stand-ins are replaced here
                for i, a in zip(fresh, sets, strict=True):
                    carried[i] = a
                got = (carried, {})
    if got is None:
        got = sites_allowing([s.job for s in statuses], sites)
    cache.sites_allowed = (ids, snapshot.sites, got)
    return got


def _keep_types(
    problem: AllocationProblem, statuses: list[JobStatus], cache: DecideCache | None = None
) -> np.ndarray:
    """Per job of ``problem``, the column of the type it runs on (-1: not running, or no such column).

    Under leases a running job keeps its type (a move pays a restart), so max-min-fairness is asked to
    prefer, among equally fair allocations, the one that keeps running jobs where they are. A
    non-preemptive policy (fifo) gets it at every round: it keeps every running job on that type. Where
    a type is held at several sites the columns are per (type, site) (``core.sites.site_columns``).

    With ``cache``: kept while the problem's job and type tuples are the same objects (row i is the job of
    ``statuses[i]``); only the rows whose status is another object than last round's are read again, so
    a round with many waiting jobs does not pass over all of them. The array is read-only: the same
    object while nothing changed (the runtime's ReusingPolicy compares it by identity first), a new one
    when a row changed."""
    last = cache.keep_types if cache is not None else None
    if last is not None and last[0] is problem.job_ids and last[1] is problem.types:
        column = last[4]
        keep = last[3]
        changed = cache.changed(statuses, last[2])  # type: ignore[union-attr]
        if changed:
            keep = keep.copy()
            keep[changed] = [_column_of(column, statuses[i].placement) for i in changed]
            keep.flags.writeable = False
    else:
        column = {name: k for k, name in enumerate(problem.types)}
        held = {s.job.id: _column_of(column, p) for s in statuses if (p := s.placement) is not None}
        keep = np.array([held.get(j, -1) for j in problem.job_ids], dtype=np.int64)
        keep.flags.writeable = False
    if cache is not None:
        cache.keep_types = (problem.job_ids, problem.types, statuses, keep, column)
    return keep


def _column_of(column: dict[str, int], p: Placement | None) -> int:
    """The column of the type ``p`` runs on: its (type, site) column where the problem has one, else the
    type's (-1: no placement, or no such column)."""
    if p is None:
        return -1
    return column.get(f"{p.accelerator}@{p.site}", column.get(p.accelerator, -1))


def _pinned(
    snapshot: Snapshot,
    statuses: list[JobStatus],
    config: RoundConfig,
    lease: float,
    holding: np.ndarray | None = None,
) -> tuple[list[int], np.ndarray]:
    """Running jobs that keep their devices whatever the policy says, and the rank threshold of the others.

    Pinned: every running job between lease boundaries; at a boundary, a job that is not time-sliced (not
    preemptible, or inference), one that has run less than its minimum run time (the operator's, or its
    program's when larger), and one whose restart costs at least a lease (nothing could gain).
    A preemptible job past its minimum run time is ranked on the type it holds with its priority times
    ``threshold[i]`` = lease / (lease - restart), its restart cost (``restart_cost``: declared, measured,
    or the default): a claimant displaces it only when it is owed more by a margin that pays the restart
    within the next lease (see the module notes). ``holding`` (``core.placement._holding``), when given:
    which jobs run on devices, so only they are visited."""
    running = JobState.RUNNING
    boundary = snapshot.lease_boundary
    threshold = np.ones(len(statuses))
    floor = config.min_run()
    program_min = min_run_by_grant(snapshot, floor) if boundary else {}
    started = snapshot.run_started
    now = snapshot.now
    out = []
    for i in range(len(statuses)) if holding is None else holding.nonzero()[0].tolist():
        s = statuses[i]
        if s.state is not running or s.placement is None:
            continue
        job = s.job
        if not boundary or not job.time_sliced:
            out.append(i)
            continue
        began = started.get(job.id)
        need = program_min.get(job.grant, floor) if job.grant is not None else floor
        restart = restart_cost(s, config)
        if (began is not None and now - began < need - 1e-9) or lease <= restart:
            out.append(i)  # in its minimum run, or a restart costs a lease or more: nothing could gain
        else:
            threshold[i] = lease / (lease - restart)
    return out, threshold


def restart_cost(s: JobStatus, config: RoundConfig) -> float:
    """What preempting the job costs it (s): its declared restart cost, else the one measured on its last
    attempt (STARTED to its first progress report), else the operator's default."""
    if s.job.restart_seconds is not None:
        return s.job.restart_seconds
    if s.restart_measured is not None:
        return s.restart_measured
    return config.restart_seconds
