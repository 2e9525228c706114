"""CLI verbs for the data path: `cdss simulate`, `cdss seed`, `cdss sync`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from cdss.settings import Settings
from cdss.sources import SourceSettings, build_sources, orthanc_auth
from cdss.stopping import stop_on_signals
from fhir_facade.store.factory import open_store
from fhir_facade.sync.engine import SyncReport
from fhir_facade.sync.runner import Runner

console = Console(stderr=True)


class Simulated(StrEnum):
    openemr = "openemr"
    senaite = "senaite"


def simulate(
    system: Simulated = typer.Argument(..., help="Which source system to simulate"),
    host: str = typer.Option("127.0.0.1", help="Bind address"),
    port: int = typer.Option(..., help="Port"),
) -> None:
    """Serve a protocol-faithful OpenEMR or SENAITE simulator (in-memory data)."""
    if system is Simulated.openemr:
        from simulators.openemr.app import create_openemr_app

        app = create_openemr_app(public_base=f"http://{host}:{port}")
        where = f"http://{host}:{port}/apis/default/fhir"
    else:
        from simulators.senaite import create_senaite_app

        app = create_senaite_app()
        where = f"http://{host}:{port}/senaite/@@API/senaite/v1"
    console.print(f"{system.value} simulator at {where}")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def seed(
    patients: int = typer.Option(100, "--patients", min=1, help="Cohort size"),
    seed_value: int = typer.Option(1, "--seed", help="Random seed (same seed, same cohort)"),
    out: Path | None = typer.Option(None, help="Where ground_truth.csv goes (default data dir)"),
) -> None:
    """Write a synthetic cohort into OpenEMR, SENAITE and Orthanc through their APIs."""
    from simulators.cohort.seed import Targets
    from simulators.cohort.seed import seed as run_seed

    src = SourceSettings()
    targets = Targets(
        openemr_url=str(src.openemr_url).rstrip("/") if src.openemr_url else None,
        senaite_url=str(src.senaite_url).rstrip("/") if src.senaite_url else None,
        senaite_auth=(src.senaite_user, src.senaite_password.get_secret_value()),
        orthanc_url=str(src.orthanc_url).rstrip("/") if src.orthanc_url else None,
        orthanc_auth=orthanc_auth(src),
    )
    if not (targets.openemr_url or targets.senaite_url or targets.orthanc_url):
        console.print(
            "[red]No source configured: set CDSS_OPENEMR_URL, CDSS_SENAITE_URL "
            "and/or CDSS_ORTHANC_URL[/red]"
        )
        raise typer.Exit(2)
    with Progress(
        SpinnerColumn(), TextColumn("seeding"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        task = bar.add_task("seed", total=patients)
        summary = run_seed(
            patients,
            seed_value,
            targets,
            out or src.data_dir / "cohort",
            progress=lambda done: bar.update(task, completed=done),
        )
    console.print(
        f"{summary.patients} patients ({summary.cancers} with cancer), "
        f"{summary.samples} samples / {summary.lab_results} results, "
        f"{summary.ct_studies} CT studies ({summary.ct_instances} instances); "
        f"ground truth: {summary.truth_file}"
    )


def _summary(reports: list[SyncReport]) -> Table:
    table = Table(title="sync")
    for column in ("source", "type", "created", "updated", "unchanged", "rejected", "deleted"):
        table.add_column(column, justify="left" if column in ("source", "type") else "right")
    for report in reports:
        for rtype, c in sorted(report.counts.items()):
            table.add_row(
                report.source,
                rtype,
                str(c.created),
                str(c.updated),
                str(c.unchanged),
                str(c.rejected),
                str(c.deleted),
            )
    return table


def sync(
    source: str | None = typer.Option(None, help="Only this source (openemr|senaite|orthanc|pacs)"),
    follow: bool = typer.Option(False, help="Keep polling the sources until interrupted"),
) -> None:
    """Pull every configured source incrementally into the facade's store."""
    settings, src = Settings(), SourceSettings()
    sources = build_sources(src, only=source)
    if not sources:
        console.print(
            "[red]No source configured: set CDSS_OPENEMR_URL, CDSS_SENAITE_URL, and "
            "CDSS_PACS_URL (with CDSS_PACS_PROFILE=dicomweb for a standard DICOMweb PACS) "
            "or CDSS_ORTHANC_URL[/red]"
        )
        raise typer.Exit(2)
    # Following: Ctrl-C / SIGTERM stop it cleanly from the start, the first pass included (a
    # signal during that pass used to end the process with a KeyboardInterrupt, exit 130).
    stop = stop_on_signals() if follow else None
    store = open_store(settings.effective_database_url)  # CDSS_STORE=sql|upstream
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True
    ) as bar:
        task = bar.add_task("syncing")

        def on_batch(report: SyncReport) -> None:
            bar.update(
                task,
                description=f"{report.source}: {report.batches} batches, {report.stored} resources",
            )

        runner = Runner(store, sources, batch_size=src.sync_batch_size, on_batch=on_batch)
        reports = runner.run_once(stop)
    console.print(_summary(reports))
    for report in reports:
        for item in report.rejected[:20]:
            console.print(
                f"[yellow]rejected[/yellow] {report.source} {item.source_ref}: {item.reason}"
            )
        if report.unlinked:
            console.print(
                f"[yellow]{len(report.unlinked)} {report.source} resources not "
                f"linked to a patient yet[/yellow] (e.g. {report.unlinked[0]})"
            )
    if stop is not None:
        if not stop.is_set():
            console.print(f"following the sources every {src.sync_interval:g} s; Ctrl-C stops")
        runner.follow(stop, src.sync_interval)
    store.close()
    if runner.failures and not follow:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(simulate)
    app.command("seed")(seed)
    app.command()(sync)
