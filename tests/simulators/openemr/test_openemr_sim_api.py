"""The simulator's standard API (/apis/default/api): OpenEMR's routes, envelopes and quirks, and
what the writes become on the FHIR side (the cohort writer relies on both)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from simulators.openemr.app import create_openemr_app

BASE = "http://testserver"
API = "/apis/default/api"
FHIR = "/apis/default/fhir"
WRITER_SCOPES = (
    "openid api:oemr user/patient.read user/patient.write user/encounter.read "
    "user/encounter.write user/medical_problem.read user/medical_problem.write user/allergy.read "
    "user/allergy.write user/medication.read user/medication.write user/vital.read "
    "user/vital.write "
    "user/document.read user/document.write user/practitioner.read user/practitioner.write "
    "user/Patient.read user/Observation.read user/Condition.read user/AllergyIntolerance.read "
    "user/MedicationRequest.read user/Encounter.read user/ServiceRequest.rs "
    "user/DiagnosticReport.read user/Specimen.rs user/Practitioner.read"
)


def login(client: TestClient, scopes: str) -> dict[str, str]:
    reg = client.app.state.oauth.register_client(  # type: ignore[attr-defined]
        {"application_type": "private", "client_name": "writer", "redirect_uris": ["http://x/cb"]}
        | {"scope": scopes}
    )
    form = {"grant_type": "password", "username": "admin", "password": "pass"}
    form |= {"user_role": "users", "scope": scopes}
    answer = client.post(
        "/oauth2/default/token", data=form, auth=(reg["client_id"], reg["client_secret"])
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_openemr_app(public_base=BASE), base_url=BASE) as c:
        c.headers.update(login(c, WRITER_SCOPES))
        yield c


@pytest.fixture
def patient(client: TestClient) -> dict[str, Any]:
    body = {"fname": "Clara", "lname": "Rossi", "DOB": "1958-04-02", "sex": "Female"}
    answer = client.post(f"{API}/patient", json=body | {"pubpid": "SYN-0001"})
    assert answer.status_code == 201
    data: dict[str, Any] = answer.json()["data"]
    return data


def fhir(client: TestClient, path: str, **params: str) -> list[dict[str, Any]]:
    answer = client.get(f"{FHIR}/{path}", params=params)
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry", [])]


def test_create_patient_answers_the_envelope(client: TestClient) -> None:
    body = {"fname": "Ben", "lname": "Novak", "DOB": "1960-02-03", "sex": "Male"}
    answer = client.post(f"{API}/patient", json=body)
    assert answer.status_code == 201
    envelope = answer.json()
    assert list(envelope) == ["validationErrors", "internalErrors", "data"]
    assert envelope["data"]["pid"] == 1 and set(envelope["data"]) == {"pid", "uuid"}
    row = client.get(f"{API}/patient/{envelope['data']['uuid']}").json()["data"]
    assert row["pubpid"] == "1"  # pubpid defaults to pid
    assert (row["pid"], row["fname"], row["DOB"]) == ("1", "Ben", "1960-02-03")
    (resource,) = fhir(client, "Patient")
    assert resource["identifier"][0]["value"] == "1"


def test_invalid_patient_is_400_with_particle_messages(client: TestClient) -> None:
    answer = client.post(f"{API}/patient", json={"fname": "A", "sex": "M", "DOB": "02/03/1960"})
    assert answer.status_code == 400
    errors = answer.json()["validationErrors"]
    assert errors["lname"] == {
        "Required::NON_EXISTENT_KEY": "lname must be provided, but does not exist"
    }
    assert "Length::TOO_SHORT" in errors["sex"] and "Datetime::INVALID_VALUE" in errors["DOB"]
    assert client.post(f"{API}/patient", content=b"[1]").status_code == 400


def test_patient_search_uses_openemr_fields(client: TestClient, patient: dict[str, Any]) -> None:
    assert len(client.get(f"{API}/patient", params={"lname": "ross"}).json()["data"]) == 1
    assert client.get(f"{API}/patient", params={"sex": "Male"}).json()["data"] == []
    found = client.get(f"{API}/patient", params={"pubpid": "SYN-0001"}).json()["data"]
    assert found[0]["uuid"] == patient["uuid"]
    missing = client.get(f"{API}/patient/00000000-0000-4000-8000-000000000000")
    assert (missing.status_code, missing.json()["data"]) == (404, [])


def test_clinical_writes_and_their_fhir_side(client: TestClient, patient: dict[str, Any]) -> None:
    puuid, pid = patient["uuid"], patient["pid"]
    encounter = {"date": "2024-03-01", "reason": "Cough", "pc_catid": "5", "class_code": "AMB"}
    answer = client.post(f"{API}/patient/{puuid}/encounter", json=encounter)
    assert answer.status_code == 201
    eid = answer.json()["data"]["encounter"]
    assert set(answer.json()["data"]) == {"encounter", "uuid"}
    assert client.post(f"{API}/patient/{puuid}/encounter", json={"reason": "x"}).status_code == 400
    problem = {"title": "COPD", "begdate": "2021-05-01", "diagnosis": "ICD10:J44.9", "x": "dropped"}
    answer = client.post(f"{API}/patient/{puuid}/medical_problem", json=problem)
    assert answer.status_code == 201 and set(answer.json()["data"]) == {"id", "uuid"}
    allergy = {"title": "Penicillin", "begdate": "2001-01-01"}
    assert client.post(f"{API}/patient/{puuid}/allergy", json=allergy).status_code == 201
    medication = {"title": "Metformin", "begdate": "2019-01-01", "diagnosis": "RXCUI:860975"}
    answer = client.post(f"{API}/patient/{pid}/medication", json=medication)
    assert (answer.status_code, list(answer.json())) == (201, ["id"])
    vital = {"bps": "142", "bpd": "91", "weight": "187", "height": "69", "pulse": "72"}
    answer = client.post(f"{API}/patient/{pid}/encounter/{eid}/vital", json=vital)
    assert answer.status_code == 201 and set(answer.json()) == {"vid", "fid"}
    assert (
        client.post(f"{API}/patient/{pid}/encounter/{eid}/vital", json={"bps": "x"}).status_code
        == 400
    )

    (enc,) = fhir(client, "Encounter", patient=puuid)
    assert enc["period"]["start"] == "2024-03-01T00:00:00+00:00"
    assert enc["reasonCode"] == [{"text": "Cough"}]
    (condition,) = fhir(client, "Condition", patient=puuid)
    assert condition["code"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/icd-10-cm",
        "code": "J44.9",
        "display": "COPD",
    }
    assert fhir(client, "AllergyIntolerance", patient=puuid)[0]["code"] == {"text": "Penicillin"}
    (med,) = fhir(client, "MedicationRequest", patient=puuid)
    assert med["medicationCodeableConcept"]["coding"][0]["code"] == "860975"
    vitals = fhir(client, "Observation", patient=puuid, category="vital-signs")
    codes = {o["code"]["coding"][0]["code"] for o in vitals}
    assert codes == {"85354-9", "8867-4", "8302-2", "29463-7", "85353-1"}
    bp = next(o for o in vitals if o["code"]["coding"][0]["code"] == "85354-9")
    assert [c["valueQuantity"]["value"] for c in bp["component"]] == [142, 91]
    assert bp["effectiveDateTime"] == "2024-03-01T00:00:00+00:00"  # the encounter's date
    rows = client.get(f"{API}/patient/{pid}/encounter/{eid}/vital").json()
    assert rows[0]["bps"] == "142"


def test_lists_answer_bare_and_404_null_when_empty(
    client: TestClient, patient: dict[str, Any]
) -> None:
    answer = client.get(f"{API}/patient/{patient['pid']}/medication")
    assert (answer.status_code, answer.json()) == (404, None)
    bad = client.post(
        f"{API}/patient/999/medication", json={"title": "X1", "begdate": "2020-01-01"}
    )
    assert bad.status_code == 400 and "pid" in bad.json()


def test_practitioners(client: TestClient) -> None:
    body = {"fname": "Gregory", "lname": "House", "npi": "1234567893", "specialty": "Diagnostics"}
    answer = client.post(f"{API}/practitioner", json=body)
    assert answer.status_code == 201 and set(answer.json()["data"]) == {"id", "uuid"}
    listed = client.get(f"{API}/practitioner", params={"npi": "1234567893"}).json()["data"]
    assert listed[0]["lname"] == "House" and listed[0]["username"]
    assert client.post(f"{API}/practitioner", json={"fname": "No"}).status_code == 400
    (resource,) = fhir(client, "Practitioner")
    assert resource["identifier"] == [
        {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}
    ]


def test_documents_round_trip(client: TestClient, patient: dict[str, Any]) -> None:
    pid, path = patient["pid"], "/Categories/Lab Report"
    report = ("ai-report.pdf", b"%PDF-1.4 synthetic", "application/pdf")
    answer = client.post(
        f"{API}/patient/{pid}/document", params={"path": path}, files={"document": report}
    )
    assert (answer.status_code, answer.json()) == (200, True)
    listed = client.get(f"{API}/patient/{pid}/document", params={"path": path}).json()
    assert [(d["filename"], d["mimetype"]) for d in listed] == [
        ("ai-report.pdf", "application/pdf")
    ]
    assert set(listed[0]) == {"filename", "id", "mimetype", "docdate"}
    download = client.get(f"{API}/patient/{pid}/document/{listed[0]['id']}")
    assert download.content == b"%PDF-1.4 synthetic"
    assert download.headers["content-type"] == "application/pdf"
    assert "ai-report.pdf" in download.headers["content-disposition"]
    other = client.get(
        f"{API}/patient/{pid}/document", params={"path": "/Categories/Medical_Record"}
    )
    assert (other.status_code, other.json()) == (404, None)
    nowhere = client.post(
        f"{API}/patient/{pid}/document",
        params={"path": "/Categories/Nope"},
        files={"document": report},
    )
    assert (nowhere.status_code, nowhere.json()) == (404, None)


def test_sim_seeding_routes(client: TestClient, patient: dict[str, Any]) -> None:
    puuid, pid = patient["uuid"], patient["pid"]
    answer = client.post(
        f"{API}/_sim/patient/{puuid}/history", json={"smoking_status": "3", "note": "20 pack-years"}
    )
    assert answer.status_code == 201
    (smoking,) = fhir(client, "Observation", code="72166-2")
    assert smoking["valueCodeableConcept"]["coding"][0]["code"] == "8517006"
    again = client.post(f"{API}/_sim/patient/{puuid}/history", json={"smoking_status": "449868002"})
    assert again.status_code == 200
    (smoking,) = fhir(client, "Observation", code="72166-2")
    assert smoking["valueCodeableConcept"]["coding"][0]["display"] == "Current every day smoker"

    order = {"patient_id": pid, "procedure_code": "24627-2", "procedure_name": "Chest CT"}
    order |= {
        "procedure_order_type": "imaging",
        "order_status": "pending",
        "date_ordered": "2024-04-01",
    }
    answer = client.post(f"{API}/_sim/procedure_order", json=order)
    assert answer.status_code == 201
    key = answer.json()["data"]["id"]
    (request,) = fhir(client, "ServiceRequest", patient=puuid)
    assert request["category"][0]["coding"][0]["code"] == "363679005"
    assert request["status"] == "active"
    assert (
        client.put(
            f"{API}/_sim/procedure_order/{key}", json={"order_status": "canceled"}
        ).status_code
        == 200
    )
    assert fhir(client, "ServiceRequest", patient=puuid)[0]["status"] == "revoked"
    dangling = client.post(f"{API}/_sim/procedure_report", json={"procedure_order_id": 999})
    assert dangling.status_code == 400
    assert client.post(f"{API}/_sim/users", json={}).status_code == 400


def test_api_needs_api_oemr_and_the_resource_scope(client: TestClient) -> None:
    fhir_only = login(client, "openid user/patient.read user/Patient.read")
    assert client.get(f"{API}/patient", headers=fhir_only).status_code == 403
    read_only = login(client, "openid api:oemr user/patient.read")
    assert client.get(f"{API}/patient", headers=read_only).status_code == 200
    body = {"fname": "A", "lname": "B", "DOB": "1960-01-01", "sex": "Male"}
    assert client.post(f"{API}/patient", json=body, headers=read_only).status_code == 403
    assert client.get(f"{API}/patient", headers={"Authorization": ""}).status_code == 401
