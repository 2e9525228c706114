"""Alembic environment: runs on the engine the store hands over (no URL in a config file)."""

from __future__ import annotations

from alembic import context

from fhir_facade.store.tables import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
