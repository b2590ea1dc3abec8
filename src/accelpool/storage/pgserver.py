"""A throwaway PostgreSQL server for tests and benchmarks.

``postgres_url()`` returns ``$ACCELPOOL_TEST_POSTGRES_URL`` when set (CI starts the server), otherwise it
starts a private cluster from the PostgreSQL binaries on this machine (``initdb``/``pg_ctl`` on PATH or
under /usr/lib/postgresql/*/bin) in a temporary directory, listening only on a Unix socket there, and
stops it at exit. When running as root the cluster runs as the ``postgres`` user (PostgreSQL refuses
root). Returns None when neither is available.
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


def fresh_database(base_url: str) -> str:
    """Create an empty database on the server at ``base_url`` and return its URL."""
    import sqlalchemy as sa

    name = "t_" + uuid.uuid4().hex[:12]
    eng = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    eng.dispose()
    url = sa.engine.make_url(base_url).set(database=name)
    return url.render_as_string(hide_password=False)
