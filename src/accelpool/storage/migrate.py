"""Schema migrations (Alembic, shipped as package data). The server upgrades on start or refuses clearly."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from accelpool.core.errors import AccelpoolError

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaError(AccelpoolError):
    """The database schema cannot be used by this version of accelpool."""


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str:
    return str(ScriptDirectory.from_config(_config()).get_current_head())


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check(engine: Engine) -> str | None:
    """The database's revision; SchemaError if it was written by a newer accelpool (unknown revision)."""
    rev = current(engine)
    known = {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}
    if rev is not None and rev not in known:
        raise SchemaError(
            f"database schema is at revision {rev}, which this accelpool does not know (newest known: "
            f"{head()}); it was written by a newer version. Upgrade accelpool or use another --database-url."
        )
    return rev


def upgrade(engine: Engine) -> str:
    """Bring the schema to the newest revision (no-op when it is there); returns the revision."""
    check(engine)
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return head()
