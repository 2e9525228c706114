"""The `cdss` command: serve the app, or start the demo with embedded defaults."""

from __future__ import annotations

import orjson
import typer
import uvicorn

from cdss import cli_data
from cdss.app import create_app
from cdss.logs import configure
from cdss.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    help="Clinical decision support hub: FHIR facade, CDS Hooks, AI.", no_args_is_help=True
)
feedback_app = typer.Typer(help="CDS Hooks card feedback.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


def _settings(**overrides: object) -> Settings:
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    configure(settings.log_level)
    return settings


def _serve(settings: Settings) -> None:
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (CDSS_HOST)"),
    port: int | None = typer.Option(None, help="Port (CDSS_PORT)"),
) -> None:
    """Start the ASGI app: the FHIR facade at /fhir, CDS Hooks at /cds-services."""
    _serve(_settings(host=host, port=port))


@app.command()
def demo(
    port: int | None = typer.Option(None, help="Port (CDSS_PORT)"),
) -> None:
    """Start the demo with embedded defaults (SQLite under ./var) and print its URLs."""
    settings = _settings(port=port)
    base = f"http://{settings.host}:{settings.port}"
    typer.echo("CDSS demo")
    typer.echo(f"  database          {settings.effective_database_url}")
    typer.echo(f"  FHIR R4 facade    {base}/fhir  (capabilities: {base}/fhir/metadata)")
    typer.echo(f"  CDS Hooks         {base}/cds-services  (auth: {settings.cds_auth})")
    typer.echo(f"  health            {base}/healthz  {base}/readyz")
    typer.echo("Ctrl-C stops it.")
    _serve(settings)


@feedback_app.command("report")
def feedback_report(
    service: str | None = typer.Option(None, help="Only this CDS service id"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
) -> None:
    """Accept and override rates of the cards, per service, card kind and override reason."""
    from cds_hooks.feedback import FeedbackStore
    from cds_hooks.report import feedback_report as build
    from cds_hooks.report import format_table

    settings = _settings()
    store = FeedbackStore(settings.effective_database_url)
    try:
        stats = build(store.engine, service)
    finally:
        store.close()
    if as_json:
        typer.echo(orjson.dumps([s.as_json() for s in stats], option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(format_table(stats))


cli_data.register(app)

if __name__ == "__main__":
    app()
