"""Alembic environment for the CDW: runs on the engine handed over, and only ever looks at
the CDW's own tables (a shared database also holds the facade's)."""

from __future__ import annotations

from typing import Any

from alembic import context

import cdw.schema_ext  # noqa: F401  (registers the remaining tables on the metadata)
from cdw.migrations import VERSION_TABLE
from cdw.schema import metadata


def _ours(_obj: Any, _name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and reflected and compare_to is None)


engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        version_table=VERSION_TABLE,
        include_object=_ours,
    )
    with context.begin_transaction():
        context.run_migrations()
