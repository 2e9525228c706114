"""The store's tables: current resources, their version history, and one index table per
search-parameter type (the layout HAPI's JPA server uses).

Resources are kept as canonical JSON bytes so reads return them untouched; everything a search
needs is copied into the index tables when a version is written. Timestamps are integer
microseconds since the Unix epoch (UTC): exact, portable between SQLite and PostgreSQL, and
directly comparable with the ranges that FHIR date search works on.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BigInteger on PostgreSQL, but a plain INTEGER PRIMARY KEY (rowid alias) on SQLite.
PK = BigInteger().with_variant(Integer(), "sqlite")

resources = Table(
    "resources",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content_hash", String(64), nullable=False),
    Column("content", LargeBinary, nullable=True),
    UniqueConstraint("res_type", "res_id"),
    Index(None, "res_type", "last_updated"),
)

resource_history = Table(
    "resource_history",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),
    Column("content", LargeBinary, nullable=True),
    UniqueConstraint("res_type", "res_id", "version_id"),
    Index(None, "res_type", "last_updated"),
    Index(None, "last_updated"),
)


store_state = Table(
    "store_state",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated", BigInteger, nullable=False),
)
"""Small named values written in the same transaction as data (sync cursors)."""


def _index_table(name: str, *columns: Column[object], lookup: tuple[str, ...]) -> Table:
    """An index table keyed by the resource row; `lookup` is the column order searches use."""
    return Table(
        name,
        metadata,
        Column("resource_pk", PK, ForeignKey("resources.pk", ondelete="CASCADE"), nullable=False),
        Column("res_type", String(64), nullable=False),
        Column("param", String(64), nullable=False),
        *columns,
        Index(None, "res_type", "param", *lookup),
        Index(None, "resource_pk", "param"),
    )


idx_token = _index_table(
    "idx_token",
    Column("system", String(255), nullable=True),
    Column("code", String(255), nullable=True),
    lookup=("code", "system"),
)

idx_string = _index_table(
    "idx_string",
    Column("value_norm", String(255), nullable=False),
    Column("value_exact", String(255), nullable=False),
    lookup=("value_norm",),
)

idx_date = _index_table(
    "idx_date",
    Column("low", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
    lookup=("low", "high"),
)

idx_reference = _index_table(
    "idx_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("url", String(512), nullable=False),
    lookup=("target_id", "target_type"),
)

idx_quantity = _index_table(
    "idx_quantity",
    Column("value", Float, nullable=False),
    Column("system", String(255), nullable=True),
    Column("code", String(255), nullable=True),
    lookup=("value",),
)

idx_number = _index_table(
    "idx_number",
    Column("value", Float, nullable=False),
    lookup=("value",),
)

INDEX_TABLES = {
    "token": idx_token,
    "string": idx_string,
    "date": idx_date,
    "reference": idx_reference,
    "quantity": idx_quantity,
    "number": idx_number,
}
