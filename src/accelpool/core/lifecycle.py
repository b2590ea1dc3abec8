"""The job lifecycle: every change of a job's state, and the money it costs, decided in one pure function.

    apply_event(status, event, price) -> Outcome(status', charges, records, ...)

Stores hold the job (SqlStore: under its row lock), call ``apply_event`` and persist the outcome; they
decide nothing themselves. Who may cause each event:

    event        caused by                      from        to
    PLACE        the scheduler's decision       queued      running   (not billed until STARTED)
    STARTED      the executor (process is up)   running     running   (billing starts: the mark)
    PROGRESS     the executor, or the job (API) any active   same      (steps; a first sign of life
                                                                        starts billing if STARTED was missed;
                                                                        the first after STARTED measures the
                                                                        job's restart cost)
    EXITED       the executor                   running     succeeded (cause COMPLETED, exit code 0)
                                                running     failed    (FAILED, START_FAILED)
                                                running     running   (REQUESTED: a stop the scheduler
                                                                        asked for, already recorded)
    LOST         the executor (node or process) running     queued    (via preempted; requeued)
    PREEMPT      the scheduler's decision       running     queued    (via preempted; requeued)
    CANCEL       a user (API, CLI)              queued      cancelled
                                                running     cancelled (billed up to the cancel)

Terminal states (succeeded, failed, cancelled) take no event, but one: a job cancelled while placed, before
its STARTED event reached the store, keeps its placement; the executor's late STARTED then bills from the
start up to the cancel (any other report closes the run unbilled). Every event that ends a run bills its
tail (from the mark to the event, rounded half up with the carry: ``core.ledger``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Any

from accelpool.core import ledger
from accelpool.core.rounds import JobStatus, Placement
from accelpool.core.types import Charge, JobState

REASON_CHARS = 2000  # a reason is a line for people: longer ones are cut (a job's exception, sacct's text)


def clean_reason(reason: str) -> str:
    """``reason`` as every store can keep it and every page can show it: control characters (a NUL, which
    PostgreSQL refuses in text and so made a job's end unrecordable; escape sequences) become U+FFFD, line
    breaks and tabs stay, and it is cut to ``REASON_CHARS``."""
    if reason.isprintable() and len(reason) <= REASON_CHARS:
        return reason
    out = "".join(c if c.isprintable() or c in "\n\t" else "\ufffd" for c in reason[:REASON_CHARS])
    return out if len(reason) <= REASON_CHARS else out + " [cut]"


class EventKind(enum.StrEnum):
    """What an executor observed about a job's process."""

    STARTED = "started"
    PROGRESS = "progress"
    EXITED = "exited"
    LOST = "lost"


class StopCause(enum.StrEnum):
    """Why a run ended."""

    COMPLETED = "completed"  # exited with code 0
    FAILED = "failed"  # exited non-zero on its own
    START_FAILED = "start-failed"  # the executor could not start it
    REQUESTED = "requested"  # stopped because the scheduler or a user asked (preemption, move, cancel)
    NODE_LOST = "node-lost"  # its node left the pool
    LOST = "lost"  # the process vanished (no exit code), or was not running after a restart
    PREEMPTED = "preempted"  # the scheduler's decision took its devices
    CANCELLED = "cancelled"  # a user cancelled it


@dataclass(frozen=True)
class ExecutorEvent:
    """Something an executor observed. ``steps`` is cumulative; ``exit_code`` 0 means success; ``cause``
    says why a run ended (derived from the kind and exit code when the executor does not say)."""

    job: str
    kind: EventKind
    time: float
    steps: float | None = None
    exit_code: int | None = None
    reason: str = ""
    cause: StopCause | None = None

    def __post_init__(self) -> None:
        if self.reason and (len(self.reason) > REASON_CHARS or not self.reason.isprintable()):
            object.__setattr__(self, "reason", clean_reason(self.reason))

    def stop_cause(self) -> StopCause | None:
        if self.cause is not None:
            return self.cause
        if self.kind is EventKind.EXITED:
            return StopCause.COMPLETED if self.exit_code == 0 else StopCause.FAILED
        if self.kind is EventKind.LOST:
            return StopCause.LOST
        return None


class Command(enum.StrEnum):
    """What the scheduler or a user does to a job."""

    PLACE = "place"
    PREEMPT = "preempt"
    CANCEL = "cancel"


@dataclass(frozen=True)
class SchedulerEvent:
    job: str
    kind: Command
    time: float
    reason: str = ""
    placement: Placement | None = None

    def __post_init__(self) -> None:
        if self.reason and (len(self.reason) > REASON_CHARS or not self.reason.isprintable()):
            object.__setattr__(self, "reason", clean_reason(self.reason))


Event = ExecutorEvent | SchedulerEvent


@dataclass(frozen=True)
class Record:
    """One line of a job's history (a job_events row)."""

    time: float
    state: JobState
    reason: str
    cause: StopCause | None = None


@dataclass(frozen=True)
class Outcome:
    """What an event did: the job's new status, the charges to book (not yet capped by the grant; book
    them in order through ``ledger.cap``), the history lines to append, and the bookkeeping fields."""

    status: JobStatus
    charges: tuple[Charge, ...] = ()
    records: tuple[Record, ...] = ()
    preemptions: int = 0  # to add to the job's count
    started_at: float | None = None  # the job's first start, when it has none yet
    ended_at: float | None = None  # the job's end time
    applied: bool = True  # False: the event changed nothing (e.g. a PLACE of a job no longer queued)
    attempts: int = 0  # to add to the job's count of runs placed
    ended: bool = False  # the job finished with this event: it leaves the active jobs
    hold_krw: int | None = None  # the job's hold on its grant after the event (None: unchanged)
    stop_process: bool = False  # a process of the job may be running: the caller must stop it

    @property
    def reason(self) -> str | None:
        """The job's current reason after the event (None: unchanged)."""
        return self.records[-1].reason if self.records else None


_STATUS_FIELDS = frozenset(f.name for f in fields(JobStatus))


def _with(status: JobStatus, **changes: Any) -> JobStatus:
    """``dataclasses.replace(status, **changes)`` without the constructor: a state change runs for every
    job that starts, stops or reports, every round of a simulation. JobStatus is a frozen dataclass with
    no ``__post_init__`` and no field outside ``__init__``, so ``replace`` only copies every field and
    sets the changed ones; this copies the instance's dict and sets them the same way (the same object:
    ``==``, ``repr``, ``hash``; tests/core/test_lifecycle_with.py). A name that is not a field is a
    TypeError, as in ``replace``."""
    if not _STATUS_FIELDS.issuperset(changes):
        raise TypeError(f"JobStatus has no field(s) {sorted(set(changes) - _STATUS_FIELDS)}")
    new = object.__new__(JobStatus)
    d = new.__dict__
    d.update(status.__dict__)
    d.update(changes)
    return new


_new = object.__new__


def _outcome(
    status: JobStatus,
    charges: tuple[Charge, ...] = (),
    records: tuple[Record, ...] = (),
    preemptions: int = 0,
    started_at: float | None = None,
    ended_at: float | None = None,
    applied: bool = True,
    attempts: int = 0,
    ended: bool = False,
    hold_krw: int | None = None,
    stop_process: bool = False,
) -> Outcome:
    """``Outcome(...)`` (the same arguments and defaults) filled in directly: the frozen constructor sets
    each of its 11 fields with one ``object.__setattr__``, for every event of every job. Outcome has no
    ``__post_init__`` and every field is in ``__init__``: the same object (``==``, ``vars``, ``repr``;
    tests/core/test_lifecycle_with.py)."""
    out = _new(Outcome)
    out.__dict__.update(
        status=status,
        charges=charges,
        records=records,
        preemptions=preemptions,
        started_at=started_at,
        ended_at=ended_at,
        applied=applied,
        attempts=attempts,
        ended=ended,
        hold_krw=hold_krw,
        stop_process=stop_process,
    )
    return out


def _record(time: float, state: JobState, reason: str, cause: StopCause | None = None) -> Record:
    """``Record(...)`` filled in directly, as ``_outcome``."""
    rec = _new(Record)
    rec.__dict__.update(time=time, state=state, reason=reason, cause=cause)
    return rec


def waits(state: JobState) -> bool:
    """Whether a job in ``state`` is waiting, so a round's wait reason (and queue position) applies to it; a
    job that started or ended since the round's snapshot keeps the reason its own event gave it."""
    return state is JobState.QUEUED


WAITING = frozenset(s for s in JobState if waits(s))  # the states ``waits`` accepts (for the stores' filters)


def apply_event(status: JobStatus, event: Event, price_krw_per_hour: int = 0) -> Outcome:
    """The job after ``event``; ``price_krw_per_hour`` prices the tail of a run the event ends."""
    if status.state.terminal:
        if status.placement is not None and isinstance(event, ExecutorEvent):
            return _late_start(status, event, price_krw_per_hour)
        return _same(status)
    if isinstance(event, SchedulerEvent):
        return _command(status, event, price_krw_per_hour)
    return _observed(status, event, price_krw_per_hour)


def _command(status: JobStatus, e: SchedulerEvent, price: int) -> Outcome:
    running = status.state is JobState.RUNNING
    if e.kind is Command.PLACE:
        if status.state is not JobState.QUEUED or e.placement is None:
            return _same(status)
        p = e.placement
        new = _with(status, state=JobState.RUNNING, placement=p, metered_until=None, carry=ledger.ZERO)
        why = f"placed on {p.count} x {p.accelerator}"
        return _outcome(new, records=(_record(e.time, JobState.RUNNING, why),), attempts=1)
    if e.kind is Command.PREEMPT:
        if not running:
            return _same(status)
        return _requeue(
            status, e.time, e.reason, StopCause.PREEMPTED, price, f"requeued after preemption ({e.reason})"
        )
    # A round may have billed the run past the moment the cancel was asked for (it locked the job first):
    # the process ran until then, so the cancel takes effect at the job's mark, never before it.
    t = e.time if status.metered_until is None else max(e.time, status.metered_until)
    new, tail = _end_run(status, JobState.CANCELLED, t, price)
    if running and status.metered_until is None:
        # its process may have started without the scheduler having seen it yet: keep the placement until
        # the executor reports the start (billed up to the cancel) or the end (``_late_start``)
        new = _with(new, placement=status.placement, metered_until=t)
    record = _record(t, JobState.CANCELLED, e.reason, StopCause.CANCELLED)
    return _finished(new, tail, record, ended_at=t, stop_process=running)


def _observed(status: JobStatus, e: ExecutorEvent, price: int) -> Outcome:
    running = status.state is JobState.RUNNING
    if e.kind is EventKind.PROGRESS:
        return _progress(status, e)
    if not running:
        return _same(status)  # a process of a run that already ended (requeued, cancelled)
    if e.kind is EventKind.STARTED:
        if status.metered_until is not None:
            return _same(status)
        return _outcome(_with(status, metered_until=e.time, attempt_started=e.time), started_at=e.time)
    cause = e.stop_cause()
    if e.kind is EventKind.LOST:
        return _requeue(status, e.time, e.reason or "lost", cause, price, "requeued")
    if cause is StopCause.REQUESTED:
        return _same(status)  # a stop we asked for: the decision or the cancel recorded it already
    if cause is StopCause.COMPLETED:
        new, tail = _end_run(status, JobState.SUCCEEDED, e.time, price)
        return _finished(new, tail, _record(e.time, JobState.SUCCEEDED, "exited 0", cause), ended_at=e.time)
    new, tail = _end_run(status, JobState.FAILED, e.time, price)
    why = e.reason or f"exit code {e.exit_code}"
    return _finished(new, tail, _record(e.time, JobState.FAILED, why, cause), ended_at=e.time)


def _same(status: JobStatus) -> Outcome:
    """The event changed nothing."""
    return _outcome(status, applied=False)


def _finished(
    new: JobStatus,
    tail: tuple[Charge, ...],
    record: Record,
    *,
    ended_at: float | None = None,
    stop_process: bool = False,
) -> Outcome:
    """The job ended (``new`` is terminal): it leaves the active jobs and its hold on its grant is released."""
    hold = ledger.hold_after(new.state)
    return _outcome(
        new, tail, (record,), ended_at=ended_at, ended=True, hold_krw=hold, stop_process=stop_process
    )


def _late_start(status: JobStatus, e: ExecutorEvent, price: int) -> Outcome:
    """A run cancelled before its start was seen (it keeps its placement; its mark is the cancel time):
    a start reported now bills from the start up to the cancel; any other report closes it unbilled."""
    end = status.metered_until
    if e.kind is EventKind.PROGRESS:
        return _same(status)
    if e.kind is not EventKind.STARTED or end is None or e.time >= end:
        return _outcome(_with(status, placement=None))
    run = _with(status, state=JobState.RUNNING, metered_until=e.time)
    new, tail = _end_run(run, status.state, end, price)
    return _outcome(new, tail, started_at=e.time)


def _progress(status: JobStatus, e: ExecutorEvent) -> Outcome:
    new = status
    if e.steps is not None and e.steps > status.steps_done:
        new = _with(new, steps_done=float(e.steps))
    started = None
    if new.state is JobState.RUNNING and new.metered_until is None:
        new, started = _with(new, metered_until=e.time), e.time  # alive, though STARTED was not seen
    elif new.state is JobState.RUNNING and (t0 := new.attempt_started) is not None and e.time >= t0:
        # the attempt's first progress report: its restart cost, measured (core.rounds' preemption gate)
        new = _with(new, attempt_started=None, restart_measured=e.time - t0)
    return _outcome(new, started_at=started)


def _requeue(
    status: JobStatus, t: float, reason: str, cause: StopCause | None, price: int, requeued: str
) -> Outcome:
    new, tail = _end_run(status, JobState.QUEUED, t, price)
    records = (_record(t, JobState.PREEMPTED, reason, cause), _record(t, JobState.QUEUED, requeued))
    return _outcome(new, tail, records, preemptions=1)


def _end_run(
    status: JobStatus, state: JobState, t: float, price: int
) -> tuple[JobStatus, tuple[Charge, ...]]:
    """The job off its devices at ``t``: its tail billed (through the carry, rounded half up)."""
    tail = ledger.meter(status, t, price, final=True) if status.state is JobState.RUNNING else None
    seconds_on = status.seconds_on
    if tail is not None:
        seconds_on = dict(seconds_on)
        seconds_on[tail.accelerator] = seconds_on.get(tail.accelerator, 0.0) + (tail.end - tail.start)
    mark = tail.end if tail is not None else status.metered_until
    new = _with(
        status,
        state=state,
        placement=None,
        metered_until=mark,
        carry=ledger.ZERO,
        seconds_on=seconds_on,
        attempt_started=None,
    )
    return new, (() if tail is None else (tail,))
