"""DiagnosticReports exported to the OpenEMR simulator (on loopback) as patient documents: a PDF
in the configured category with a link back to the facade, once per version, only for the
categories configured."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from fhir_facade.orders.worker import Worker
from fhir_facade.store.sql_store import SqlStore
from simulators.openemr.app import create_openemr_app
from tests.fhir_facade.orders.conftest import settings
from tests.support.postgres import free_port
from tests.support.server import serve

API = "/apis/default/api"
PATH = "/Categories/Lab Report"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"


@pytest.fixture
def emr() -> Iterator[tuple[str, dict[str, str], httpx.Client]]:
    port = free_port()
    app = create_openemr_app(public_base=f"http://127.0.0.1:{port}")
    with serve(app, ready_path="/apis/default/fhir/metadata", port=port) as base:
        reg = app.state.oauth.register_client(
            {"application_type": "private", "client_name": "cdss", "redirect_uris": ["http://x/cb"]}
            | {"scope": "openid api:oemr user/document.read user/document.write user/patient.read "
               "user/patient.write"}
        )  # fmt: skip
        creds = {"id": reg["client_id"], "secret": reg["client_secret"]}
        token = httpx.post(
            f"{base}/oauth2/default/token",
            data={"grant_type": "password", "username": "admin", "password": "pass",
                  "user_role": "users", "scope": "openid api:oemr user/patient.write "
                  "user/document.read"},
            auth=(creds["id"], creds["secret"]),
        ).json()["access_token"]  # fmt: skip
        with httpx.Client(
            base_url=f"{base}{API}", headers={"Authorization": f"Bearer {token}"}
        ) as http:
            body = {"fname": "Jane", "lname": "Doe", "DOB": "1960-02-03", "sex": "Female"}
            assert http.post("/patient", json=body | {"pubpid": "MRN-100"}).status_code == 201
            yield base, creds, http


def _report(patient_id: str, category: str = "LAB", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "category": [{"coding": [{"system": V2_0074, "code": category}]}],
        "code": {"text": "AI lung nodule assessment"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "conclusion": "No nodule above 6 mm (Lung-RADS 2).",
        **extra,
    }


def test_a_final_report_becomes_one_pdf_document_with_a_link_back(
    fhir: TestClient,
    store: SqlStore,
    patient_id: str,
    emr: tuple[str, dict[str, str], httpx.Client],
    tmp_path: Path,
) -> None:
    base, creds, http = emr
    cfg = settings(
        tmp_path,
        openemr_url=base,
        base_url="https://cdss.example",
        reports_export={"LAB": PATH},
        reports_openemr_client_id=creds["id"],
        reports_openemr_client_secret=creds["secret"],
    )
    report = fhir.post("/DiagnosticReport", json=_report(patient_id)).json()
    fhir.post("/DiagnosticReport", json=_report(patient_id, "RAD"))  # not configured
    fhir.post("/DiagnosticReport", json=_report(patient_id, status="preliminary"))  # not final
    worker = Worker(store, cfg)
    assert worker.run_once().exported == 1
    assert worker.run_once().exported == 0  # once per version
    listed = http.get("/patient/1/document", params={"path": PATH}).json()
    assert [d["filename"] for d in listed] == [f"DiagnosticReport-{report['id']}-v1.pdf"]
    content = http.get(f"/patient/1/document/{listed[0]['id']}").content
    link = f"https://cdss.example/fhir/DiagnosticReport/{report['id']}/_history/1"
    document = PdfReader(io.BytesIO(content))
    text = "\n".join(page.extract_text() for page in document.pages)
    assert link in text and "Lung-RADS 2" in text
    uris = [a.get_object()["/A"]["/URI"] for p in document.pages for a in p.get("/Annots", [])]
    assert uris == [link]  # the link back is a clickable annotation, not only text
    assert document.metadata is not None
    assert document.metadata.title == f"DiagnosticReport-{report['id']}-v1.pdf"
    amended = {**report, "status": "amended", "conclusion": "Amended."}
    assert fhir.put(f"/DiagnosticReport/{report['id']}", json=amended).status_code == 200
    assert worker.run_once().exported == 1
    assert len(http.get("/patient/1/document", params={"path": PATH}).json()) == 2
    worker.close()


def test_emr_down_keeps_the_report_for_later(
    fhir: TestClient, store: SqlStore, patient_id: str, tmp_path: Path
) -> None:
    cfg = settings(
        tmp_path, openemr_url=f"http://127.0.0.1:{free_port()}", reports_export={"LAB": PATH}
    )
    fhir.post("/DiagnosticReport", json=_report(patient_id))
    worker = Worker(store, cfg)
    assert worker.run_once().exported == 0
    with store.read_unit() as unit:
        assert unit.get_state("orders:reports:cursor") is None
    worker.close()
