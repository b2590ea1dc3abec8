"""Suite-wide rules.

With ``ACCELPOOL_REQUIRE_BACKENDS=1`` (set by scripts/test.sh, and so in CI) a skipped test fails the
run: the PostgreSQL and Ray tests skip on a developer's machine without those backends, but CI must never
go green with them silently left out. That includes a whole module skipped while it is collected (a
module-level ``pytest.importorskip``): such a skip never reaches the per-test report, so it is caught
in ``pytest_collectreport`` and turned into a collection error.

The stores' databases: ``database_url(kind)`` gives a test an empty SQLite file or a fresh PostgreSQL
database (dropped when the test ends); ``sql_url`` and ``sql_store`` run a test once on each
(``SQL_BACKENDS`` in tests/helpers.py).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.helpers import SQL_BACKENDS, Databases

from accelpool.storage.sql import SqlStore

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and os.environ.get("ACCELPOOL_REQUIRE_BACKENDS") == "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append(f"{report.nodeid}: {reason}")


@pytest.hookimpl(tryfirst=True)
def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped and os.environ.get("ACCELPOOL_REQUIRE_BACKENDS") == "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append(f"{report.nodeid}: {reason} (whole module skipped at collection)")
        # turned into a collection error before the terminal counts it: "errors during collection"
        report.outcome = "failed"
        report.longrepr = f"skipped at collection although ACCELPOOL_REQUIRE_BACKENDS=1: {reason}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and exitstatus in (0, 5):  # 5: nothing ran (every module skipped at collection)
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    if _skipped:
        terminalreporter.section("skipped although ACCELPOOL_REQUIRE_BACKENDS=1 (counts as a failure)")
        for line in _skipped:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def slurm_conf() -> Iterator[str]:
    """The slurm.conf of a running test Slurm (scripts/slurm.sh): ACCELPOOL_TEST_SLURM_CONF if it answers,
    else started here when running as root (as on CI); skipped otherwise."""
    from tests.slurm_nodes import resume_test_nodes

    from accelpool.executors.slurm import slurm_available

    conf = os.environ.get("ACCELPOOL_TEST_SLURM_CONF", "")
    if conf and slurm_available(conf):
        resume_test_nodes(conf)  # left down or drained by a test process that was killed
        yield conf
        resume_test_nodes(conf)
        return
    script = Path(__file__).resolve().parents[1] / "scripts" / "slurm.sh"
    if os.geteuid() != 0:
        pytest.skip('no test Slurm: run `eval "$(bash scripts/slurm.sh start)"` as root')
    p = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        pytest.skip(f"scripts/slurm.sh start failed: {p.stderr[-500:]}")
    conf = next(
        line.split("=", 1)[1] for line in p.stdout.splitlines() if line.startswith("export SLURM_CONF=")
    )
    resume_test_nodes(conf)
    yield conf
    resume_test_nodes(conf)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``database_url(kind)``: the URL of an empty database for this test, "sqlite" or "postgres"
    (``Databases``). The PostgreSQL ones are dropped when the test ends, after the fixtures that use them
    have closed their stores."""
    dbs = Databases(tmp_path)
    yield dbs.make
    dbs.drop_all()


@pytest.fixture(params=SQL_BACKENDS)
def sql_url(request: pytest.FixtureRequest, database_url: Callable[[str], str]) -> str:
    """An empty database, once on SQLite and once on PostgreSQL (``database_url``)."""
    return database_url(request.param)


@pytest.fixture
def sql_store(sql_url: str) -> Iterator[SqlStore]:
    """A SqlStore on ``sql_url`` (SQLite, then PostgreSQL), closed when the test ends."""
    s = SqlStore(sql_url)
    yield s
    s.close()
