"""accelpool's command line. Each command group lives in its own module and registers itself here.

Bad input (an InputError anywhere below) ends with one clear message on stderr and exit code 2, never a
traceback.
"""

from __future__ import annotations

import sys

import typer

from accelpool.cli import allocate, catalog, operator, plan, server, simulate, tenant
from accelpool.cli.connection import Connection, connection_callback
from accelpool.cli.render import error
from accelpool.core.errors import AccelpoolError, InputError

app = typer.Typer(
    name="accelpool",
    help="Run a shared pool of GPUs and Korean NPUs: fair, heterogeneity-aware, budget-aware scheduling.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (catalog, allocate, simulate, plan, server, tenant, operator):
    module.register(app)


def _root(ctx: typer.Context, conn: Connection) -> None:
    """accelpool: schedule a shared pool of GPUs and Korean NPUs. The connection options may come before the
    command (`accelpool --data-dir D jobs`) or after it."""


app.callback()(connection_callback(_root))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the Typer app, mapping accelpool errors to exit codes (usage errors exit 2)."""
    try:
        app(args=argv, prog_name="accelpool")
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


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
