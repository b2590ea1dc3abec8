"""Suite-wide rules.

With ``ACCELPOOL_REQUIRE_BACKENDS=1`` (set by scripts/test.sh, and so in CI) a skipped test fails the
run: the PostgreSQL and Ray tests skip on a developer's machine without those backends, but CI must never
go green with them silently left out.
"""

from __future__ import annotations

import os

import pytest

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and os.environ.get("ACCELPOOL_REQUIRE_BACKENDS") == "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    if _skipped:
        terminalreporter.section("skipped although ACCELPOOL_REQUIRE_BACKENDS=1 (counts as a failure)")
        for line in _skipped:
            terminalreporter.write_line(line)
