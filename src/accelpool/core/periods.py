"""Grant and program periods: a grant pays only from its start until its end, and only while its program
runs (from the program's start until its end). Outside that a grant has no money to give, whatever its
balance: a job it funds waits (its reason says why), and a running one is stopped at its next lease boundary
as when its money runs out (``core.placement``: "grant period over"). Admission refuses a new job whose
grant cannot pay now (api/admission.py, with the same ``closed``); this is the scheduler's side, for jobs
queued or running when a period ends (an operator's test: a program's end was never read, and a grant
funded jobs before its program started and after it ended).

``decide`` runs ``open_grants`` on every snapshot first, so every policy, the placement and the reasons see
a closed grant with nothing left; the snapshot is handed back as it was when every grant is open.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from accelpool.core.allocation import AllocationProblem
from accelpool.core.round_types import JobStatus, Snapshot
from accelpool.core.types import Grant, JobState, Program

_T = TypeVar("_T")

if TYPE_CHECKING:
    from accelpool.core.rounds import DecideCache


def utc_words(t: float) -> str:
    """Unix seconds as "YYYY-MM-DD HH:MM UTC" (the proleptic Gregorian calendar, by arithmetic: the core
    reads no clock and no time zone)."""
    days, secs = divmod(int(t), 86400)
    z = days + 719468  # days from 0000-03-01
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    return f"{year:04d}-{month:02d}-{day:02d} {secs // 3600:02d}:{secs % 3600 // 60:02d} UTC"


def ended(grant: Grant, program: Program | None, now: float) -> str | None:
    """Why ``grant`` will never pay again at ``now`` (its end or its program's has passed), in words; None
    when neither has."""
    if grant.end is not None and now >= grant.end:
        return f"grant {grant.id} ended at {utc_words(grant.end)}"
    if program is not None and program.end is not None and now >= program.end:
        return f"program {program.id} ended at {utc_words(program.end)}"
    return None


def pays(grant: Grant, program: Program | None, now: float) -> bool:
    """Whether ``grant`` can pay at ``now``: ``closed`` is None, without building its words."""
    if now < grant.start or (program is not None and now < program.start):
        return False
    if grant.end is not None and now >= grant.end:
        return False
    return program is None or program.end is None or now < program.end


def closed(grant: Grant, program: Program | None, now: float) -> str | None:
    """Why ``grant`` cannot pay at ``now`` (outside its period or its program's), in words; None when it can."""
    if now < grant.start:
        return f"grant {grant.id} starts at {utc_words(grant.start)}"
    if program is not None and now < program.start:
        return f"program {program.id} starts at {utc_words(program.start)}"
    return ended(grant, program, now)


def open_grants(snapshot: Snapshot, cache: DecideCache | None = None) -> Snapshot:
    """``snapshot`` with every grant that cannot pay now (``closed``) at nothing left (spent = amount); the
    very same snapshot when every grant is open. ``cache`` (the round's DecideCache) keeps the grants so
    made while the snapshot's grants are the same object and the same ones are closed, so that a later round
    sees the very same tuple (the quiet-round check compares grants by identity first)."""
    grants = snapshot.grants
    if not grants:
        return snapshot
    now = snapshot.now
    programs = {p.id: p for p in snapshot.programs}
    shut = tuple(i for i, g in enumerate(grants) if not pays(g, programs.get(g.program), now))
    if not shut:
        return snapshot
    last = cache.opened if cache is not None else None
    if last is not None and last[0] is grants and last[1] == shut:
        return replace(snapshot, grants=last[2])
    out = list(grants)
    for i in shut:
        out[i] = replace(grants[i], spent_krw=grants[i].amount_krw)
    opened = tuple(out)
    if cache is not None:
        cache.opened = (grants, shut, opened)
    return replace(snapshot, grants=opened)


def budget_stop(grant_id: str | None, shut: Mapping[str, str]) -> str:
    """Why a running job funded by ``grant_id`` stops for money at a lease boundary: its grant's period is
    over ("grant period over: grant g ended at ..."; ``shut``: closed_by_id), else its money ran out
    ("grant exhausted")."""
    why = shut.get(grant_id or "")
    return "grant exhausted" if why is None else f"grant period over: {why}"


def closed_by_id(snapshot: Snapshot) -> dict[str, str]:
    """Every grant of the snapshot that cannot pay now, with why (``closed``)."""
    return _by_grant(snapshot, lambda g, p: closed(g, p, snapshot.now))


def _by_grant(snapshot: Snapshot, of: Callable[[Grant, Program | None], _T | None]) -> dict[str, _T]:
    """``of`` (a grant, its program) for every grant of the snapshot, where it is not None."""
    programs = {p.id: p for p in snapshot.programs}
    out = {}
    for g in snapshot.grants:
        value = of(g, programs.get(g.program))
        if value is not None:
            out[g.id] = value
    return out


def last_pay(grant: Grant, program: Program | None) -> tuple[float, str] | None:
    """When ``grant`` pays for the last time (its end or its program's, the earlier) and whose end that is
    ("grant g" / "program p"); None when neither ends."""
    ends = []
    if grant.end is not None:
        ends.append((grant.end, f"grant {grant.id}"))
    if program is not None and program.end is not None:
        ends.append((program.end, f"program {program.id}"))
    return min(ends) if ends else None


def cut_short(max_run_seconds: float, end: tuple[float, str], now: float) -> str | None:
    """Whose end comes before the max_run_time of a job that may not be stopped, started at ``now``, is over
    ("grant g ends at ..."; ``end``: last_pay); None when none does. Such a job starts only when its whole
    run fits in its grant's period: it waits blocked (whole_runs_cut_short; the end only comes closer) and
    admission refuses it. (One started in time is never stopped for money: its whole run was set aside when
    it started, core.placement, and it runs to its end even past the grant's.)"""
    if now + max_run_seconds <= end[0]:
        return None
    return f"{end[1]} ends at {utc_words(end[0])}"


def ends_by_grant(snapshot: Snapshot) -> dict[str, tuple[float, str]]:
    """last_pay of every grant of the snapshot that ends."""
    return _by_grant(snapshot, last_pay)


def whole_runs_cut_short(
    problem: AllocationProblem,
    statuses: Sequence[JobStatus],
    snapshot: Snapshot,
    rows: Sequence[int] | None = None,
) -> tuple[AllocationProblem, dict[str, str]]:
    """Queued jobs that may not be stopped, with a ``max_run_time``, whose grant's period ends (cut_short)
    before that run would if it started now: as things stand they can never run whole within it. Returns the
    problem with their budgets at 0 (blocked, as core.placement.whole_runs_unpaid's) and, per such job, why in words. ``rows``: the
    statuses of every job that is not time-sliced and has a max_run_time and a grant, when the caller has
    them (whole_runs_unpaid's cache); else all are read."""
    ends = ends_by_grant(snapshot)
    if not ends:
        return problem, {}
    queued = JobState.QUEUED
    out: dict[str, str] = {}
    zero: list[int] = []
    for i in rows if rows is not None else range(len(statuses)):
        s = statuses[i]
        job = s.job
        if s.state is not queued or job.time_sliced or job.max_run_seconds is None or job.grant not in ends:
            continue
        why = cut_short(job.max_run_seconds, ends[job.grant], snapshot.now)
        if why is not None:
            out[job.id] = why
            zero.append(i)
    if not zero:
        return problem, {}
    return problem.without_money(zero), out
