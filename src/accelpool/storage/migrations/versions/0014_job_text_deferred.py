"""job text index written in batches (SQLite): a submission no longer writes the FTS5 index ``jobs_text``
row by row in its own transaction. ``jobs_text_mark.upto`` is the highest ``jobs.seq`` the index covers;
the rows above it are indexed together, in one statement, by the submission transaction that takes their
number to ``TEXT_INDEX_EVERY`` (``storage/submissions.py``), and the search reads them by LIKE meanwhile
(``storage/dashboard.py``), so it still finds a job the moment its submission is answered.

The triggers of 0013 stay for the rows the index covers (an insert at or below the mark, an update or a
delete of an indexed row), so the index never holds a row twice or misses one. Every job there when the
migration runs is indexed already (0013's triggers), so the mark starts at the highest seq. PostgreSQL: no
change (its GIN trigram indexes are maintained by the server).

Revision ID: 0014_job_text_deferred
Revises: 0013_job_text_index
"""

from __future__ import annotations

from alembic import op

revision = "0014_job_text_deferred"
down_revision = "0013_job_text_index"
branch_labels = None
depends_on = None

_MARK = "(SELECT upto FROM jobs_text_mark WHERE id = 0)"
_SQLITE_UP = [
    "CREATE TABLE jobs_text_mark (id INTEGER PRIMARY KEY CHECK (id = 0), upto INTEGER NOT NULL)",
    "INSERT INTO jobs_text_mark (id, upto) SELECT 0, COALESCE(MAX(seq), 0) FROM jobs",
    "DROP TRIGGER jobs_text_ai",
    "DROP TRIGGER jobs_text_ad",
    "DROP TRIGGER jobs_text_au",
    f"CREATE TRIGGER jobs_text_ai AFTER INSERT ON jobs WHEN new.seq <= {_MARK} BEGIN "
    "INSERT INTO jobs_text(rowid, name, id) VALUES (new.seq, new.name, new.id); END",
    f"CREATE TRIGGER jobs_text_ad AFTER DELETE ON jobs WHEN old.seq <= {_MARK} BEGIN "
    "INSERT INTO jobs_text(jobs_text, rowid, name, id) VALUES ('delete', old.seq, old.name, old.id); END",
    "CREATE TRIGGER jobs_text_au AFTER UPDATE OF name, id, seq ON jobs BEGIN "
    "INSERT INTO jobs_text(jobs_text, rowid, name, id) "
    f"SELECT 'delete', old.seq, old.name, old.id WHERE old.seq <= {_MARK}; "
    f"INSERT INTO jobs_text(rowid, name, id) SELECT new.seq, new.name, new.id WHERE new.seq <= {_MARK}; END",
]
_SQLITE_DOWN = [  # index the rows above the mark, then 0013's triggers again
    f"INSERT INTO jobs_text(rowid, name, id) SELECT seq, name, id FROM jobs WHERE seq > {_MARK}",
    "DROP TRIGGER jobs_text_ai",
    "DROP TRIGGER jobs_text_ad",
    "DROP TRIGGER jobs_text_au",
    "DROP TABLE jobs_text_mark",
    "CREATE TRIGGER jobs_text_ai AFTER INSERT ON jobs BEGIN "
    "INSERT INTO jobs_text(rowid, name, id) VALUES (new.seq, new.name, new.id); END",
    "CREATE TRIGGER jobs_text_ad AFTER DELETE ON jobs BEGIN "
    "INSERT INTO jobs_text(jobs_text, rowid, name, id) VALUES ('delete', old.seq, old.name, old.id); END",
    "CREATE TRIGGER jobs_text_au AFTER UPDATE OF name, id, seq ON jobs BEGIN "
    "INSERT INTO jobs_text(jobs_text, rowid, name, id) VALUES ('delete', old.seq, old.name, old.id); "
    "INSERT INTO jobs_text(rowid, name, id) VALUES (new.seq, new.name, new.id); END",
]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for sql in _SQLITE_UP:
            bind.exec_driver_sql(sql)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for sql in _SQLITE_DOWN:
            bind.exec_driver_sql(sql)
