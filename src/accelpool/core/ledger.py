"""The ledger: the one place that decides what a job's usage costs and what is booked against its grant.

Both stores (MemoryStore for the simulator, SqlStore for the live service) call these functions on the job
and grant state they hold (SqlStore: under the rows' locks) and persist the result; neither decides money
itself. Rules (amounts in integer KRW; the exact amount is a Fraction, see ``core.accounting``):

- a job is metered from its metering *mark* (the time its process started, then the end of its last
  slice) up to a time; a job whose process has not started (no mark) costs nothing;
- slices accumulate in the job's *carry* (the exact amount metered but not yet billed, under 1 KRW): while
  it runs the whole KRW is billed and the fraction carried; the slice that ends its run (exit, loss,
  preemption, cancel) rounds the rest half up and leaves no carry;
- a charge proposed for time before the job's mark (a round racing a cancel) books only the part after the
  mark, priced again through the carry;
- a grant never goes below zero: a charge is capped at what its grant has left (``cap``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction

from accelpool.core.accounting import due_in_units, exact_krw, meter_slice, settle
from accelpool.core.errors import Conflict, InsufficientFunds, MissingReference
from accelpool.core.rounds import JobStatus
from accelpool.core.types import Charge, JobState

ZERO = Fraction(0)


@dataclass(frozen=True)
class Booking:
    """What to persist for one charge: the charge (before the grant's cap), and the job's metering state after."""

    charge: Charge
    mark: float
    carry: Fraction
    seconds_on: Mapping[str, float]


def meter(status: JobStatus, until: float, price_krw_per_hour: int, *, final: bool) -> Charge | None:
    """The charge for a running job's devices from its mark up to ``until`` (through its carry), not yet
    capped by the grant; ``charge.carry`` is the job's carry after it. None when there is nothing to bill
    (no placement, not started, nothing due)."""
    p, start = status.placement, status.metered_until
    if p is None or start is None:
        return None
    end = max(until, start)
    if end == start and not final:
        return None
    job = status.job
    charge, left = meter_slice(
        job=job.id,
        tenant=job.tenant,
        grant=job.grant,
        placement=p,
        start=start,
        end=end,
        price_krw_per_hour=price_krw_per_hour,
        grant_remaining_krw=None,
        carry=status.carry or None,
        final=final,
    )
    if charge is None:
        return None
    c = charge  # the constructor, not dataclasses.replace: this runs for every running job every round
    return Charge(
        c.job, c.tenant, c.grant, c.accelerator, c.device_seconds, c.amount_krw, c.start, c.end, left, c.site
    )


def cap(charge: Charge, grant_remaining_krw: int | None) -> Charge:
    """``charge`` capped at what its grant has left (None: no grant, or a grant that is not stored)."""
    if grant_remaining_krw is None or charge.amount_krw <= grant_remaining_krw:
        return charge
    return replace(charge, amount_krw=max(0, grant_remaining_krw))


def book_charge(status: JobStatus, charge: Charge, price_krw_per_hour: int) -> Booking | None:
    """Book a proposed metering slice on a job as the store holds it now (not yet capped: ``cap``).

    Time before the job's mark was already billed (an exit, a preemption or a cancel booked the tail of the
    run meanwhile): of a running job only the rest is booked, priced again through its carry; of a job whose
    run has ended, nothing. None when nothing is to be booked. The carry after is the proposal's
    (``charge.carry``), or the job's own when the proposal does not say."""
    if status.state.terminal:
        return None  # it ended meanwhile (exit, cancel): its tail was booked with the event that ended it
    mark = status.metered_until
    if mark is not None and charge.start < mark:
        if charge.end <= mark or status.state is not JobState.RUNNING:
            return None
        part = charge.device_seconds * (charge.end - mark) / (charge.end - charge.start)
        again = _reprice(status, charge, part, price_krw_per_hour)
        if again is None:
            return None
        charge = again
    carry = charge.carry if charge.carry is not None else status.carry
    seconds_on = dict(status.seconds_on)
    seconds_on[charge.accelerator] = seconds_on.get(charge.accelerator, 0.0) + (charge.end - charge.start)
    return Booking(charge, charge.end, carry, seconds_on)


def after_booking(status: JobStatus, booking: Booking) -> JobStatus:
    """The job's status once ``booking`` is persisted (its mark, carry and time on each type moved on)."""
    s = status  # the constructor, not dataclasses.replace: this runs for every running job every round
    return JobStatus(
        s.job,
        s.state,
        s.placement,
        s.steps_done,
        booking.seconds_on,
        booking.mark,
        booking.carry,
        s.attempt_started,  # not billing fields: kept (until 2026-11-30 every slice wiped them)
        s.restart_measured,
    )


