"""The `cdss` command: serve the app, or start the demo with embedded defaults."""

from __future__ import annotations

import typer
import uvicorn

from cdss.app import create_app
from cdss.logs import configure
from cdss.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    help="Clinical decision support hub: FHIR facade, CDS Hooks, AI.", no_args_is_help=True
)


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
    """Start the ASGI app: the FHIR facade at /fhir."""
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
    typer.echo(f"  health            {base}/healthz  {base}/readyz")
    typer.echo("Ctrl-C stops it.")
    _serve(settings)


if __name__ == "__main__":
    app()
