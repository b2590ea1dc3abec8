"""The ports: small interfaces between the reconciler and the world.

The live control plane and the simulator plug different adapters into the same reconciler:

    port            live                              simulator / tests
    Clock           SystemClock                       VirtualClock
    Executor        LocalExecutor, RayExecutor        FakeExecutor (progress from throughput)
    SchedulerStore  SqlStore (SQLite, PostgreSQL)     MemoryStore

Each port has one contract test suite (tests/contracts/) that every adapter must pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# the executors' protocol (event kinds, stop causes) is defined with the lifecycle that consumes it
from accelpool.core.lifecycle import EventKind as EventKind
from accelpool.core.lifecycle import ExecutorEvent as ExecutorEvent
from accelpool.core.lifecycle import StopCause as StopCause
from accelpool.core.rounds import Decision, JobStatus, Placement, Snapshot
from accelpool.core.types import Charge, Job, Node


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on the pool's clock."""
        ...

    def sleep_until(self, t: float) -> None:
        """Block (real clock) or jump (virtual clock) until ``t``."""
        ...


@dataclass(frozen=True)
class RunSpec:
    """How to run a job's process: what the executor needs beyond the scheduling facts."""

    command: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str | None = None
    checkpoint_dir: str | None = None
    grace_seconds: float = 30.0
    image: str | None = None  # OCI image (podman), None: the host's filesystem read-only (bubblewrap)
    limits: Mapping[str, float] = field(default_factory=dict)  # memory, processes, cpus, scratch


@dataclass(frozen=True)
class Launch:
    """Start ``job`` on ``placement``. ``steps_per_second`` is the scheduler's expectation (steps/s),
    ``steps_done`` where it resumes from, ``attempt`` counts starts (1 for the first)."""

    job: Job
    placement: Placement
    run: RunSpec
    steps_per_second: float
    steps_done: float = 0.0
    attempt: int = 1


class ExecutorFault(RuntimeError):
    """An executor could not start a job for a reason of its own, not the job's (its state or log directory
    is gone or not writable, an earlier run of the job is still alive, it still runs the job): ``start``
    raises it and the reconciler requeues the job (it waits, reason ``lost: ...``, held: FAULT_HOLD) instead
    of failing it. The message is shown to the job's tenant: it names no host path."""


@runtime_checkable
class Executor(Protocol):
    def start(self, launch: Launch) -> None:
        """Start the job's process(es) on the placement's devices. Must not block for long."""
        ...

    def stop(self, job_id: str, reason: str) -> None:
        """Stop a running job (grace period, then force). Its exit is reported by a later poll()."""
        ...

    def poll(self) -> list[ExecutorEvent]:
        """Events since the last poll, in time order; each job's own events in the order they happened.

        Times are real (an end at the time the job ended), so across polls one job's end may come after
        another's with an earlier time (it was seen later); consumers keep order per job only."""
        ...

    def ack(self, events: Sequence[ExecutorEvent]) -> None:
        """The store has recorded ``events`` (a poll's, committed). Until an end (EXITED, LOST) is acked the
        executor keeps what it needs to report it again: a new executor over the same state (a restart, also
        after ``close()``) reports it once more, so an end is never lost before the store has it. Acking
        events it does not know, or twice, is harmless; poll() does not repeat unacked events in the same
        process (the reconciler keeps unrecorded events and records them first in its next round)."""
        ...

    def active(self) -> set[str]:
        """Jobs the executor is running now (used to reconcile after a restart)."""
        ...

    def logs(self, job_id: str) -> str:
        """Captured output of a job ("" if none)."""
        ...

    def close(self) -> None:
        """Release resources (does not stop jobs that should survive a control-plane restart, and does not
        forget unacked ends)."""
        ...


class SchedulerStore(Protocol):
    """What the reconciler needs from storage. Repositories for the API extend this."""

    def snapshot(self, now: float, round_seconds: float) -> Snapshot:
        """Facts for one round: healthy nodes, active jobs, throughput, tenants, programs, grants, prices."""
        ...

    def record_decision(self, decision: Decision) -> Sequence[Charge]:
        """Persist a round's decision (placements, preemptions, wait reasons) before it is acted on; returns
        the charges booked for the preempted jobs' tails (``core.lifecycle`` decides them). A start of a job
        that is no longer queued is not recorded (``skipped_starts``)."""
        ...

    def skipped_starts(self) -> frozenset[str]:
        """The jobs the last ``record_decision`` was told to start but did not record as running, because
        they were no longer queued (cancelled since the snapshot). The reconciler must not start them."""
        ...

    def record_events(self, events: Sequence[ExecutorEvent]) -> Sequence[Charge]:
        """Apply executor events through ``core.lifecycle.apply_event``: starts (billing begins), progress
        (steps), exits (succeeded/failed), lost jobs (requeued); returns the charges booked for the tails of
        the runs they ended."""
        ...

    def record_charges(self, charges: Sequence[Charge]) -> Sequence[Charge]:
        """Book metered slices through ``core.ledger.book_charge`` (grants never below zero); advances each
        job's metering mark and carry; returns the charges as booked."""
        ...

    def running(self) -> list[JobStatus]:
        """Jobs the store believes are running, with their placements and metering marks."""
        ...

    def run_spec(self, job_id: str) -> RunSpec:
        """How to run the job's process."""
        ...

    def run_specs(self, job_ids: Sequence[str]) -> Mapping[str, RunSpec]:
        """run_spec of several jobs at once (one query on a SQL store); jobs the store lacks are left out."""
        ...

    def prices(self) -> Mapping[str, int]:
        """KRW per device-hour by accelerator type."""
        ...

    def grant_balances(self) -> Mapping[str, int]:
        """KRW left on each grant."""
        ...


@runtime_checkable
class NodeSource(Protocol):
    """Optional: an executor (or anything else) that discovers the pool's nodes itself, e.g. the
    RayExecutor from the Ray cluster. The control plane syncs its node table from ``nodes()``: nodes that
    appear join the pool; nodes that are gone (dead) leave it until they return."""

    def nodes(self) -> list[Node]:
        """The alive nodes with recognised accelerators, now (may do I/O)."""
        ...
