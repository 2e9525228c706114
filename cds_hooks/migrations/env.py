"""Alembic environment for the CDS tables: the engine comes from the caller, the version table
is `cds_alembic_version`, and only `cds_*` tables are this history's business."""

from __future__ import annotations

from typing import Any

from alembic import context

from cds_hooks.migrations import VERSION_TABLE
from cds_hooks.tables import metadata


def _ours(name: Any, type_: str, *_: Any) -> bool:
    return type_ != "table" or str(name).startswith("cds_")


engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=_ours,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
