"""How a CLI command reaches the server: the connection options, declared once.

`--url`, `--token`, `--data-dir` and `--json` are defined here and nowhere else. The root callback
(`accelpool --data-dir D jobs`) and each group's callback (`accelpool nodes --json add ...`) take them, and
`@connected` adds them to every command that talks to the server, so they may also follow the arguments
(`accelpool jobs --json`, as docs and scripts use). The innermost given value wins: command, then group,
then root, then the environment (ACCELPOOL_URL, ACCELPOOL_TOKEN) and the data dir's files.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_type_hints

import click
import typer

from accelpool.cli.render import console, emit_json

if TYPE_CHECKING:
    from accelpool.sdk import Client

_OPTIONS: dict[str, tuple[Any, Any]] = {
    "url": (str | None, typer.Option("--url", help="server URL (env ACCELPOOL_URL)")),
    "token": (str | None, typer.Option("--token", help="API token (env ACCELPOOL_TOKEN)")),
    "data_dir": (Path | None, typer.Option("--data-dir", help="read URL/token from this data dir")),
    "json": (bool, typer.Option("--json", help="machine-readable output")),
}
_CTX = "_accelpool_ctx"


@dataclass(frozen=True)
class Connection:
    """The resolved connection of one command: whom to ask, and how to print the answer."""

    url: str | None = None
    token: str | None = None
    data_dir: Path | None = None
    json: bool = False

    def client(self) -> Client:
        from accelpool.sdk import Client  # here: the SDK (httpx) is not imported with every command

        return Client.from_env(url=self.url, token=self.token, data_dir=self.data_dir)

    def out(self, data: Any, line: str) -> None:
        """The server's answer: as JSON with --json, else one human line."""
        emit_json(data) if self.json else console.print(line, highlight=False)

    def over(self, outer: Connection) -> Connection:
        """This connection's values where given, else the outer one's."""
        return Connection(
            self.url or outer.url,
            self.token or outer.token,
            self.data_dir or outer.data_dir,
            self.json or outer.json,
        )


def _given(ctx: click.Context | None) -> Connection:
    """What the enclosing callbacks (group, root) recorded, innermost first."""
    conn = Connection()
    while ctx is not None:
        if isinstance(ctx.obj, Connection):
            conn = conn.over(ctx.obj)
        ctx = ctx.parent
    return conn


def _option_parameters() -> list[inspect.Parameter]:
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter(_CTX, kw, annotation=typer.Context)]
    for name, (typ, option) in _OPTIONS.items():
        default = False if typ is bool else None
        params.append(inspect.Parameter(name, kw, default=default, annotation=Annotated[typ, option]))
    return params


F = TypeVar("F", bound=Callable[..., Any])


def connected(fn: F) -> F:
    """Give a command the connection options: it declares ``conn: Connection`` (and ``ctx`` if it wants
    the Typer context) and receives the resolved connection (its own options over its group's and the
    root's)."""
    hints = get_type_hints(fn, include_extras=True)
    own = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in inspect.signature(fn).parameters.values()
        if p.name not in ("conn", "ctx")
    ]
    wants_ctx = "ctx" in inspect.signature(fn).parameters

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.pop(_CTX)
        mine = Connection(**{name: kwargs.pop(name) for name in _OPTIONS})
        if wants_ctx:
            kwargs["ctx"] = ctx
        return fn(*args, conn=mine.over(_given(ctx.parent)), **kwargs)

    sig = inspect.Signature(own + _option_parameters())
    command.__signature__ = sig  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in sig.parameters.values()}
    del command.__wrapped__  # Typer must see the new signature
    return command  # type: ignore[return-value]


def connection_callback(fn: Callable[[typer.Context, Connection], None]) -> Callable[..., None]:
    """A group (or the root) callback that records the connection options given before the subcommand,
    then runs ``fn(ctx, connection)``."""

    @connected
    def callback(ctx: typer.Context, conn: Connection) -> None:
        ctx.obj = conn
        fn(ctx, conn)

    return callback
