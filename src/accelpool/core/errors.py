"""Errors that name the problem. The CLI turns an InputError into exit code 2; the API into HTTP 4xx."""

from __future__ import annotations


class AccelpoolError(Exception):
    """Base of every error accelpool raises on purpose."""


class InputError(AccelpoolError):
    """Bad input from a user: names where (file, line), what (field) and the offending value."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        self.value = value
        super().__init__(self.describe())

    def describe(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line is not None else "")
        elif self.line is not None:
            where = f"line {self.line}"
        parts = [p for p in (where, f"field '{self.field}'" if self.field else "") if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class NotFound(AccelpoolError):
    """A named thing does not exist (or is not visible to the caller)."""


class Conflict(AccelpoolError):
    """The request contradicts the current state (e.g. a grant would be overspent). ``field`` names what
    the caller sent that clashes, when there is one (the API answers 409 with it)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


class AlreadyExists(Conflict):
    """An object with that key is already stored (a job id, a grant id, a tenant...)."""

    def __init__(self, message: str, field: str | None = "id") -> None:
        super().__init__(message, field)


class MissingReference(Conflict):
    """The request names an object that does not exist (a job's grant, a grant's program)."""


class InsufficientFunds(Conflict):
    """A grant (or a program's budget) cannot hold the money asked of it beside what it already holds."""


class TooManyJobs(Conflict):
    """A tenant has as many active jobs (queued, running, preempted) as a tenant may have (``active_refusal``);
    the API answers 429."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "tenant")


def active_refusal(tenant: str, active: int, limit: int | None) -> TooManyJobs | None:
    """Why ``tenant``, which has ``active`` active jobs, may not queue one more under the pool's ``limit``
    (None: no limit); None when it may. A queue has a cap as Slurm's ``MaxJobCount`` (10,000 by default,
    slurm.conf(5)): every round reads every active job, so one tenant's flood slowed every tenant's
    scheduling (a review's flood of thousands of jobs)."""
    if limit is None or active < limit:
        return None
    return TooManyJobs(
        f"tenant '{tenant}' has {active:,} active jobs (queued or running), the most a tenant may have "
        f"({limit:,}, the operator's --max-active-jobs): wait for some to end or cancel some"
    )
