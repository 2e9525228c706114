"""`cdss smart register` against the OpenEMR simulator's dynamic registration endpoint."""

from __future__ import annotations

from typer.testing import CliRunner

from cdss.cli import app
from tests.smart_app.stack import SmartStack


def test_register_prints_the_settings_and_the_ehr_knows_the_client(stack: SmartStack) -> None:
    result = CliRunner().invoke(
        app, ["smart", "register", "--iss", stack.iss, "--app-url", "https://cdss.example.org"]
    )
    assert result.exit_code == 0, result.output
    lines = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("CDSS_")
    )
    client = stack.emr_app.state.oauth._ctx.store.client(lines["CDSS_SMART_CLIENT_ID"])
    assert client is not None and client.client_secret == lines["CDSS_SMART_CLIENT_SECRET"]
    assert client.metadata["redirect_uris"] == ["https://cdss.example.org/smart/callback"]
    scopes = set(client.metadata["scope"].split())
    assert {"launch", "launch/patient", "openid", "fhirUser", "user/Patient.rs"} <= scopes
    assert lines["CDSS_SMART_ISSUERS"] == f'["{stack.iss}"]'


def test_register_with_an_unknown_ehr_fails_clearly(stack: SmartStack) -> None:
    result = CliRunner().invoke(
        app, ["smart", "register", "--iss", f"{stack.emr_base}/nope", "--app-url", "https://x.org"]
    )
    assert result.exit_code == 1 and "no SMART configuration" in result.stderr
