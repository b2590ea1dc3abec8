"""The dashboard tests' fixture: the world of tests/web/world.py, closed after each test."""

from __future__ import annotations

from typing import Any

import pytest
from tests.web.world import build_world


@pytest.fixture
def world(tmp_path: Any) -> Any:
    w = build_world(tmp_path)
    yield w
    w.store.close()
