"""job text index: the dashboard's search by name or id (a substring, ``LIKE '%...%'``) served by a
trigram index instead of reading every job. SQLite: an FTS5 table ``jobs_text`` (trigram tokenizer,
SQLite >= 3.34) over jobs.name and jobs.id, external content (rowid = jobs.seq), kept in sync by triggers
and filled here ('rebuild'). PostgreSQL: the pg_trgm extension and GIN trigram indexes on jobs.name and
jobs.id, which serve LIKE directly; where the extension cannot be created (not installed, or the user may
not create it) the migration goes on without the indexes and the search reads the table as before.

Revision ID: 0013_job_text_index
Revises: 0012_dashboard_search_index
"""

from __future__ import annotations

import logging

from alembic import op

revision = "0013_job_text_index"
down_revision = "0012_dashboard_search_index"
branch_labels = None
depends_on = None

log = logging.getLogger("accelpool.storage.migrate")

_SQLITE_UP = [
    "CREATE VIRTUAL TABLE jobs_text USING fts5(name, id, content='jobs', content_rowid='seq', "
    "tokenize='trigram')",
    "CREATE TRIGGER jobs_text_ai AFTER INSERT ON jobs BEGIN "
    "INSERT INTO jobs_text(rowid, name, id) VALUES (new.seq, new.name, new.id); END",
    "CREATE TRIGGER jobs_text_ad AFTER DELETE ON jobs BEGIN "
    "INSERT INTO jobs_text(jobs_text, rowid, name, id) VALUES ('delete', old.seq, old.name, old.id); END",
    "CREATE TRIGGER jobs_text_au AFTER UPDATE OF name, id, seq ON jobs BEGIN "
    "INSERT INTO jobs_text(jobs_text, rowid, name, id) VALUES ('delete', old.seq, old.name, old.id); "
    "INSERT INTO jobs_text(rowid, name, id) VALUES (new.seq, new.name, new.id); END",
    "INSERT INTO jobs_text(jobs_text) VALUES ('rebuild')",
]
_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS jobs_text_ai",
    "DROP TRIGGER IF EXISTS jobs_text_ad",
    "DROP TRIGGER IF EXISTS jobs_text_au",
    "DROP TABLE IF EXISTS jobs_text",
]
_PG_INDEXES = [
    "CREATE INDEX IF NOT EXISTS ix_jobs_name_trgm ON jobs USING gin (name gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_jobs_id_trgm ON jobs USING gin (id gin_trgm_ops)",
]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for sql in _SQLITE_UP:
            bind.exec_driver_sql(sql)
    elif bind.dialect.name == "postgresql":
        try:
            with bind.begin_nested():  # a savepoint: a refused CREATE EXTENSION leaves the migration going
                bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except Exception as e:  # noqa: BLE001 - any refusal: not installed, not permitted
            log.warning(
                "pg_trgm could not be created (%s); the job text search reads the whole table. "
                "Install PostgreSQL's contrib extensions or CREATE EXTENSION pg_trgm as a superuser, then "
                "create the indexes: %s",
                str(e).splitlines()[0],
                "; ".join(_PG_INDEXES),
            )
            return
        for sql in _PG_INDEXES:
            bind.exec_driver_sql(sql)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for sql in _SQLITE_DOWN:
            bind.exec_driver_sql(sql)
    elif bind.dialect.name == "postgresql":
        bind.exec_driver_sql("DROP INDEX IF EXISTS ix_jobs_name_trgm")
        bind.exec_driver_sql("DROP INDEX IF EXISTS ix_jobs_id_trgm")
