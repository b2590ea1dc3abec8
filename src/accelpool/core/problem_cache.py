"""The round's AllocationProblem, kept between rounds (``core.rounds.decide``'s problem cache).

While the jobs and every other input are the very same objects the cached problem is handed out again
with what drifts every round refreshed (steps left, grant balances, time to deadlines). When the job set
changes (jobs arrive or leave) and nothing else does, the rows of the jobs that stay are carried over
from the cached problem and only the new jobs' rows are built (``ProblemCache._carry``): the same arrays,
value for value and dtype for dtype, as ``core.problem.build_problem`` of the new job list (checked
against it in tests/core/test_problem_carry.py). Anything else builds afresh.
"""

from __future__ import annotations

import itertools
import math
import operator

import numpy as np

from accelpool.core.allocation import AllocationProblem
from accelpool.core.problem import (
    _tenant_list,
    allowed_mask,
    build_problem_and_mask,
    cap_groups,
    hierarchical_weights,
)
from accelpool.core.round_config import RoundConfig
from accelpool.core.round_types import ChangeMemo, JobStatus, Snapshot, changed_since, rows_in
from accelpool.core.types import Job, Node, Program


def renewed(problem: AllocationProblem, **fields: object) -> AllocationProblem:
    """``dataclasses.replace`` for fields the caller built in the shapes and dtypes the constructor checks
    (``warm_start``; ``keep_type`` from ``_keep_types``, one entry per job; the problem cache's per-round
    steps left, budgets and deadlines): the same new frozen problem, without running the constructor's
    checks of every array again every round."""
    fresh = object.__new__(AllocationProblem)
    fresh.__dict__.update(problem.__dict__)
    fresh.__dict__.update(fields)
    return fresh


_job_of = operator.attrgetter("job")
_id_of = operator.attrgetter("id")
_tenant_of = operator.attrgetter("tenant")


