"""Export every OMOP table of the CDW to Parquet (one file per table) for Spark analytics.

Streamed: rows are read with a server-side cursor (`stream_results`, `yield_per`) and written
as Arrow record batches through one `ParquetWriter` per table, so memory stays bounded by the
batch size whatever the CDW's size. The Arrow schema comes from the SQLAlchemy column types,
not from the data, so an empty table still gets a typed file and Spark sees the same schema
on every export (BIGINT ids -> int64, concept ids -> int32, DATE -> date32, TIMESTAMP ->
timestamp[us], floats -> float64, text -> string). The ETL's bookkeeping (`cdw_*`) is not
exported: it is not OMOP and only serves incremental runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    Numeric,
    Table,
    select,
)
from sqlalchemy.types import TypeEngine

from cdw import schema_ext  # noqa: F401  (registers the MI-CDM and health-system tables)
from cdw.schema import metadata

Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class TableExport:
    table: str
    rows: int
    path: Path


def export_tables() -> list[str]:
    """The OMOP tables (clinical, health-system, vocabulary, metadata, MI-CDM) in name order."""
    return sorted(name for name in metadata.tables if not name.startswith("cdw_"))


def arrow_type(sql_type: TypeEngine[Any]) -> pa.DataType:
    """The Arrow type of a CDW column (BigInteger is checked before its Integer base)."""
    if isinstance(sql_type, BigInteger):
        return pa.int64()
    if isinstance(sql_type, Integer):
        return pa.int32()
    if isinstance(sql_type, DateTime):
        return pa.timestamp("us")
    if isinstance(sql_type, Date):
        return pa.date32()
    if isinstance(sql_type, Float | Numeric):
        return pa.float64()
    if isinstance(sql_type, Boolean):
        return pa.bool_()
    return pa.string()


def arrow_schema(table: Table) -> pa.Schema:
    return pa.schema(
        [pa.field(c.name, arrow_type(c.type), nullable=bool(c.nullable)) for c in table.columns]
    )


def _naive(value: Any) -> Any:
    """PostgreSQL may hand back aware datetimes; the CDW stores naive (shifted) instants."""
    tz = getattr(value, "tzinfo", None)
    return value.replace(tzinfo=None) if tz is not None else value


def export_table(engine: Engine, table: Table, path: Path, batch_rows: int = 50_000) -> int:
    """Stream one table into `path`; returns the row count."""
    schema = arrow_schema(table)
    names = [f.name for f in schema]
    stamps = {i for i, f in enumerate(schema) if pa.types.is_timestamp(f.type)}
    rows = 0
    tmp = path.with_suffix(".parquet.part")
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer, engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(
            select(table)
        )
        for chunk in result.partitions():
            columns = [
                [_naive(r[i]) for r in chunk] if i in stamps else [r[i] for r in chunk]
                for i in range(len(names))
            ]
            writer.write_batch(pa.record_batch(columns, schema=schema))
            rows += len(chunk)
    tmp.replace(path)  # a crashed export never leaves a truncated file under the final name
    return rows


def export_parquet(
    engine: Engine, directory: Path, *, batch_rows: int = 50_000, progress: Progress | None = None
) -> list[TableExport]:
    """Write `<table>.parquet` for every OMOP table into `directory` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    done: list[TableExport] = []
    for name in export_tables():
        path = directory / f"{name}.parquet"
        rows = export_table(engine, metadata.tables[name], path, batch_rows)
        done.append(TableExport(name, rows, path))
        if progress:
            progress(name, rows)
    return done
