"""Bugs found by fuzzing, each pinned by the smallest request that showed it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cdss.app import create_app
from cdss.settings import load_settings


@pytest.fixture
def cds_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
        data_dir=tmp_path / "var",
        secret_key="test-cursor-key",
        cds_auth="disabled",
    )
    with TestClient(create_app(settings, source_urls={})) as client:
        yield client


def study(sid: str, started: str) -> dict[str, object]:
    return {
        "resourceType": "ImagingStudy",
        "id": sid,
        "status": "available",
        "subject": {"reference": "Patient/p1"},
        "started": started,
    }


def test_an_offset_past_24_hours_is_not_a_date_and_is_ignored(cds_client: TestClient) -> None:
    """`+25:00` matches the digits of a zone but not R4's grammar (at most ±14:00); it used to
    raise in datetime.fromisoformat and turn patient-imaging-summary into a 500."""
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": {
            "studies": {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [
                    {"resource": study("bad", "2026-11-01T10:00:00+25:00")},
                    {"resource": study("good", "2026-11-02T10:00:00+01:00")},
                ],
            },
            "reports": {"resourceType": "Bundle", "type": "searchset"},
            "findings": {"resourceType": "Bundle", "type": "searchset"},
        },
    }
    resp = cds_client.post("/cds-services/patient-imaging-summary", json=body)
    assert resp.status_code == 200, resp.text
    (summary,) = resp.json()["cards"]
    assert summary["summary"].startswith("1 imaging study")


def test_an_error_quoting_a_control_character_is_still_valid_fhir(cds_client: TestClient) -> None:
    """R4 strings may not hold control characters; the 406 for `_format` quoted the value raw."""
    resp = cds_client.get("/fhir/Condition", params={"_format": "a\x01b"})
    assert resp.status_code == 406
    (issue,) = resp.json()["issue"]
    assert issue["diagnostics"] == "_format=a\\x01b is not supported; use json"
    assert not any(ord(ch) < 32 for ch in resp.text)
