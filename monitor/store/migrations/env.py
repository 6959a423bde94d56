"""Alembic environment: runs on the connection the store hands over (see store.migrate)."""

from __future__ import annotations

from alembic import context

from monitor.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("monitor's migrations run through monitor.store.migrate(), not the CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
