"""The log record factory scrubs credentials whoever logs them."""

from __future__ import annotations

import logging

import pytest

from fhir_facade.security import redact


def test_scrub_masks_jwts_bearer_values_and_credential_fields() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    text = redact.scrub(
        f"Issue token {{'access_token': '{jwt}', 'refresh_token': 'def502aa11'}} "
        "Authorization: Basic YWxpY2U6c2VjcmV0 password=hunter2hunter2&next=1 "
        '"client_secret": "s3cr3t-value"'
    )
    for secret in (jwt, "def502aa11", "YWxpY2U6c2VjcmV0", "hunter2hunter2", "s3cr3t-value"):
        assert secret not in text
    assert "next=1" in text and "Issue token" in text
    assert redact.scrub("token_type_hint=access_token GET /fhir/Patient") == (
        "token_type_hint=access_token GET /fhir/Patient"
    )


def test_installed_factory_scrubs_records_for_any_handler(caplog: pytest.LogCaptureFixture) -> None:
    redact.install()
    redact.install()  # idempotent
    with caplog.at_level(logging.DEBUG, logger="authlib.some.module"):
        logging.getLogger("authlib.some.module").debug(
            "lent %s", {"access_token": "abcdefgh12345678"}
        )
    assert "abcdefgh12345678" not in caplog.text and "[redacted]" in caplog.text
