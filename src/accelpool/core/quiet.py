"""Quiet rounds: a round whose decision is the last full decision again, decided without placement (and,
for a non-preemptive policy, without the problem and the policy). ``core.rounds.decide`` keeps the entry in
``DecideCache.quiet``: ``_Quiet`` for fifo, made after every full decision; ``_Later`` for a preemptive
policy, made after a full boundary decision and checked (``_stays``) the first time a round could use it,
and, when the allocation spreads a job over types, every round it could serve (``core.ranking.FirstPairs``).
Every round's decision is the one the full path takes (tests/core/test_quiet_rounds.py; docs/simulator.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem, Policy
from accelpool.core.placement import _rules_bind
from accelpool.core.ranking import FirstPairs
from accelpool.core.round_config import RoundConfig
from accelpool.core.round_types import Decision, JobStatus, Placement, Snapshot
from accelpool.core.types import JobState, Node

if TYPE_CHECKING:
    from accelpool.core.rounds import DecideCache


def _stays(
    problem: AllocationProblem,
    alloc: Allocation,
    usable: np.ndarray,
    decision: Decision,
    nodes: Sequence[Node],
    move: bool,
) -> tuple[np.ndarray, bool] | None:
    """With the same allocation and every job running where ``decision`` placed it: each job's column (the
    type it runs on) and whether that is its only pair (x > 0 on a usable type), or None when placement
    could do more than keep every job whatever the pair order: a job without a pair on the type it runs
    on, or (``move``: chosen jobs may move up to a faster type, core.backfill.move_up_jobs) a type faster
    for some job with room for its gang once every job holds its devices. When each job's only pair is
    its type, the pair order (whose ranking moves with time) cannot send a job elsewhere; when some job
    has more pairs, each round must also see that the pair order's first pass gives every job its type
    (``core.ranking.FirstPairs``): placement then chooses each job on its type before any second
    pair is read, their gangs fit together (they hold those devices now, on the same nodes), pinned jobs
    keep theirs, and move-up has nowhere to go, so every job is kept."""
    pairs = (alloc.x > 1e-9) & usable
    placed = {p.job: p.accelerator for p in decision.placements()}
    column = {t: k for k, t in enumerate(alloc.types)}
    ids = problem.job_ids
    if len(placed) != len(ids):
        return None
    on = np.array([column.get(placed.get(j, ""), -1) for j in ids], dtype=np.int64)
    if (on < 0).any():
        return None
    rows = np.arange(len(ids))
    if not pairs[rows, on].all():
        return None
    if move:
        free = np.zeros(len(alloc.types))
        for n in nodes:
            k = column.get(n.accelerator)
            if k is not None:
                free[k] += n.devices
        np.subtract.at(free, on, problem.scale)
        tput = problem.throughput
        faster = usable & (tput > tput[rows, on][:, None]) & (free[None, :] >= problem.scale[:, None])
        if faster.any():
            return None
    return on, bool((pairs.sum(axis=1) == 1).all())


class _Later:
    """A preemptive policy's quiet entry (``_Quiet``), left by a full boundary decision in which every job
    is placed and none waits, and checked (no binding rule, ``_stays``, ``_Quiet.after``) only the first
    time a round could use it: when the policy hands back the same allocation. Most such decisions of a
    busy pool are followed by no quiet round, and the check costs more than the rest of the entry.

    When the allocation gives some job more than one pair (fair-share spreads a job over types), a round
    is quiet only when the pair order's first pass also keeps every job on its type, which moves with
    time (``core.ranking.FirstPairs``, on this round's ``view``: its problem and the DecideCache)."""

    __slots__ = ("_args", "_entry", "_first", "decision")

    def __init__(
        self,
        decision: Decision,
        snapshot: Snapshot,
        statuses: list[JobStatus],
        policy: Policy,
        config: RoundConfig,
        problem: AllocationProblem,
        alloc: Allocation,
        usable: np.ndarray,
        move: bool,
        cache: DecideCache,
    ) -> None:
        self.decision = decision
        self._args: tuple[Any, ...] | None = (
            snapshot,
            statuses,
            policy,
            config,
            problem,
            alloc,
            usable,
            move,
            cache,
        )
        self._entry: _Quiet | None = None
        self._first: FirstPairs | None = None  # when some job has more than one pair

    def again(
        self,
        snapshot: Snapshot,
        statuses: list[JobStatus],
        policy: Policy,
        config: RoundConfig,
        view: tuple[AllocationProblem, DecideCache],
    ) -> Decision | None:
        if self._args is not None:
            then, seen, was, conf, problem, alloc, usable, move, cache = self._args
            self._args = None
            got = (
                None
                if _rules_bind(problem, cache)
                else _stays(problem, alloc, usable, self.decision, then.nodes, move)
            )
            if got is not None:
                self._entry = _Quiet.after(self.decision, then, seen, was, conf, moved=True)
                if not got[1]:
                    self._first = FirstPairs(got[0], alloc, usable, conf, problem.priority)
        if self._entry is None:
            return None
        same = self._entry.again(snapshot, statuses, policy, config)
        if same is not None and self._first is not None and not self._first(snapshot, statuses, *view):
            return None
        return same


class _Quiet:
    """A quiet round: the last full decision again, without placement (and, for fifo, without the problem
    and the policy).

    The last full decision placed every live job (none waits, none was preempted; for a preemptive policy
    a job preempted to be started elsewhere in the same decision counts as placed), no job has a grant or
    a deadline, and this round the same jobs, in the same order, all run where it put them, on the same
    nodes, tenants, programs, grants, prices, sites, speeds, policy object and configuration. Then:

    - fifo keeps every running job on its devices; only a rule row it no longer fits under, a grant that
      cannot pay the next lease or a lost or drained node stops one (``core.policies.fifo``), and none of
      these can have changed. Checked before the problem is built; the allocation is the last full
      decision's (the runtime's ReusingPolicy hands that same one back for an unchanged problem).
    - A preemptive policy, at a lease boundary, when it hands back the very allocation of the last full
      decision (a reusing wrapper, for an unchanged problem; a policy that computes afresh never gives the
      same object), when no program rule binds, and when each job's only pair is the type it runs on and
      no faster type has room for a job's gang (``_stays``, checked by ``_Later`` when first used): the pair
      order, whose ranking moves with time, has one pair per job and every job fits, and move-up has
      nowhere to go. When a job has more pairs, also when the pair order's first pass puts every job on
      the type it runs on this round (``core.ranking.FirstPairs``). The policy still runs (its reuse test
      is what proves the allocation the same).

    The decision is: keep every job where it runs (in job order; the full path lists the kept jobs in its
    pair order, which carries no meaning), start none, preempt none, with this round's time and boundary
    flag. Most rounds of fifo, and of max-min-fairness at low load, are such rounds (docs/simulator.md)."""

    __slots__ = ("decision", "facts", "placed")

    def __init__(self, decision: Decision, facts: tuple[object, ...], placed: dict[str, Placement]) -> None:
        self.decision = decision
        self.facts = facts
        self.placed = placed

    @staticmethod
    def facts_of(snapshot: Snapshot, policy: Policy, config: RoundConfig) -> tuple[object, ...]:
        return (
            policy,
            config,
            snapshot.nodes,
            snapshot.nodes_down,
            snapshot.throughput,
            snapshot.accelerators,
            snapshot.tenants,
            snapshot.programs,
            snapshot.grants,
            snapshot.prices_krw_per_hour,
            snapshot.sites,
            snapshot.round_seconds,
        )

    @classmethod
    def after(
        cls,
        decision: Decision,
        snapshot: Snapshot,
        statuses: list[JobStatus],
        policy: Policy,
        config: RoundConfig,
        moved: bool = False,
    ) -> _Quiet | None:
        """The entry a full decision leaves (None: a job waits, is preempted (``moved``: other than to be
        started elsewhere in the same decision), or has a grant or deadline)."""
        if decision.waiting or len(decision.keep) + len(decision.start) != len(statuses):
            return None
        if decision.preempt and not moved:
            return None
        if any(s.job.grant is not None or s.job.deadline is not None for s in statuses):
            return None
        placed = {p.job: p for p in decision.keep}
        placed.update((p.job, p) for p in decision.start)
        if len(placed) != len(statuses):
            return None
        return cls(decision, cls.facts_of(snapshot, policy, config), placed)

    def again(
        self, snapshot: Snapshot, statuses: list[JobStatus], policy: Policy, config: RoundConfig
    ) -> Decision | None:
        """This round's decision when it is quiet (see the class), else None (the full path decides)."""
        last = self.decision
        ids = last.allocation.job_ids
        if len(statuses) != len(ids):
            return None
        now = self.facts_of(snapshot, policy, config)
        if any(a is not b and a != b for a, b in zip(now, self.facts, strict=True)):
            return None
        placed = self.placed
        running = JobState.RUNNING
        keep = []
        for s, jid in zip(statuses, ids, strict=True):
            p = s.placement
            if s.state is not running or p is None or s.job.id != jid:
                return None
            q = placed[jid]
            if p is not q and p != q:
                return None
            keep.append(p)
        return Decision(
            now=snapshot.now,
            allocation=last.allocation,
            keep=tuple(keep),
            waiting={},
            positions=last.positions,
            boundary=snapshot.lease_boundary,
            details={},
            queue=last.queue,
        )