def meter_and_book(
    status: JobStatus, until: float, price_krw_per_hour: int
) -> tuple[Charge, JobStatus] | None:
    """``meter(status, until, price, final=False)`` booked at once on the very status it read: the charge
    (before the grant's cap) and the job's status after it, equal to ``book_charge`` and ``after_booking`` of
    that charge at the same price. For a store that meters and books its running jobs in one pass (the
    simulator's memory store, every running job every round): one charge and one status per job instead of
    two charges, a booking and a status. None when there is nothing to bill."""
    p, start = status.placement, status.metered_until
    if p is None or start is None:
        return None
    if until <= start:
        return None  # meter: nothing due (end == start, not final)
    carry = status.carry
    seconds = until - start
    device_seconds = p.count * seconds
    if status.state is not JobState.RUNNING or not (
        device_seconds.is_integer() and 3600 % carry.denominator == 0
    ):  # the general path: meter, then book on the same status
        charge = meter(status, until, price_krw_per_hour, final=False)
        if charge is None:
            return None
        b = book_charge(status, charge, price_krw_per_hour)
        return None if b is None else (b.charge, after_booking(status, b))
    # meter_slice's integer path (not final: the whole KRW billed, the fraction carried)
    amount, left = due_in_units(int(device_seconds), int(price_krw_per_hour), carry, False)
    job = status.job
    acc = p.accelerator
    seconds_on = dict(status.seconds_on)
    seconds_on[acc] = seconds_on.get(acc, 0.0) + seconds
    # the two frozen dataclasses filled in directly (neither has a __post_init__; every field is given):
    # the same objects as their constructors make, without one object.__setattr__ per field, for every
    # running job every round
    charge = _new(Charge)
    charge.__dict__.update(
        job=job.id,
        tenant=job.tenant,
        grant=job.grant,
        accelerator=acc,
        device_seconds=device_seconds,
        amount_krw=amount,
        start=start,
        end=until,
        carry=left,
        site=p.site,
    )
    after = _new(JobStatus)
    after.__dict__.update(
        job=job,
        state=status.state,
        placement=p,
        steps_done=status.steps_done,
        seconds_on=seconds_on,
        metered_until=until,
        carry=left,
        attempt_started=status.attempt_started,
        restart_measured=status.restart_measured,
    )
    return charge, after


_new = object.__new__


def _reprice(status: JobStatus, charge: Charge, device_seconds: float, price: int) -> Charge | None:
    """The part of ``charge`` after the job's mark, priced again from its exact cost plus the job's carry."""
    start = float(status.metered_until if status.metered_until is not None else charge.start)
    amount, left = settle(status.carry + exact_krw(device_seconds, price), final=False)
    if amount == 0 and device_seconds == 0:
        return None
    return replace(charge, start=start, device_seconds=device_seconds, amount_krw=amount, carry=left)


# -- budgets, grants and holds: the checks the stores run under the program's or grant's row lock ---------


def check_budget(program: str, budget_krw: int, granted_krw: int) -> None:
    """A program's budget never goes below what it has granted (Conflict on ``budget_krw``)."""
    if budget_krw < granted_krw:
        raise Conflict(
            f"program '{program}' has already granted {granted_krw} KRW; the budget cannot go below that",
            "budget_krw",
        )


def check_grant_fits(program: str, amount_krw: int, left_krw: int, *, change: bool = False) -> None:
    """A grant (new, or changed: ``change``) fits in what its program has left to grant."""
    if amount_krw > left_krw:
        what = "to this grant" if change else ""
        raise InsufficientFunds(
            f"program '{program}' has {left_krw} KRW left to grant {what}".rstrip(), "amount_krw"
        )


def check_grant_amount(grant: str, amount_krw: int, spent_and_held_krw: int) -> None:
    """A grant's amount never goes below what is spent and held on it."""
    if amount_krw < spent_and_held_krw:
        raise Conflict(
            f"grant '{grant}' has {spent_and_held_krw} KRW spent or held; the amount cannot go below that",
            "amount_krw",
        )


def unheld(amount_krw: int, spent_krw: int, held_krw: int) -> int:
    """What a grant has neither spent nor held for its active jobs' worst-case costs."""
    return amount_krw - spent_krw - held_krw


def hold_after(state: JobState) -> int | None:
    """A job's hold on its grant once it is in ``state``: released (0) when it ends, else unchanged (None)."""
    return 0 if state.terminal else None


def holds(grant: str | None, reserve_krw: int) -> bool:
    """Whether a job submitted with this grant and worst-case cost holds KRW on its grant."""
    return reserve_krw > 0 and grant is not None


def hold_refusal(grant: str, left_krw: int | None, reserve_krw: int) -> Conflict | None:
    """Why a job's worst-case cost cannot be held on its grant beside the other active jobs' holds
    (``left_krw``: the grant's amount less spent and held; None: no such grant), or None when it can."""
    if left_krw is None:
        return MissingReference(f"grant {grant} does not exist", "grant")
    if reserve_krw > left_krw:
        return InsufficientFunds(
            f"grant {grant} has {left_krw} KRW not yet held by other jobs; this job needs {reserve_krw}"
        )
    return None


def check_ends_after(start: float, end: float, what: str) -> None:
    if end <= start:
        raise Conflict(f"the {what} must end after it starts", "end")
