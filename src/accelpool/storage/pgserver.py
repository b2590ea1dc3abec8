"""A throwaway PostgreSQL server for tests and benchmarks.

``postgres_url()`` returns ``$ACCELPOOL_TEST_POSTGRES_URL`` when set (CI starts the server), otherwise it
starts a private cluster from the PostgreSQL binaries on this machine (``initdb``/``pg_ctl`` on PATH or
under /usr/lib/postgresql/*/bin) in a temporary directory, listening only on a Unix socket there, and
stops it at exit. When running as root the cluster runs as the ``postgres`` user (PostgreSQL refuses
root). Returns None when neither is available.

``fresh_database(base)`` creates an empty database on that server; ``drop_database(base, url)`` drops it
again, ending the connections still open to it (a store a test forgot to close). The tests' fixture
(``database_url`` in tests/conftest.py) drops every database it made when its test ends; databases made
and not dropped (a benchmark, a helper that forgot) are dropped when the process exits. On a server the
tests do not own (``ACCELPOOL_TEST_POSTGRES_URL``) only the databases made by this process are dropped.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

_SERVER: dict[str, str] = {}


def find_bin(name: str) -> str | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    return shutil.which(name)


def _as_postgres_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def start_cluster() -> str | None:
    """Start a private cluster (once per process); its base URL (database ``postgres``) or None."""
    if "url" in _SERVER:
        return _SERVER["url"]
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="accelpool-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        os.chmod(root, 0o755)
    subprocess.run(
        _as_postgres_user([initdb, "-D", str(data), "-U", "accelpool", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    opts = f"-c listen_addresses='' -k {sock} -c fsync=off -c synchronous_commit=off -c max_connections=200"
    subprocess.run(
        _as_postgres_user([pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )

    def _stop() -> None:
        subprocess.run(
            _as_postgres_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(_stop)
    _SERVER["url"] = f"postgresql+psycopg://accelpool@/postgres?host={sock}"
    _SERVER["sock"] = str(sock)
    return _SERVER["url"]


def postgres_url() -> str | None:
    """A server URL for tests: CI's, or a private one started here; None when no server can be had."""
    env = os.environ.get("ACCELPOOL_TEST_POSTGRES_URL")
    if env:
        return env
    return start_cluster()


# each database fresh_database made and nothing dropped yet: its URL -> (the base URL, the making process)
_MADE: dict[str, tuple[str, int]] = {}


def fresh_database(base_url: str) -> str:
    """Create an empty database on the server at ``base_url`` and return its URL (dropped at exit at the
    latest: ``drop_database``)."""
    import sqlalchemy as sa

    name = "t_" + uuid.uuid4().hex[:12]
    eng = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    eng.dispose()
    url = sa.engine.make_url(base_url).set(database=name).render_as_string(hide_password=False)
    atexit.unregister(_drop_leftovers)  # registered once, and after a private cluster's stop: runs before it
    atexit.register(_drop_leftovers)
    _MADE[url] = (base_url, os.getpid())
    return url


def drop_database(base_url: str, url: str) -> None:
    """Drop the database at ``url`` (made by ``fresh_database(base_url)``), connected to ``base_url``'s
    database. Sessions still connected to it are ended first: ``WITH (FORCE)`` on PostgreSQL 13 and later,
    ``pg_terminate_backend`` before that. Nothing happens when it is already gone."""
    import sqlalchemy as sa

    name = sa.engine.make_url(url).database
    if not name or name == sa.engine.make_url(base_url).database:
        raise ValueError(f"drop_database: {url!r} is not a database made on {base_url!r}")
    eng = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            version = int(c.exec_driver_sql("SHOW server_version_num").scalar_one())
            if version >= 130000:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                c.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %(name)s AND pid <> pg_backend_pid()",
                    {"name": name},
                )
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        eng.dispose()
    _MADE.pop(url, None)


def _drop_leftovers() -> None:
    for url, (base, pid) in list(_MADE.items()):
        if pid != os.getpid():  # made by the parent of this forked process: the parent drops it
            continue
        try:
            drop_database(base, url)
        except Exception:  # the server is gone (a private cluster stopped first): nothing left to drop
            _MADE.pop(url, None)
