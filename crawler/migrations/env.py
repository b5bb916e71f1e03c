"""Alembic's environment, driven from crawler.migrations: it always runs on the connection given there."""

from __future__ import annotations

from alembic import context

from crawler.store import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through crawler.migrations (`crawler migrate`), not the alembic tool")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
