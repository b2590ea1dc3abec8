"""The one place the CLI writes to the terminal. Command modules build Rich renderables; this prints them."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console

PIPE_WIDTH = 240
"""Columns of a table written to a pipe or file when COLUMNS does not say (Rich's default there is 80, which
wrapped every cell of `accelpool jobs | grep ...` over several lines); a terminal gets its own width."""

console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else PIPE_WIDTH)
err_console = Console(stderr=True)


def emit_json(data: Any) -> None:
    """Machine-readable output on stdout (sorted keys, no colour)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    err_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
