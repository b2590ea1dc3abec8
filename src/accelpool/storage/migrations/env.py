"""Alembic environment: always run programmatically with a connection (see accelpool.storage.migrate)."""

from __future__ import annotations

from alembic import context

from accelpool.storage.tables import include_name, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only used when someone runs the alembic CLI by hand
    raise RuntimeError("run migrations through accelpool.storage.migrate.upgrade(engine)")
context.configure(
    connection=connection, target_metadata=metadata, render_as_batch=True, include_name=include_name
)
with context.begin_transaction():
    context.run_migrations()
