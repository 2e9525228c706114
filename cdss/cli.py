"""The `cdss` command: serve the app, or start the demo with embedded defaults."""

from __future__ import annotations

import orjson
import typer
import uvicorn

from cdss import cli_cdw, cli_data, cli_imaging, cli_models, cli_orders, cli_smart
from cdss.app import create_app
from cdss.logs import configure
from cdss.observability.jsonlog import setup as setup_logging
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
    setup_logging(settings.log_level)  # JSON lines with request id (CDSS_LOG_FORMAT=text: plain)
    return settings


def _serve(settings: Settings) -> None:
    try:
        app = create_app(settings)
    except SettingsError as exc:  # e.g. CDSS_FHIR_AUTH=disabled off loopback
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        log_config=None,  # keep the JSON handler set up above
        access_log=False,  # cdss.access logs each request by route template, never its URL
    )


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (CDSS_HOST)"),
    port: int | None = typer.Option(None, help="Port (CDSS_PORT)"),
    workers: int = typer.Option(
        1, min=1, help="Worker processes; each builds the app from the CDSS_* environment"
    ),
) -> None:
    """Start the ASGI app: the FHIR facade at /fhir, CDS Hooks at /cds-services."""
    settings = _settings(host=host, port=port)
    if workers > 1:
        _serve_workers(settings, workers)
        return
    _serve(settings)


def _serve_workers(settings: Settings, workers: int) -> None:
    """Several processes on one port (uvicorn's supervisor restarts any that dies). The app is
    stateless between requests (the store and the signing keys are shared), so a request may
    land on any of them; each loads the same settings from the environment."""
    uvicorn.run(
        "cdss.app:app_from_env",
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=60,  # importing the app (torch, models) outlasts the 5 s default
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        log_config=None,  # each worker sets up JSON logging in app_from_env
        access_log=False,  # uvicorn's access line carries the URL; cdss.access does not
    )


@app.command()
def demo(
    port: int | None = typer.Option(
        None, help="Port of the app (CDSS_PORT); simulators use +1, +2"
    ),
    patients: int = typer.Option(40, min=1, help="Size of the seeded synthetic cohort"),
    seed: int = typer.Option(
        32, help="Cohort seed (32: patient 6 has eGFR 25 and a 28 mm nodule on a prior CT)"
    ),
    retrain: bool = typer.Option(
        False, "--retrain", help="Train the risk model (and with --train-imaging the imaging one)"
    ),
    train_size: int = typer.Option(
        2000, min=200, help="Generator patients the risk model trains on when it is trained"
    ),
    imaging: bool = typer.Option(
        False,
        "--train-imaging",
        help="Train the tiny imaging model when none is promoted (needs Orthanc; many minutes)",
    ),
) -> None:
    """Start the demo: simulators, Orthanc (when installed), a seeded cohort, sync, ETL, models,
    the SMART app registered with the OpenEMR simulator, the app; prints a walkthrough."""
    from cdss.demo_run import DemoOptions, run_demo

    settings = _settings(port=port)
    options = DemoOptions(
        patients=patients, seed=seed, retrain=retrain, train_size=train_size, imaging=imaging
    )
    try:
        run_demo(settings, options, echo=lambda line: typer.echo(line))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping: still a stop, not a failure
        typer.echo("stopped")


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
cli_orders.register(app)
cli_cdw.register(app)
cli_models.register(app)
cli_smart.register_cli(app)
cli_imaging.register(app)

if __name__ == "__main__":
    app()
