"""The reconciler: one scheduling round, the same for the live control plane and the simulator.

A round, in numbered phases:

  1. Observe   poll the executor; meter exited jobs up to their exit time; record the events (with any a
               failed round left unrecorded), then ack them to the executor (``Executor.ack``).
  2. Meter     charge every still-running job for its devices up to now (usage x price -> Charge).
  3. Decide    take a snapshot and call the pure core: ``decide(snapshot, policy, cache)``.
  4. Record    write the decision to the store (assume, then write, then act).
  5. Act       stop preempted jobs, then start new placements through the executor.

``recover()`` runs once at start-up: it compares what the executor runs with what the store believes
runs, requeues jobs that vanished (reason ``lost``) and stops work the store does not know about.

Billing is exact over a job's run and follows its real running time: a job is billed from the executor's
STARTED event (its process is up; waiting for a placement group or a slow start is free) to the end of its
run. Each slice bills the whole KRW due and keeps the fraction in the job's carry, which the store persists
(``core.ledger``); the event that ends the run (exit, loss, preemption, a move, a cancel) bills the rest,
rounded half up, in the same transaction as the state change (``core.lifecycle``). A run's total is thus its
exact cost rounded half up, and a restart of the control plane loses nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from accelpool.core import ledger
from accelpool.core.allocation import Allocation, AllocationProblem, Policy
from accelpool.core.round_config import RoundConfig
from accelpool.core.rounds import DecideCache, Decision, JobStatus, Snapshot, decide
from accelpool.core.sites import price_for
from accelpool.core.types import Charge, JobState, Site
from accelpool.ports import (
    Clock,
    EventKind,
    Executor,
    ExecutorEvent,
    ExecutorFault,
    Launch,
    RunSpec,
    SchedulerStore,
    StopCause,
)

log = logging.getLogger(__name__)

MAX_REFUSALS = 3  # rounds in a row the store may refuse a job's events before they go in a plain form
FAULT_HOLD = (
    30.0,
    3600.0,
)  # a job the executor could not start waits 30 s, doubled each fault in a row, to 1 h


@dataclass
class RoundReport:
    """What one round did, for metrics and the simulator."""

    decision: Decision
    events: list[ExecutorEvent]
    charges: list[Charge]
    snapshot: Snapshot


class ReusingPolicy:
    """A policy that reuses its last allocation while the problem has not changed (Gavel does the same:
    it recomputes only when jobs arrive or leave).

    "Unchanged" means the same jobs, types, capacities, speeds, constraints, rules and tenants, the same
    affordability (which types each job's grant can pay for over the horizon) and the same type each
    running job holds (``keep_type``: fifo keeps every running job on it, max-min-fairness under leases
    prefers it; the same jobs held elsewhere get another allocation). Steps left and spent money
    drift every round and are not part of the key; problems with deadlines are never reused (deadline
    policies depend on time left). Placement still checks every grant each round.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.calls = 0
        self.reused = 0
        self._key: bytes | None = None
        self._last: Allocation | None = None
        self._problem: AllocationProblem | None = None

    @staticmethod
    def key(p: AllocationProblem) -> bytes | None:
        if np.isfinite(p.time_to_deadline).any():
            return None
        cost = p.price_krw_per_hour[None, :] * p.scale[:, None] * p.horizon_seconds / 3600.0
        afford = (p.budget_krw[:, None] < 0) | (cost <= p.budget_krw[:, None])
        h = hashlib.blake2b(digest_size=20)
        h.update("\x1f".join(p.job_ids).encode())
        h.update("\x1f".join(p.types + p.tenant_ids).encode())
        for a in (
            p.capacity,
            p.scale,
            p.weight,
            p.fair_weight,
            p.throughput,
            p.allowed,
            p.tenant_index,
            p.tenant_weight,
            p.quota,
            p.tenant_cap,
            p.cap_index,
            p.cap_limit,
            p.public,
            p.public_reserve,
            p.priority,
            p.price_krw_per_hour,
            afford,
            p.keep_type,
        ):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.digest()

    _STATIC = (
        "capacity",
        "scale",
        "weight",
        "fair_weight",
        "throughput",
        "allowed",
        "tenant_index",
        "tenant_weight",
        "quota",
        "tenant_cap",
        "cap_index",
        "cap_limit",
        "public",
        "public_reserve",
        "priority",
        "price_krw_per_hour",
    )

    def _same_arrays(self, p: AllocationProblem) -> bool:
        """True when ``p`` shares every keyed array (the very objects) and the budgets of the last problem,
        as the core's problem cache hands out while nothing changed: the key need not be hashed again."""
        last = self._problem
        if last is None or p.job_ids is not last.job_ids or p.types is not last.types:
            return False
        if p.tenant_ids is not last.tenant_ids or p.horizon_seconds != last.horizon_seconds:
            return False
        for a in self._STATIC:
            if getattr(p, a) is not getattr(last, a):
                return False
        ttd = p.time_to_deadline
        # the very same read-only array as the last problem's, which had no deadline (its key was not None)
        same = ttd is last.time_to_deadline and not ttd.flags.writeable
        if not same and np.isfinite(ttd).any():
            return False
        if p.keep_type is not last.keep_type and not np.array_equal(p.keep_type, last.keep_type):
            return False
        return p.budget_krw is last.budget_krw or bool(np.array_equal(p.budget_krw, last.budget_krw))

    def __call__(self, problem: AllocationProblem) -> Allocation:
        self.calls += 1
        if self._last is not None and self._key is not None and self._same_arrays(problem):
            self.reused += 1
            self._problem = problem
            return self._last
        key = self.key(problem)
        if key is not None and key == self._key and self._last is not None:
            self.reused += 1
            self._problem = problem
            return self._last
        alloc = self.policy(problem)
        self._key, self._last, self._problem = key, alloc, problem
        return alloc


class Reconciler:
    def __init__(
        self,
        store: SchedulerStore,
        executor: Executor,
        clock: Clock,
        policy: Policy,
        *,
        round_seconds: float = 360.0,
        on_round: Callable[[RoundReport], None] | None = None,
        config: RoundConfig | None = None,
        checkpoint_root: str | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.clock = clock
        self.policy = policy
        self.round_seconds = float(round_seconds)
        self.config = config if config is not None else RoundConfig()
        self.on_round = on_round
        self.checkpoint_root = checkpoint_root  # jobs without a checkpoint_dir get <root>/<job id>
        self._attempts: dict[str, int] = {}
        self._decide_cache = DecideCache()  # the core's reusable work between rounds (it keeps none itself)
        self._lease_end: float | None = None  # when the current lease ends (None: no lease yet)
        self._run_started: dict[str, float] = {}  # running job -> when its current run began
        self._unrecorded: list[ExecutorEvent] = []  # polled events a failed round did not record
        self._refusals: dict[str, int] = {}  # job -> rounds in a row the store refused its events
        self._faults: dict[str, tuple[int, float]] = {}  # job -> (executor faults in a row, held until)

    # -- phases ---------------------------------------------------------------------------------------

    def step(self) -> RoundReport:
        """Run one round at the clock's current time."""
        now = self.clock.now()
        # 1. observe (the store bills the tails of the runs they end); a round whose record fails keeps its
        # events and records them first in the next round; the executor forgets an end once acked
        events = self._unrecorded + self.executor.poll()
        self._unrecorded = events
        charges = self._record_events(events)  # acks what it recorded
        ended = {e.job for e in self._unrecorded if e.kind in (EventKind.EXITED, EventKind.LOST)}
        meter = getattr(self.store, "meter_running", None)  # 2. meter (the memory store: in one pass)
        more = (  # a job whose end the store refused is not billed on meanwhile
            list(meter(now))
            if meter is not None and not ended
            else list(self.store.record_charges(self._meter_running(now, ended)))
        )
        snapshot = self._with_lease(self.store.snapshot(now, self.round_seconds), now)  # 3. decide
        decision = decide(snapshot, self.policy, self._decide_cache, self.config)
        self._note_runs(decision, now)
        tails = list(self.store.record_decision(decision))  # 4. record (preempted runs' tails billed)
        self._act(decision, snapshot)  # 5. act
        report = RoundReport(decision, events, charges + more + tails, snapshot)
        if self.on_round is not None:
            self.on_round(report)
        return report

    def run(self, rounds: int | None = None, until: Callable[[], bool] | None = None) -> None:
        """Run rounds every ``round_seconds`` until ``rounds`` are done or ``until()`` is true."""
        done = 0
        while (rounds is None or done < rounds) and not (until is not None and until()):
            start = self.clock.now()
            self.step()
            done += 1
            self.clock.sleep_until(start + self.round_seconds)

    def recover(self) -> list[str]:
        """Reconcile executor and store after a restart; returns the ids of jobs found lost."""
        active = self.executor.active()
        believed = {s.job.id for s in self.store.running()}
        now = self.clock.now()
        lost = sorted(believed - active)
        if lost:
            self.store.record_events(
                [
                    ExecutorEvent(
                        j, EventKind.LOST, now, reason="lost: not running after restart", cause=StopCause.LOST
                    )
                    for j in lost
                ]
            )
        for job_id in believed & active:  # still running: its minimum run time starts again (conservative)
            self._run_started.setdefault(job_id, now)
        for stray in sorted(active - believed):
            log.warning("stopping job %s: running but not recorded as running", stray)
            self.executor.stop(stray, "unknown to the store")
        return lost

    # -- helpers --------------------------------------------------------------------------------------

    @property
    def unrecorded_jobs(self) -> set[str]:
        """Jobs with executor events a failed round left unrecorded (the service's audit leaves them be: an
        exit the executor reported is not a job gone missing)."""
        return {e.job for e in self._unrecorded}

    def _record_events(self, events: list[ExecutorEvent]) -> list[Charge]:
        """Record ``events`` and ack what was recorded; what was not is kept for the next round. A database
        error (OperationalError) fails the round with all kept. Where the store refuses the batch otherwise,
        each job's events are recorded alone, in order, so one it refuses keeps back only its own job's
        events and the round goes on for everyone else (a poison event no longer stops the pool: a review's
        NUL in a reason, which PostgreSQL refuses, failed every round). After ``MAX_REFUSALS`` rounds in a
        row a job's events go in a plain form (kind, time, exit code, cause; no steps, a reason of our own),
        so its end is recorded and its devices come free; until then it is not billed past its end."""
        if not events:
            return []
        try:
            recorded = list(self.store.record_events(events))
        except Exception as exc:
            # the database itself (a lock held past its wait, a lost connection: DB-API's OperationalError,
            # by name: sqlalchemy stays in storage/) would make every job's record wait again: not split
            if any(c.__name__ == "OperationalError" for c in type(exc).__mro__):
                raise
            refusal: Exception | None = exc
        else:
            self._unrecorded = []
            self._refusals.clear()
            self._ack(events)
            return recorded
        jobs = list(dict.fromkeys(e.job for e in events))
        if len(jobs) > 1:  # each job's alone; one job's batch was refused already
            log.exception("recording %d executor event(s) failed: recording each job's alone", len(events))
            refusal = None
        kept: list[ExecutorEvent] = []
        done: list[ExecutorEvent] = []
        charges: list[Charge] = []
        for job in jobs:
            mine = [e for e in events if e.job == job]
            try:
                if refusal is not None:
                    raise refusal
                charges += self.store.record_events(mine)
                done += mine
                self._refusals.pop(job, None)
                continue
            except Exception as exc:
                refused = self._refusals[job] = self._refusals.get(job, 0) + 1
                log.exception(
                    "job %s: the store refused its %d event(s) (%d time(s))", job, len(mine), refused
                )
                plain = _plain(mine, exc) if refused >= MAX_REFUSALS else None
            if plain is not None:
                try:
                    charges += self.store.record_events(plain)
                    log.error(
                        "job %s: its events recorded in a plain form (%d of them dropped)",
                        job,
                        len(mine) - len(plain),
                    )
                    done += mine
                    self._refusals.pop(job, None)
                    continue
                except Exception:
                    log.exception("job %s: the plain form of its events was refused too", job)
            kept += mine
        self._unrecorded = kept
        self._ack(done)
        if kept:
            log.error(
                "%d executor event(s) of %d job(s) kept: tried again next round",
                len(kept),
                len({e.job for e in kept}),
            )
        return charges

    def _ack(self, events: list[ExecutorEvent]) -> None:
        """Tell the executor the store has recorded ``events``. A failed ack only delays forgetting: the
        executor keeps the ends' state, and a restarted one reports them again (the store ignores repeats)."""
        if not events:
            return
        try:
            self.executor.ack(events)
        except Exception:  # the events are recorded: the round goes on
            log.exception("acknowledging %d executor event(s) failed", len(events))

    def _with_lease(self, snapshot: Snapshot, now: float) -> Snapshot:
        """The snapshot with the lease facts: is this round a lease boundary, when did each run begin; and
        without the queued jobs held after an executor fault (``FAULT_HOLD``: one that failed every start,
        an earlier run's wrapper stuck alive, used to be placed, fail and be requeued every round, its
        devices idle for the round each time).

        The first round and every round at or after the current lease's end is a boundary, and starts a
        new lease of ``config.lease_seconds``; without a lease (per-round re-decision) every round is one."""
        lease = self.config.lease_seconds
        jobs = snapshot.jobs
        held: set[str] = set()
        if self._faults:  # a job held after an executor fault is left out of the round until its hold ends
            held = {j for j, (_n, until) in self._faults.items() if until > now}
            for j in [j for j, (_n, until) in self._faults.items() if until + FAULT_HOLD[1] < now]:
                del self._faults[j]  # long past its hold (cancelled, or started elsewhere): forgotten
        # a job whose end the store refused has ended: left out, neither kept (its devices are free) nor
        # preempted (which would bill its run to now and requeue a finished job: a review)
        gone = {e.job for e in self._unrecorded if e.kind is EventKind.EXITED or e.kind is EventKind.LOST}
        if held or gone:
            queued = JobState.QUEUED
            jobs = tuple(
                s for s in jobs if s.job.id not in gone and (s.state is not queued or s.job.id not in held)
            )
        if lease is None:
            boundary = True
        elif self._lease_end is None or now >= self._lease_end - 1e-9:
            boundary = True
            self._lease_end = now + lease
        else:
            boundary = False
        # dataclasses.replace without its per-field work (Snapshot has no __post_init__): once a round
        fresh = object.__new__(type(snapshot))
        fresh.__dict__.update(snapshot.__dict__)
        fresh.__dict__.update(
            lease_boundary=boundary, run_started=dict(self._run_started), lease_end=self._lease_end, jobs=jobs
        )
        return fresh

    def _note_runs(self, decision: Decision, now: float) -> None:
        """Remember when each run began: kept runs keep their start, new ones start now, the rest end."""
        before = self._run_started
        runs = {p.job: before.get(p.job, now) for p in decision.keep}
        for p in decision.start:
            runs[p.job] = now
        self._run_started = runs

    def _meter_running(self, now: float, ended: set[str] | frozenset[str] = frozenset()) -> list[Charge]:
        """A slice up to ``now`` for every running job whose process has started (``core.ledger.meter``,
        through the job's carry as the store holds it), but those in ``ended`` (an end the store has not
        taken yet: its tail is billed up to the end when it does); the store books them on its locked rows."""
        statuses = self.store.running()
        if not statuses:
            return []
        prices = self.store.prices()
        sites = self._sites()
        out: list[Charge] = []
        for s in statuses:
            p = s.placement
            if p is None or s.job.id in ended:
                continue
            charge = ledger.meter(s, now, price_for(prices, sites.get(p.site), p.accelerator), final=False)
            if charge is not None:
                out.append(charge)
        return out

    def _checkpoint_dir(self, job_id: str, run: RunSpec) -> RunSpec:
        """The run with its checkpoint directory: the spec's, or ``<checkpoint_root>/<job id>``, the same on
        every attempt, so ACCELPOOL_CHECKPOINT_DIR names one directory across attempts. The executor creates
        it (the sandbox: owned by the job's uid when it creates it; executors/sandbox.py)."""
        root = self.checkpoint_root
        if run.checkpoint_dir or root is None:
            return run
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in job_id).lstrip(".") or "_"
        return dataclasses.replace(run, checkpoint_dir=os.path.join(root, safe))

    def _store_attempts(self, job_ids: set[str]) -> Mapping[str, int]:
        """The store's attempt count of each job (a SQL store keeps one: right after a scheduler restart,
        where this reconciler's own count starts again); {} where the store has none or the read fails."""
        get = getattr(self.store, "attempts", None)
        if get is None or not job_ids:
            return {}
        try:
            return dict(get(sorted(job_ids)))
        except Exception:  # the reconciler's own count is used instead
            log.exception("attempt counts of %d starts: read failed", len(job_ids))
            return {}

    def _sites(self) -> dict[str, Site]:
        """The store's sites (each site's own prices apply to jobs running there); none if it has none."""
        get = getattr(self.store, "sites", None)
        return {} if get is None else {s.id: s for s in get()}

    def _act(self, decision: Decision, snapshot: Snapshot) -> None:
        """Stop the preempted, then start the placed jobs. Each job is acted on alone: a job whose stop or
        start raises (a nonexistent workdir, a NUL byte in its env, an executor error) does not stop the
        round. A job that cannot start fails at once with a reason naming the cause; it is never billed
        (its metering mark is the decision time, and it never runs). A start the executor refuses for a
        reason of its own (``ExecutorFault``: its state dir is gone) requeues the job unbilled instead. A start the store did not record (the
        job was cancelled between the snapshot and the record) is not carried out."""
        for job_id, reason in decision.preempt:
            try:
                self.executor.stop(job_id, reason)
            except Exception:  # one job's stop must not keep the others from starting
                log.exception("job %s: stop failed", job_id)
        if not decision.start:
            return
        skipped = self.store.skipped_starts()  # cancelled since the snapshot: the store did not record them
        starting = {p.job for p in decision.start} - skipped
        m = snapshot.throughput
        row = m.index
        statuses = _statuses_of(snapshot, starting, row)
        failed: list[ExecutorEvent] = []
        try:  # all run specs in one query; a job whose spec this misses is read alone below
            specs = self.store.run_specs([p.job for p in decision.start if p.job in starting])
        except Exception:  # a failed batch read must not keep the jobs from starting: each is read alone
            log.exception("run specs of %d starts: batch read failed", len(starting))
            specs = {}
        counted = self._store_attempts(starting)
        for p in decision.start:
            if p.job in skipped:
                log.info(
                    "job %s: not started, it is no longer queued (cancelled since the round began)", p.job
                )
                continue
            s = statuses[p.job]
            k = m.types.index(p.accelerator) if p.accelerator in m.types else -1
            tput = float(m.values[row[p.job], k]) if p.job in row and k >= 0 else 0.0
            self._attempts[p.job] = counted.get(p.job) or self._attempts.get(p.job, 0) + 1
            try:
                spec = specs.get(p.job)
                run = self._checkpoint_dir(p.job, spec if spec is not None else self.store.run_spec(p.job))
                self.executor.start(Launch(s.job, p, run, tput, s.steps_done, self._attempts[p.job]))
                self._faults.pop(p.job, None)
            except ExecutorFault as e:  # the executor's own trouble, not the job's: requeued, held a while
                n = self._faults.get(p.job, (0, 0.0))[0] + 1
                hold = min(FAULT_HOLD[0] * 2 ** (n - 1), FAULT_HOLD[1])
                self._faults[p.job] = (n, decision.now + hold)
                log.error("job %s: the executor could not start it, requeued for %.0f s: %s", p.job, hold, e)
                why = f"lost: {_cause(e)}; the executor's trouble, not the job's: tried again in {hold:.0f} s"
                failed.append(
                    ExecutorEvent(p.job, EventKind.LOST, decision.now, reason=why, cause=StopCause.LOST)
                )
            except Exception as e:
                log.warning("job %s: could not start: %s", p.job, _cause(e))
                why = f"could not start: {_cause(e)}"
                failed.append(
                    ExecutorEvent(
                        p.job, EventKind.EXITED, decision.now, reason=why, cause=StopCause.START_FAILED
                    )
                )
        if failed:
            self.store.record_events(failed)


def _plain(events: list[ExecutorEvent], exc: BaseException) -> list[ExecutorEvent]:
    """``events`` of one job as the store surely takes them: the ones that start or end a run, with their
    kind, time, exit code and cause, but no steps, and a reason of our own naming the refusal (progress is
    dropped: the job's steps stay as last recorded)."""
    why = f"its executor's report could not be recorded ({type(exc).__name__})"
    return [
        ExecutorEvent(
            e.job, e.kind, e.time, exit_code=e.exit_code, reason=why if e.reason else "", cause=e.cause
        )
        for e in events
        if e.kind is not EventKind.PROGRESS
    ]


def _statuses_of(snapshot: Snapshot, ids: set[str], row: Mapping[str, int]) -> dict[str, JobStatus]:
    """The snapshot's statuses of ``ids``: found by the throughput matrix's row of each job where the
    snapshot lists its jobs in the matrix's order (the memory store's does), else by a pass over them."""
    jobs = snapshot.jobs
    found: dict[str, JobStatus] = {}
    for j in ids:
        i = row.get(j)
        if i is None or i >= len(jobs) or jobs[i].job.id != j:
            return {s.job.id: s for s in jobs if s.job.id in ids}
        found[j] = jobs[i]
    return found


def _cause(e: BaseException) -> str:
    """A one-line description of an exception for a job's reason (its message, with its type unless it is one
    of accelpool's own, at most 300 chars)."""
    text = " ".join(str(e).split()) or type(e).__name__
    # accelpool's own errors are written for the tenant (a sandbox refusal names the field and the limit);
    # anything else says what it is (a tenant's test: "could not start: SandboxError: limits.processes ...")
    if type(e).__name__ not in text and not (type(e).__module__.startswith("accelpool") and str(e).strip()):
        text = f"{type(e).__name__}: {text}"
    return text[:300]
