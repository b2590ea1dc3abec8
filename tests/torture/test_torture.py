"""The bounded torture suite (issue 12, item 6), run in CI: kill -9 of each process under submission load
with idempotent retries, budget races, concurrent cancels and open-loop load, on SQLite and PostgreSQL.
The full version with its figures: ``python bench/torture.py`` (docs/reliability.md)."""

from __future__ import annotations

import pytest
from bench import torture
from tests.helpers import SQL_BACKENDS

pytestmark = [pytest.mark.torture, pytest.mark.e2e]
DBS = SQL_BACKENDS


def _db(kind: str, database_url) -> str | None:
    """None on SQLite (the torture makes its own file under tmp_path), else a fresh PostgreSQL database."""
    return None if kind == "sqlite" else database_url(kind)


def _money_is_exact(r: dict) -> None:
    assert r["grants_mismatched"] == {}, r  # per grant: sum of charges = spent
    assert r["n_charges_outside_running"] == 0, r  # every charge inside a running interval of its job


@pytest.mark.parametrize("kind", DBS)
def test_kill_9_of_api_scheduler_and_supervisor_loses_and_doubles_nothing(kind, tmp_path, database_url):
    r = torture.kill_loop(3, _db(kind, database_url), tmp_path, clients=3)
    assert r["killed"] == {"api": 1, "scheduler": 1, "supervisor": 1}
    assert r["acknowledged"] >= 60 and r["lost"] == 0 and r["duplicated"] == 0, r
    _money_is_exact(r)


@pytest.mark.parametrize("kind", DBS)
def test_concurrent_submissions_never_overcommit_a_grant(kind, tmp_path, database_url):
    r = torture.budget_race(_db(kind, database_url), tmp_path, n=60)
    assert r["5xx"] == 0 and not r["overcommitted"], r
    assert r["accepted"] >= 1 and r["accepted"] + r["refused_409"] == 60, r
    _money_is_exact(r)


@pytest.mark.parametrize("kind", DBS)
def test_concurrent_cancels_answer_no_5xx_and_bill_exactly(kind, tmp_path, database_url):
    r = torture.cancel_race(_db(kind, database_url), tmp_path, n=48)
    assert r["5xx"] == 0 and r["not_cancelled"] == 0 and r["running_before"] > 0, r
    assert r["grants_mismatched"] == {}, r
    # every charge inside a running interval of its job: a cancel that loses the race to a round's slice
    # takes effect at the job's mark (core.lifecycle), so no slice ends after the cancel
    assert r["n_charges_outside_running"] == 0, r["charges_outside_running"]


def test_open_loop_submissions_at_a_fixed_rate_all_succeed(tmp_path):
    r = torture.open_loop(40, 2, None, tmp_path)
    assert r["requests"] == 80 and r["errors"] == 0, r
    assert r["p99_ms"] >= r["p50_ms"] > 0
