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