class ProblemCache:
    """The last round's problem, reused while its inputs are the very same objects.

    A store that hands out the same job, throughput, tenant and program objects round after round (the
    memory store does) gets the arrays built once; only what drifts every round (steps left, grant
    balances, time to deadlines) is refreshed. When only the job set changed, the staying jobs' rows are
    carried over (``_carry``). Inputs that are new objects simply rebuild. The entry keeps references to
    its inputs, so the identities it compares stay valid.
    """

    def __init__(self, changed: ChangeMemo | None = None) -> None:
        self._changed = changed if changed is not None else ChangeMemo()
        self._key: tuple[object, ...] | None = None
        self._refs: tuple[object, ...] = ()
        # the last round's statuses and their steps done: a round reads only the statuses that are new
        # objects (a JobStatus is frozen)
        self._seen: list[JobStatus] = []
        self._done: np.ndarray = np.zeros(0)
        self._problem: AllocationProblem | None = None
        self._nodes: tuple[Node, ...] | None = None
        self._capacity: dict[str, int] = {}
        self._total: np.ndarray = np.zeros(0)
        self._grant_of: list[str | None] | None = None
        self._deadline: np.ndarray | None = None
        self._mask: np.ndarray | None = None  # the cached problem's core.problem.allowed_mask, per row
        self.moved: tuple[tuple[str, ...], tuple[str, ...], list[int], list[int]] | None = None
        """The last carry (``_carry``): (the cached problem's job ids, the new problem's, per new row the
        cached row it was taken from (-1: a new job or another Job object), the new rows); None after a
        full build. Other per-job caches of the round carry their rows by it."""
        self.carries = 0  # job set changes met by carrying rows over (``_carry``), for tests and benches

    def get(
        self, snapshot: Snapshot, statuses: list[JobStatus], config: RoundConfig, horizon: float
    ) -> AllocationProblem:
        if snapshot.nodes is self._nodes:
            capacity = self._capacity
        else:
            capacity = {}
            for node in snapshot.nodes:
                capacity[node.accelerator] = capacity.get(node.accelerator, 0) + node.devices
            self._nodes, self._capacity = snapshot.nodes, capacity
        # the same job objects as the cached problem's, compared without building a tuple of ids
        # (only the statuses that are other objects than last round's can hold other jobs)
        cached_jobs: list[Job] = self._refs[1] if self._refs else []  # type: ignore[assignment]
        seen = self._seen
        changed: list[int] = []
        same_jobs = bool(self._refs) and len(cached_jobs) == len(statuses) == len(seen)
        if same_jobs:
            changed = self._changed(statuses, seen)
            same_jobs = all(statuses[i].job is cached_jobs[i] for i in changed)
        key = (
            id(snapshot.throughput),
            tuple(sorted(capacity.items())),
            id(snapshot.accelerators),
            tuple(map(id, snapshot.tenants)),
            tuple(map(id, snapshot.programs)),
            tuple((g.id, g.tenant, g.program) for g in snapshot.grants),
            tuple(sorted(snapshot.prices_krw_per_hour.items())),
            horizon,
            config.per_device_levels,
            config.fairness,
        )
        last = self._problem
        if last is not None and same_jobs and key == self._key:
            return self._refresh(snapshot, statuses, last, changed)
        if last is not None and not same_jobs and self._key is not None and key[1:] == self._key[1:]:
            carried = self._carry(snapshot, statuses, last, key)
            if carried is not None:
                return carried
        return self._build(snapshot, statuses, capacity, config, horizon, key)

    def _build(
        self,
        snapshot: Snapshot,
        statuses: list[JobStatus],
        capacity: dict[str, int],
        config: RoundConfig,
        horizon: float,
        key: tuple[object, ...],
    ) -> AllocationProblem:
        """``build_problem`` of the round's jobs, and what the next rounds read of them."""
        jobs = [s.job for s in statuses]
        inf = math.inf
        remaining = [
            (t - s.steps_done if t > s.steps_done else 0.0) if (t := s.job.total_steps) is not None else inf
            for s in statuses
        ]
        problem, mask = build_problem_and_mask(
            jobs,
            capacity,
            snapshot.throughput,
            accelerators=snapshot.accelerators,
            tenants=snapshot.tenants,
            programs=snapshot.programs,
            grants=snapshot.grants,
            prices_krw_per_hour=snapshot.prices_krw_per_hour,
            remaining_steps={j.id: r for j, r in zip(jobs, remaining, strict=True)},
            now=snapshot.now,
            horizon_seconds=horizon,
            per_device_levels=config.per_device_levels,
            fairness=config.fairness,
        )
        # per job, what the refresh reads (the same job objects while the key holds)
        self._keep(
            snapshot,
            statuses,
            problem,
            mask,
            key,
            jobs,
            np.array([t if (t := j.total_steps) is not None else inf for j in jobs], dtype=np.float64),
            [j.grant for j in jobs] if any(j.grant is not None for j in jobs) else None,
            (
                np.array([j.deadline if j.deadline is not None else inf for j in jobs], dtype=np.float64)
                if any(j.deadline is not None for j in jobs)
                else None
            ),
            np.fromiter((s.steps_done for s in statuses), dtype=np.float64, count=len(statuses)),
        )
        return problem

    def _keep(
        self,
        snapshot: Snapshot,
        statuses: list[JobStatus],
        problem: AllocationProblem,
        mask: np.ndarray,
        key: tuple[object, ...],
        jobs: list[Job],
        total: np.ndarray,
        grant_of: list[str | None] | None,
        deadline: np.ndarray | None,
        done: np.ndarray,
    ) -> None:
        """Keep a newly built problem and what later rounds read of its jobs."""
        # without grants (deadlines) every budget (time to deadline) stays -1 (inf): the refresh hands out
        # these very arrays, read only (a reader that changes one copies it first)
        if grant_of is None:
            problem.budget_krw.setflags(write=False)
        if deadline is None:
            problem.time_to_deadline.setflags(write=False)
        self._key, self._problem, self._mask = key, problem, mask
        self.moved = None
        self._refs = (snapshot.throughput, jobs, snapshot.accelerators, snapshot.tenants, snapshot.programs)
        self._total, self._grant_of, self._deadline = total, grant_of, deadline
        self._seen = statuses  # the round's list, never changed once built
        self._done = done

    def _refresh(
        self, snapshot: Snapshot, statuses: list[JobStatus], last: AllocationProblem, changed: list[int]
    ) -> AllocationProblem:
        """The cached problem (the same jobs, the same inputs) with this round's steps left, budgets and
        time to deadlines."""
        done = self._done
        if changed:
            done[changed] = [statuses[i].steps_done for i in changed]
        self._seen = statuses  # the round's list, never changed once built
        total = self._total
        # the same figures as build_problem's: steps left, never below 0 (inf without a total)
        remaining_steps = np.where(total > done, total - done, 0.0)
        budget = last.budget_krw if self._grant_of is None else self._budget(snapshot, self._grant_of)
        ttd = last.time_to_deadline if self._deadline is None else self._deadline - snapshot.now
        # a new frozen problem sharing the unchanged arrays (the cached one is never changed); the three
        # arrays are built here with the cached problem's shapes and dtypes, so the constructor's checks
        # (run when the cached problem was built) are not run again every round
        return renewed(last, remaining_steps=remaining_steps, budget_krw=budget, time_to_deadline=ttd)

    @staticmethod
    def _budget(snapshot: Snapshot, grant_of: list[str | None]) -> np.ndarray:
        """Each job's grant's balance, -1 without one (as build_problem)."""
        balance = {g.id: g.remaining_krw for g in snapshot.grants}
        return np.array([balance[g] if g in balance else -1 for g in grant_of], dtype=np.int64)

    def _carry(
        self, snapshot: Snapshot, statuses: list[JobStatus], last: AllocationProblem, key: tuple[object, ...]
    ) -> AllocationProblem | None:
        """``build_problem`` of the new job set when only it changed (``key`` equal but for the throughput
        matrix, which the store rebuilds with the job set): the rows of jobs that stay (the very same Job
        objects) are taken from the cached problem, only the new jobs' rows are built. What depends on every
        job is computed over the whole new list as build_problem computes it: tenant fairness's hierarchical
        weights (``core.problem.hierarchical_weights``) and the per-tenant cap groups (numbered in job
        order, ``core.problem.cap_groups``). None (build afresh) for another tenant list (the snapshot's
        tenants and the jobs'), a throughput matrix whose jobs are not the statuses' jobs in order, or
        nothing to carry.

        Per job of ``build_problem``: the constraints mask, scale, weight, public, priority, submit time and
        tenant index depend on the job and on inputs the key holds the same; throughput and ``allowed``
        (mask and positive throughput) are read from the new matrix; the public reserve, budgets, steps
        left and time to deadlines are computed over the new rows as build_problem (or the refresh) does."""
        mask0 = self._mask
        n = len(statuses)
        tp = snapshot.throughput
        if mask0 is None or n < 2 or len(last.job_ids) < 2:
            return None
        jobs: list[Job] = list(map(_job_of, statuses))
        # the tenant list (``core.problem._tenant_list``: the known tenants and the jobs', sorted) the same
        if set(map(_tenant_of, jobs)).union(t.id for t in snapshot.tenants) != set(last.tenant_ids):
            return None
        ids = tuple(map(_id_of, jobs))
        if tp.jobs != ids:
            return None
        cached_jobs: list[Job] = self._refs[1]  # type: ignore[assignment]
        take = rows_in(last.job_ids, ids)
        # other job objects than the cached rows' (new ids, -1, never match: the last row is another id)
        fresh = list(
            itertools.compress(range(n), map(operator.is_not, jobs, operator.itemgetter(*take)(cached_jobs)))
        )
        if len(fresh) == n:
            return None
        new = [jobs[i] for i in fresh]
        for i in fresh:
            take[i] = -1
        rows = np.array(take, dtype=np.int64)
        kept = np.flatnonzero(rows >= 0)
        src = rows[kept]
        at = np.array(fresh, dtype=np.int64)

        def stitch(old: np.ndarray, values: list[object], dtype: type) -> np.ndarray:
            out = np.empty((n, *old.shape[1:]), dtype=dtype)
            out[kept] = old[src]
            if len(at):
                out[at] = np.array(values, dtype=dtype).reshape(len(at), *old.shape[1:])
            return out

        types = last.types
        grants_by_id = {g.id: g for g in snapshot.grants}
        programs_by_id = {p.id: p for p in snapshot.programs}
        capped = any(p.rules.tenant_caps for p in programs_by_id.values())
        hierarchical = last.fairness == "tenant"
        # each job's program: the new jobs' for their masks; every job's for the caps and the weights
        program_of: dict[str, Program | None] = {
            j.id: programs_by_id.get(grants_by_id[j.grant].program) if j.grant in grants_by_id else None
            for j in (jobs if capped or hierarchical else new)
        }
        if capped:
            # per-tenant caps: the groups over every job, in job order, as build_problem numbers them
            cap_index, cap_limit = cap_groups(jobs, types, program_of)
        else:
            cap_index, cap_limit = np.full(n, -1, dtype=np.int64), np.zeros((0, len(types)))
        accelerators = snapshot.accelerators or {}
        mask = stitch(mask0, allowed_mask(new, types, accelerators, program_of).tolist(), bool)
        tt = len(types)
        tput = np.zeros((n, tt))
        mcol = [tp.types.index(t) if t in tp.types else -1 for t in types]
        cols = [k for k, c in enumerate(mcol) if c >= 0]
        if cols:  # every job is in the matrix, in order (tested above)
            tput[:, np.array(cols, dtype=np.int64)] = tp.values[
                :, np.array([mcol[k] for k in cols], dtype=np.int64)
            ]
        allowed = mask & (tput > 0)
        gindex = {t: k for k, t in enumerate(last.tenant_ids)}
        scale = stitch(last.scale, [float(j.scale) for j in new], np.float64)
        public = stitch(last.public, [j.public for j in new], bool)
        cap = last.capacity.copy()
        share = np.array(
            [max((p.rules.share_for(t) for p in programs_by_id.values()), default=0.0) for t in types]
        )
        public_demand = (allowed[public] * scale[public, None]).sum(axis=0)
        inf = math.inf
        total = stitch(self._total, [t if (t := j.total_steps) is not None else inf for j in new], np.float64)
        grant_of: list[str | None] | None = None
        if self._grant_of is not None or any(j.grant is not None for j in new):
            grant_of = [j.grant for j in jobs]
        deadline: np.ndarray | None = None
        if self._deadline is not None or any(j.deadline is not None for j in new):
            old = self._deadline if self._deadline is not None else np.full(len(last.job_ids), inf)
            deadline = stitch(old, [j.deadline if j.deadline is not None else inf for j in new], np.float64)
        # steps done: the statuses that are the cached rows' very objects keep theirs
        seen = self._seen
        done = self._done[rows]
        moved = changed_since(statuses, operator.itemgetter(*take)(seen))
        if moved:
            done[moved] = [statuses[i].steps_done for i in moved]
        weight = stitch(last.weight, [j.weight for j in new], np.float64)
        problem = AllocationProblem(
            job_ids=ids,
            types=types,
            capacity=cap,
            scale=scale,
            weight=weight,
            throughput=tput,
            allowed=allowed,
            tenant_ids=last.tenant_ids,
            tenant_index=stitch(last.tenant_index, [gindex[j.tenant] for j in new], np.int64),
            tenant_weight=last.tenant_weight.copy(),
            quota=last.quota.copy(),
            cap_index=cap_index,
            cap_limit=cap_limit,
            public=public,
            public_reserve=np.minimum(np.floor(share * cap), public_demand),
            priority=stitch(last.priority, [j.priority for j in new], np.int64),
            submit_time=stitch(last.submit_time, [j.submit_time for j in new], np.float64),
            price_krw_per_hour=last.price_krw_per_hour.copy(),
            budget_krw=np.full(n, -1, dtype=np.int64)
            if grant_of is None
            else self._budget(snapshot, grant_of),
            remaining_steps=np.where(total > done, total - done, 0.0),
            time_to_deadline=np.full(n, inf) if deadline is None else deadline - snapshot.now,
            horizon_seconds=last.horizon_seconds,
            per_device_levels=last.per_device_levels,
            fair_weight=(
                hierarchical_weights(
                    jobs,
                    _tenant_list(jobs, snapshot.tenants),
                    program_of,
                    np.where(allowed.any(axis=1), np.minimum(scale, cap.max(initial=0.0)), 0.0),
                    float(cap[allowed.any(axis=0)].sum()),
                )
                if hierarchical
                else weight.copy()
            ),
            fairness=last.fairness,
        )
        self._keep(snapshot, statuses, problem, mask, key, jobs, total, grant_of, deadline, done)
        self.moved = (last.job_ids, ids, take, fresh)
        self.carries += 1
        return problem
