"""Dashboard pages (placeholder until the dashboard lands)."""

from __future__ import annotations

from typing import Any


def install(app: Any) -> None:
    return None
