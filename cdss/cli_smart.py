"""`cdss smart`: the SMART app's operator commands (issue 8)."""

from __future__ import annotations

import typer

from smart_app.config import SmartSettings
from smart_app.registration import RegistrationFailed, register

smart_app = typer.Typer(help="The SMART app: register it with an EHR.")


@smart_app.command("register")
def register_command(
    iss: str = typer.Option(..., help="the EHR's FHIR base (e.g. https://host/apis/default/fhir)"),
    app_url: str = typer.Option(
        None, help="this app's public base URL (default: CDSS_SMART_PUBLIC_URL or CDSS_BASE_URL)"
    ),
    name: str = typer.Option("cdss SMART app", help="the client name the EHR shows"),
) -> None:
    """Register the app by dynamic client registration; prints the CDSS_SMART_* settings."""
    from cdss.settings import load_settings

    settings = SmartSettings()
    base = app_url or (str(settings.public_url) if settings.public_url else None)
    base = base or (str(load_settings().base_url) if load_settings().base_url else None)
    if not base:
        raise typer.BadParameter("give --app-url (or set CDSS_BASE_URL)", param_hint="--app-url")
    try:
        answer = register(iss, base, settings.scopes_v2, client_name=name)
    except RegistrationFailed as exc:
        typer.echo(f"registration failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"CDSS_SMART_CLIENT_ID={answer.get('client_id', '')}")
    typer.echo(f"CDSS_SMART_CLIENT_SECRET={answer.get('client_secret', '')}")
    typer.echo(f'CDSS_SMART_ISSUERS=["{iss.rstrip("/")}"]')
    typer.echo(
        "# keep the secret out of logs; then enable the client in OpenEMR: "
        "Administration > System > API Clients",
        err=True,
    )


def register_cli(app: typer.Typer) -> None:
    app.add_typer(smart_app, name="smart")
