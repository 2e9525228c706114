"""CLI verbs of the clinical data warehouse: `cdss etl [--full] [--since T]`,
`cdss etl report`, `cdss etl load-vocab DIR`, `cdss etl export --parquet DIR`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cdw.config import CdwConfigError, CdwSettings

console = Console(stderr=True)
etl_app = typer.Typer(help="Clinical data warehouse: FHIR facade -> OMOP CDM 5.4.")


def _settings() -> CdwSettings:
    return CdwSettings()


def _since_us(value: str) -> int:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 instant: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1_000_000)


@etl_app.callback(invoke_without_command=True)
def etl(
    ctx: typer.Context,
    full: bool = typer.Option(False, "--full", help="Empty the CDW and load everything"),
    since: str | None = typer.Option(None, help="Re-read from this instant (ISO 8601)"),
) -> None:
    """Load the facade's changes since the last run into the CDW (pseudonymised)."""
    if ctx.invoked_subcommand is not None:
        return
    from cdw.etl import Etl, EtlError
    from cdw.pseudonym import Pseudonymizer

    settings = _settings()
    try:
        pz = Pseudonymizer(settings.pseudonym_key(), max_shift_days=settings.cdw_max_shift_days)
    except CdwConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    runner = Etl(
        settings.effective_database_url,
        settings.effective_cdw_url,
        pz,
        batch_size=settings.cdw_batch_size,
        birth_precision=settings.cdw_birth_precision,
    )
    try:
        with Progress(
            TextColumn("etl"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=console,
        ) as bar:  # fmt: skip
            task = bar.add_task("etl", total=None)
            summary = runner.run(
                full=full,
                since=_since_us(since) if since else None,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except EtlError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        runner.close()
    console.print(
        f"{summary.resources} resources ({summary.deleted} deleted), "
        f"{sum(summary.rows.values())} rows, {summary.unmapped} unmapped codes"
    )
    for source, message in summary.errors:
        console.print(f"[red]error[/red] {source}: {message}")
    if summary.errors:
        raise typer.Exit(1)


@etl_app.command("report")
def report(as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Data quality: rows per table, unmapped codes, orphans, date sanity, last run's errors."""
    from cdw.etl import Etl  # noqa: F401  (registers all tables)
    from cdw.migrations import upgrade
    from cdw.report import build_report
    from fhir_facade.store.engine import make_engine

    engine = make_engine(_settings().effective_cdw_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            built = build_report(conn)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(orjson.dumps(built.as_json(), option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("table", "rows", "orphans", "before birth", "future", "end < start")
    for name, count in built.rows.items():
        table.add_row(
            name,
            str(count),
            *(str(d.get(name, "")) for d in (
                built.orphans, built.before_birth, built.in_future, built.end_before_start
            )),
        )  # fmt: skip
    Console().print(table)
    unmapped = Table("table", "vocabulary", "code", "count", title="unmapped codes")
    for t, v, c, n in built.unmapped:
        unmapped.add_row(t, v, c, str(n))
    Console().print(unmapped)
    errors = built.last_run.get("errors") or []
    Console().print(f"last run: {len(errors)} errors; {'OK' if built.ok else 'PROBLEMS'}")


@etl_app.command("load-vocab")
def load_vocab(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="Athena export"),
) -> None:
    """Replace the CDW vocabulary with an Athena export (CONCEPT.csv, CONCEPT_RELATIONSHIP.csv)."""
    from cdw.etl import Etl  # noqa: F401  (registers all tables)
    from cdw.migrations import upgrade
    from cdw.vocab import load_athena
    from fhir_facade.store.engine import make_engine

    engine = make_engine(_settings().effective_cdw_url)
    try:
        upgrade(engine)
        counts = load_athena(engine, directory)
    finally:
        engine.dispose()
    console.print(f"{counts['concept']} concepts, {counts['concept_relationship']} relationships")


@etl_app.command("export")
def export(
    parquet: Path = typer.Option(..., "--parquet", file_okay=False, help="Output directory"),
    batch_rows: int = typer.Option(50_000, min=1, help="Rows per Parquet record batch"),
) -> None:
    """Export every OMOP table to DIR/<table>.parquet (streamed) for Spark and other engines."""
    from cdw.migrations import upgrade
    from cdw.parquet import export_parquet
    from fhir_facade.store.engine import make_engine

    engine = make_engine(_settings().effective_cdw_url)
    try:
        upgrade(engine)
        done = export_parquet(
            engine,
            parquet,
            batch_rows=batch_rows,
            progress=lambda table, rows: console.print(f"{table}: {rows} rows"),
        )
    finally:
        engine.dispose()
    summary = f"{len(done)} tables, {sum(d.rows for d in done)} rows -> {parquet}"
    _audit_export(summary)
    console.print(summary)


def _audit_export(summary: str) -> None:
    """An export leaves an AuditEvent (DICOM 110106 Export) in the facade's store."""
    from cdss.settings import load_settings
    from fhir_facade.audit import Event
    from fhir_facade.audit.direct import record_now

    event = Event(
        "export",
        "omop-parquet",
        "R",
        200,
        observer="cdss etl export",
        site="cdw",
        description=summary,
    )
    record_now(load_settings().effective_database_url, event)


def register(app: typer.Typer) -> None:
    app.add_typer(etl_app, name="etl")
