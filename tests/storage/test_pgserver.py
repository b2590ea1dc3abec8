"""The tests' PostgreSQL databases are dropped (storage/pgserver.py, tests/helpers.py ``Databases``): every
database a test makes is gone when it ends, also while a store still holds connections to it, and one a
process made and never dropped is gone when the process exits; databases it did not make are left alone
(the server may be shared: ``ACCELPOOL_TEST_POSTGRES_URL``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from tests.helpers import NO_POSTGRES, Databases

from accelpool.core.types import Tenant
from accelpool.storage.pgserver import drop_database, fresh_database, postgres_url
from accelpool.storage.sql import SqlStore

pytestmark = pytest.mark.postgres


@pytest.fixture
def base() -> str:
    url = postgres_url()
    if url is None:
        pytest.skip(NO_POSTGRES)
    return url


def _databases(base: str) -> set[str]:
    eng = sa.create_engine(base)
    try:
        with eng.connect() as c:
            return {r[0] for r in c.exec_driver_sql("SELECT datname FROM pg_database")}
    finally:
        eng.dispose()


def _name(url: str) -> str:
    name = sa.engine.make_url(url).database
    assert name
    return name


def test_a_database_is_dropped_while_a_store_still_holds_connections_to_it(base):
    url = fresh_database(base)
    store = SqlStore(url)  # left open on purpose: pooled connections to the database
    store.add_tenant(Tenant("t1"))
    assert _name(url) in _databases(base)
    drop_database(base, url)
    assert _name(url) not in _databases(base)
    drop_database(base, url)  # already gone: nothing to do
    store.engine.dispose()


def test_the_server_database_itself_is_never_dropped(base):
    with pytest.raises(ValueError, match="not a database made on"):
        drop_database(base, base)


def test_databases_drops_what_it_made_and_nothing_else(base, tmp_path):
    other = fresh_database(base)  # made outside: another test's, another session's
    try:
        dbs = Databases(tmp_path)
        made = [dbs.make("postgres") for _ in range(2)]
        assert dbs.make("sqlite").startswith("sqlite")
        store = SqlStore(made[0])
        store.add_tenant(Tenant("t1"))  # still connected when dropped
        dbs.drop_all()
        left = _databases(base)
        assert not {_name(u) for u in made} & left and _name(other) in left
        store.engine.dispose()
    finally:
        drop_database(base, other)


def test_a_database_made_and_never_dropped_is_dropped_when_the_process_exits(base):
    code = (
        "import sys\n"
        "from accelpool.storage.pgserver import fresh_database\n"
        "from accelpool.storage.sql import SqlStore\n"
        "url = fresh_database(sys.argv[1])\n"
        "SqlStore(url)  # a store left open too\n"
        "print(url)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, base], capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )
    assert p.returncode == 0, p.stderr
    url = p.stdout.strip().splitlines()[-1]
    assert _name(url).startswith("t_") and _name(url) not in _databases(base)
