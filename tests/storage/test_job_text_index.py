"""The job text index (migration 0013): the dashboard's search by name or id answers exactly what the
plain LIKE answered (fields, ASCII-only case folding on SQLite, case-sensitive on PostgreSQL, literal % _
and quotes, queries under 3 characters), from an index kept in sync with inserts, updates and deletes, and
built for the jobs already there when the migration runs. SQLite (FTS5 trigram) and PostgreSQL (pg_trgm)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import delete, insert, or_, select, update
from tests.helpers import NO_POSTGRES, SQL_BACKENDS

from accelpool.core.types import Job
from accelpool.storage import tables as T
from accelpool.storage.dashboard import JobFilter, _escape, search_jobs
from accelpool.storage.sql import SqlStore
from accelpool.storage.submissions import Submission, SubmissionWrites

BACKENDS = SQL_BACKENDS
# SQLite indexes new jobs in batches (0014): every submission (1), every 3rd job (part indexed, part read
# by LIKE), or never during the test (all read by LIKE); PostgreSQL's indexes are the server's
INDEXING = [
    ("sqlite", 1),
    ("sqlite", 3),
    ("sqlite", 10**9),
    pytest.param("postgres", 1024, marks=pytest.mark.postgres),
]
NAMES = [
    "train-llama",
    "Train-Llama-2",
    "TRAIN_x",
    "eval 50% done",
    'quote"d job',
    "한국어 학습",
    "ÉCOLE run",
    "école run",
    "a",
    "ab",
    "back\\slash",
]
QUERIES = [
    "train",
    "TRAIN",
    "rain-l",
    "llama-2",
    "_x",
    "N_X",
    "50%",
    "% d",
    'e"d',
    "국어",
    "어 학",
    "éco",
    "ÉCO",
    "run",
    "a",
    "ab",
    "AB",
    "k\\s",
    "job-",
    "nomatch",
    "j0",
    "-",
]


def _like(store: SqlStore, q: str) -> set[str]:
    """The plain LIKE the search was before the index (read from the table, no index involved)."""
    like = "%" + _escape(q) + "%"
    j = T.jobs.c
    with store.read() as c:
        return {
            r.id
            for r in c.execute(
                select(j.id).where(or_(j.name.like(like, escape="\\"), j.id.like(like, escape="\\")))
            )
        }


def _search(store: SqlStore, q: str) -> set[str]:
    return {v.id for v in search_jobs(store, None, JobFilter(q=q), per_page=1000).rows}


def _submit(store: SqlStore, names: list[str], first: int = 0) -> None:
    for k, name in enumerate(names, first):
        store.submit(Job(f"job-{k:03d}", submit_time=float(k)), {"h100": 1.0}, name=name)


def _store(database_url, backend: str, every: int | None = None) -> SqlStore:
    store = SqlStore(database_url(backend))
    if backend == "sqlite" and every is not None:
        store.text_index_every = every
    return store


def _insert(store: SqlStore, names: list[str], first: int = 0) -> None:
    """Job rows written as by the code of an older schema (a plain insert: no submission path)."""
    rows = [
        SubmissionWrites.job_row(
            Submission(Job(f"job-{k:03d}", submit_time=float(k)), {"h100": 1.0}, name=name)
        )
        for k, name in enumerate(names, first)
    ]
    with store.write() as c:
        c.execute(insert(T.jobs), rows)


@pytest.mark.parametrize(("backend", "every"), INDEXING)
def test_search_means_what_the_plain_like_meant(database_url, backend, every):
    store = _store(database_url, backend, every)
    try:
        _submit(store, NAMES)
        for q in QUERIES:
            assert _search(store, q) == _like(store, q), q
        # the case rules of each backend, kept: SQLite folds ASCII only, PostgreSQL's LIKE folds nothing
        if backend == "sqlite":
            assert _search(store, "TRAIN") == {"job-000", "job-001", "job-002"}
            assert _search(store, "ÉCO") == {"job-006"}
        else:
            assert _search(store, "TRAIN") == {"job-002"}
        assert _search(store, "50%") == {"job-003"} and _search(store, "% d") == {"job-003"}
        assert _search(store, "job-01") == {"job-010"}  # the id is searched too
        assert _search(store, "ab") == {"job-009"}  # under 3 characters: the LIKE alone
    finally:
        store.close()


@pytest.mark.parametrize(("backend", "every"), INDEXING)
def test_the_index_follows_inserts_updates_and_deletes(database_url, backend, every):
    store = _store(database_url, backend, every)
    try:
        _submit(store, ["alpha-run", "beta-run"])
        assert _search(store, "alpha") == {"job-000"}
        with store.write() as c:
            c.execute(update(T.jobs).where(T.jobs.c.id == "job-000").values(name="gamma-run"))
        assert _search(store, "alpha") == set() and _search(store, "gamma") == {"job-000"}
        with store.write() as c:
            c.execute(delete(T.jobs).where(T.jobs.c.id == "job-001"))
        assert _search(store, "beta") == set() and _search(store, "-run") == {"job-000"}
        _submit(store, ["delta-run"], first=2)
        assert _search(store, "-run") == {"job-000", "job-002"}
        for q in ("alpha", "gamma", "beta", "delta", "-run", "job", "b-0"):
            assert _search(store, q) == _like(store, q), q
        if backend == "sqlite":
            _caught_up(store)
            for q in ("alpha", "gamma", "beta", "delta", "-run", "job", "b-0"):
                assert _search(store, q) == _like(store, q), q
    finally:
        store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_0013_indexes_the_jobs_already_there(database_url, backend):
    from alembic import command

    from accelpool.storage import migrate

    store = SqlStore(database_url(backend))
    try:
        cfg = migrate._config()
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0012_dashboard_search_index")
        with store.read() as c:
            if backend == "sqlite":
                names = {r[0] for r in c.exec_driver_sql("SELECT name FROM sqlite_master")}
                assert not any(n.startswith("jobs_text") for n in names)
            else:
                idx = {r[0] for r in c.exec_driver_sql("SELECT indexname FROM pg_indexes")}
                assert "ix_jobs_name_trgm" not in idx
        _insert(store, NAMES)  # jobs written before the index exists
        migrate.upgrade(store.engine)
        with store.read() as c:
            if backend == "sqlite":
                n = c.exec_driver_sql(
                    "SELECT count(*) FROM jobs_text WHERE jobs_text MATCH '\"rain\"'"
                ).scalar()
                assert n == 3  # train-llama, Train-Llama-2, TRAIN_x
            else:
                idx = {r[0] for r in c.exec_driver_sql("SELECT indexname FROM pg_indexes")}
                assert {
                    "ix_jobs_name_trgm",
                    "ix_jobs_id_text_trgm",
                } <= idx  # on jobs.id since 0016: (id || '')
                assert "ix_jobs_id_trgm" not in idx
        for q in QUERIES:
            assert _search(store, q) == _like(store, q), q
        assert _search(store, "train") == (
            {"job-000", "job-001", "job-002"} if backend == "sqlite" else {"job-000"}
        )
    finally:
        store.close()


@pytest.mark.parametrize(("backend", "every"), INDEXING)
@pytest.mark.parametrize("sort", ["new", "old", "name"])
def test_text_search_pages_forward_and_back(database_url, backend, every, sort):
    """Keyset pages of a text search (read in the index's rowid order for new/old) cover every match once,
    in the sort's order, both ways; the capped count counts them; numbered pages (OFFSET) too."""
    store = _store(database_url, backend, every)
    try:
        _submit(store, [f"run-{k % 4}" if k % 3 else "other" for k in range(20)])
        f = JobFilter(q="run-", sort=sort)
        every = [v.id for v in search_jobs(store, None, f, per_page=100).rows]
        assert set(every) == _like(store, "run-") and len(every) == 13
        if sort == "new":
            assert every == sorted(every, reverse=True)
        pages, after = [], None
        while True:
            p = search_jobs(store, None, f, per_page=4, after=after)
            assert p.total == 13
            pages.append([v.id for v in p.rows])
            if p.next_after is None:
                break
            after = p.next_after
        assert [i for pg in pages for i in pg] == every
        back = search_jobs(store, None, f, per_page=4, before=p.prev_before)
        assert [v.id for v in back.rows] == pages[-2]
        numbered = [
            [v.id for v in search_jobs(store, None, f, page=k, per_page=4).rows] for k in (1, 2, 3, 4)
        ]
        assert numbered == pages
    finally:
        store.close()


@pytest.mark.postgres
def test_without_pg_trgm_the_migration_goes_on_and_the_search_still_answers(caplog):
    """A user who may not create the extension (no CREATE on the database): 0013 logs a warning naming
    the statements to run by hand, creates no trigram index, and the search reads the table as before."""
    import uuid

    import sqlalchemy as sa

    from accelpool.storage.pgserver import postgres_url

    base = postgres_url()
    if base is None:
        pytest.skip(NO_POSTGRES)
    tag = uuid.uuid4().hex[:10]
    role, db = f"ap_norights_{tag}", f"t_norights_{tag}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    store = None
    try:  # from the first CREATE: the role and the database are dropped whatever fails after it
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
            c.exec_driver_sql(f'CREATE DATABASE "{db}"')  # owned by the test's (super)user, not the role
        owner = sa.create_engine(sa.engine.make_url(base).set(database=db), isolation_level="AUTOCOMMIT")
        with owner.connect() as c:
            c.exec_driver_sql(f'GRANT CREATE, USAGE ON SCHEMA public TO "{role}"')
            c.exec_driver_sql(f'REVOKE CREATE ON DATABASE "{db}" FROM PUBLIC')
        owner.dispose()
        url = sa.engine.make_url(base).set(database=db, username=role, password=None)
        with caplog.at_level("WARNING", logger="accelpool.storage.migrate"):
            store = SqlStore(url.render_as_string(hide_password=False))
        assert "pg_trgm could not be created" in caplog.text and "gin_trgm_ops" in caplog.text
        assert "pg_trgm is not installed" in caplog.text and "ix_jobs_id_text_trgm" in caplog.text  # 0016
        with store.read() as c:
            idx = {r[0] for r in c.exec_driver_sql("SELECT indexname FROM pg_indexes")}
        assert "ix_jobs_name_trgm" not in idx
        _submit(store, NAMES)
        for q in QUERIES:
            assert _search(store, q) == _like(store, q), q
    finally:
        if store is not None:
            store.close()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            c.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        admin.dispose()


def _caught_up(store: SqlStore) -> None:
    """Index every job (as the group-commit writer does after a quiet second); the index then holds each
    job exactly once with its current name and id (FTS5's integrity check against the jobs table)."""
    store.index_text()
    with store.write() as c:
        assert (
            c.exec_driver_sql("SELECT upto FROM jobs_text_mark").scalar()
            == c.exec_driver_sql("SELECT MAX(seq) FROM jobs").scalar()
        )
        c.exec_driver_sql("INSERT INTO jobs_text(jobs_text, rank) VALUES ('integrity-check', 1)")


def test_a_job_is_found_as_soon_as_it_is_queued_and_indexed_in_batches(database_url):
    """SQLite (0014): a submission does not write the text index; the transaction that brings the jobs
    above the mark to ``text_index_every`` indexes them all; meanwhile the search finds each job at once
    (LIKE over the jobs above the mark); ``index_text`` catches up; the group-commit writer does so after
    a quiet spell."""
    store = _store(database_url, "sqlite", 5)
    try:

        def mark() -> int:
            with store.read() as c:
                return int(c.exec_driver_sql("SELECT upto FROM jobs_text_mark").scalar())

        def indexed(q: str) -> int:
            with store.read() as c:
                return int(
                    c.exec_driver_sql(
                        "SELECT count(*) FROM jobs_text WHERE jobs_text MATCH ?", (f'"{q}"',)
                    ).scalar()
                )

        for k in range(4):
            _submit(store, [f"batch-{k}"], first=k)
            assert _search(store, f"batch-{k}") == {f"job-{k:03d}"}  # found right after its submission
        assert mark() == 0 and indexed("batch-") == 0  # four jobs above the mark: not indexed yet
        _submit(store, ["batch-4"], first=4)
        assert mark() == 5 and indexed("batch-") == 5  # the fifth brought them to 5: one statement
        _submit(store, ["batch-5", "batch-6"], first=5)
        assert mark() == 5 and _search(store, "batch-") == {f"job-{k:03d}" for k in range(7)}
        assert store.index_text() == 2 and mark() == 7 and indexed("batch-") == 7
        assert store.index_text() == 0
        _caught_up(store)
        # the group-commit writer: after a quiet spell it catches the index up
        from accelpool.storage.batcher import SubmitBatcher

        b = SubmitBatcher(store, index_after=0.05)
        try:
            done: list[object] = []
            b.put(
                Submission(Job("job-100", submit_time=100.0), {"h100": 1.0}, name="late-batch"), done.append
            )
            deadline = time.monotonic() + 10
            while mark() < 8 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert done == [("job-100", True)] and mark() == 8 and indexed("late-batch") == 1
        finally:
            b.close()
        _caught_up(store)
    finally:
        store.close()


def test_migration_0014_keeps_the_index_of_the_jobs_there_and_goes_back(database_url):
    """0014 on a database indexed by 0013's triggers: the mark starts at the highest seq (nothing indexed
    twice); its downgrade indexes the jobs above the mark and restores 0013's triggers."""
    from alembic import command

    from accelpool.storage import migrate

    store = _store(database_url, "sqlite", 10**9)
    try:
        cfg = migrate._config()
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0013_job_text_index")
        _insert(store, NAMES)  # indexed by 0013's insert trigger
        migrate.upgrade(store.engine)
        _caught_up(store)  # the mark is the highest seq already: the integrity check holds
        assert store.index_text() == 0
        _submit(store, ["after-0014"], first=50)  # above the mark, not indexed (every = 10**9)
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0013_job_text_index")
        with store.write() as c:
            c.exec_driver_sql("INSERT INTO jobs_text(jobs_text, rank) VALUES ('integrity-check', 1)")
            assert (
                c.exec_driver_sql("SELECT count(*) FROM jobs_text WHERE jobs_text MATCH '\"after\"'").scalar()
                == 1
            )
        _insert(store, ["under-0013"], first=60)
        with store.write() as c:
            c.exec_driver_sql("INSERT INTO jobs_text(jobs_text, rank) VALUES ('integrity-check', 1)")
        migrate.upgrade(store.engine)
        for q in QUERIES + ["after", "under"]:
            assert _search(store, q) == _like(store, q), q
    finally:
        store.close()
