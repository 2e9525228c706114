"""`cdss etl export --parquet DIR`: every OMOP table round-trips through Parquet with its row
count, column names, Arrow types and values, on SQLite and PostgreSQL; streamed in batches."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from cdw_cohort import write_cohort
from sqlalchemy import select
from typer.testing import CliRunner

from cdss.cli import app
from cdw.etl import Etl
from cdw.parquet import arrow_type, export_parquet, export_tables
from cdw.pseudonym import Pseudonymizer
from cdw.schema import metadata


def _rows(etl: Etl, name: str) -> list[tuple[Any, ...]]:
    with etl.cdw.connect() as conn:
        return [tuple(r) for r in conn.execute(select(metadata.tables[name]))]


def _norm(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value


def test_cdw_parquet_round_trips_every_table(
    database_url: str, pz: Pseudonymizer, tmp_path: Path
) -> None:
    write_cohort(database_url, 3)
    etl = Etl(database_url, database_url, pz, batch_size=7)
    try:
        etl.run()
        out = tmp_path / "parquet"
        done = export_parquet(etl.cdw, out, batch_rows=4)  # several batches per table
        assert [d.table for d in done] == export_tables()
        assert "person" in export_tables() and "image_feature" in export_tables()
        assert not any(t.startswith("cdw_") for t in export_tables())
        for item in done:
            table = metadata.tables[item.table]
            source = _rows(etl, item.table)
            read = pq.read_table(item.path)
            assert read.num_rows == item.rows == len(source), item.table
            assert read.column_names == [c.name for c in table.columns]
            for column in table.columns:
                assert read.schema.field(column.name).type == arrow_type(column.type)
            back = sorted(read.to_pylist(), key=repr)
            want = sorted(
                ({c.name: _norm(v) for c, v in zip(table.columns, r, strict=True)} for r in source),
                key=repr,
            )
            assert back == want, item.table
        person = pq.read_table(out / "person.parquet")
        assert person.num_rows == 3
        assert person.schema.field("person_id").type == pa.int64()
        measurement = pq.read_table(out / "measurement.parquet")
        assert measurement.num_rows > 3 * 4
        assert measurement.schema.field("measurement_date").type == pa.date32()
        assert measurement.schema.field("measurement_datetime").type == pa.timestamp("us")
        assert measurement.schema.field("value_as_number").type == pa.float64()
        assert pq.ParquetFile(out / "measurement.parquet").metadata.num_row_groups > 1
        assert not list(out.glob("*.part"))
    finally:
        etl.close()


def test_cdw_parquet_cli(database_url: str, tmp_path: Path) -> None:
    write_cohort(database_url, 2)
    env = {
        "CDSS_DATA_DIR": str(tmp_path / "var"),
        "CDSS_DATABASE_URL": database_url,
        "CDSS_CDW_DATABASE_URL": f"sqlite:///{tmp_path / 'cdw.db'}",
        "CDSS_CDW_PSEUDONYM_KEY": "a-long-enough-test-key",
    }
    runner = CliRunner()
    assert runner.invoke(app, ["etl", "--full"], env=env).exit_code == 0
    out = tmp_path / "export"
    result = runner.invoke(app, ["etl", "export", "--parquet", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert pq.read_table(out / "person.parquet").num_rows == 2
    assert {p.stem for p in out.glob("*.parquet")} == set(export_tables())
    missing = runner.invoke(app, ["etl", "export"], env=env)
    assert missing.exit_code == 2
