"""accelpool's command line. Each command group lives in its own module and registers itself here.

Bad input (an InputError anywhere below) ends with one clear message on stderr and exit code 2, never a
traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from accelpool.cli.connection import Connection, connection_callback
from accelpool.cli.render import error
from accelpool.core.errors import AccelpoolError, InputError

MODULES = ("catalog", "allocate", "simulate", "plan", "server", "tenant", "operator")
"""The command modules (accelpool.cli.<name>), in the order their commands are listed."""
COMMANDS = {
    "catalog": "catalog",
    "allocate": "allocate",
    "simulate": "simulate",
    "plan": "plan",
    "up": "server",
    "schema": "server",
    **dict.fromkeys(("submit", "jobs", "show", "cancel", "logs", "usage"), "tenant"),
    **dict.fromkeys(("nodes", "prices", "sites", "programs", "grants", "tenants", "tokens"), "operator"),
}
"""Each top-level command (or group) and the module that registers it (tests/cli/test_lazy_commands.py
checks it against what the modules register). A command imports only its own module: `accelpool jobs`
does not import numpy, the policies or the simulator (`accelpool jobs --help`: 0.67 -> 0.41 s here)."""


def build(modules: tuple[str, ...] = MODULES) -> typer.Typer:
    """The Typer app with the commands of ``modules`` registered."""
    application = typer.Typer(
        name="accelpool",
        help="Run a shared pool of GPUs and Korean NPUs: fair, heterogeneity-aware, budget-aware scheduling.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for name in modules:
        importlib.import_module(f"accelpool.cli.{name}").register(application)
    application.callback()(connection_callback(_root))
    return application


def _root(ctx: typer.Context, conn: Connection) -> None:
    """accelpool: schedule a shared pool of GPUs and Korean NPUs. The connection options may come before the
    command (`accelpool --data-dir D jobs`) or after it."""


def modules_for(args: list[str]) -> tuple[str, ...]:
    """The modules ``args`` need: those of the command names among them (an option's value that happens to
    be a command's name only adds a module); every module when none is named (help, a mistyped command:
    Click then lists or suggests them all)."""
    named = {COMMANDS[a] for a in args if a in COMMANDS}
    return tuple(m for m in MODULES if m in named) if named else MODULES


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole app, for callers that drive it themselves (typer.testing.CliRunner)
        return build()
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the Typer app, mapping accelpool errors to exit codes (usage errors exit 2)."""
    args = sys.argv[1:] if argv is None else argv
    negative = _negative_number(args)
    if negative is not None:
        error(
            f"{negative}: a negative number (amounts, counts, devices, weights and prices are never "
            "negative; a value that really starts with '-' goes after '--')"
        )
        return 2
    try:
        build(modules_for(args))(args=args, prog_name="accelpool")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except InputError as exc:
        error(exc.describe())
        return 2
    except UnicodeDecodeError as exc:  # a file argument that is not text: input, not a crash
        error(f"input is not UTF-8 text (byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r})")
        return 2
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        error(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
        return 2
    except AccelpoolError as exc:
        error(str(exc))
        return 1
    return 0


def _negative_number(args: list[str]) -> str | None:
    """The first argument before ``--`` that is a negative number in an argument's place: Click reads ``-5``
    there as an unknown option ("No such option: -5", naming neither the field nor the problem). One right
    after an option name is that option's value (Click takes it as such: the option's own check names it)."""
    before = ""
    for a in args:
        if a == "--":
            return None
        number = len(a) > 1 and a[0] == "-" and (a[1].isdigit() or (a[1] == "." and a[2:3].isdigit()))
        if number and not (before.startswith("-") and "=" not in before and not _is_number(before)):
            return a
        before = a
    return None


def _is_number(a: str) -> bool:
    try:
        float(a)
    except ValueError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
