"""The simulator's FHIR API: authentication, scopes, patient confinement, §1.7 searches, writes.

Every resource the simulator renders must also pass the facade's validation (fhir.resources R4B),
since the OpenEMR adapter feeds them to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_facade.fhir import validate
from simulators.openemr.app import create_openemr_app
from simulators.openemr.oauth import UserAccount
from simulators.openemr.store import OpenEMRStore

BASE = "http://testserver"
FHIR = "/apis/default/fhir"
TYPES = (
    "Patient",
    "Practitioner",
    "Organization",
    "Encounter",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "Observation",
    "ServiceRequest",
    "DiagnosticReport",
    "Specimen",
)
ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def seed(store: OpenEMRStore, clock: Clock) -> None:
    """Two patients with a bit of everything, written at distinct times."""
    doc = store.insert("users", {"fname": "Gregory", "lname": "House", "npi": "1234567893"})
    for pid, puuid, name, sex in ((1, ALICE, "Alice", "Female"), (2, BOB, "Bob", "Male")):
        store.insert(
            "patient_data",
            {"uuid": puuid, "pid": pid, "pubpid": f"MRN-{pid}", "fname": name, "lname": "Smith"}
            | {
                "sex": sex,
                "DOB": f"19{50 + pid}-05-0{pid}",
                "city": "Lyon",
                "providerID": doc["id"],
            },
        )
        clock.now += 60
        store.insert("form_encounter", {"pid": pid, "encounter": pid, "date": f"2024-01-0{pid}"})
        store.insert("form_vitals", {"pid": pid, "date": f"2024-01-0{pid} 10:00:00", "pulse": "70"})
        store.insert(
            "lists",
            {"pid": pid, "type": "medical_problem", "title": "COPD"}
            | {"diagnosis": "ICD10:J44.9", "begdate": "2020-01-01"},
        )
        store.insert("history_data", {"pid": pid, "date": "2024-01-01", "tobacco": "|x||1"})
        store.insert(
            "lists",
            {"pid": pid, "type": "allergy", "title": "Penicillin"}
            | {"reaction": "hives", "severity_al": "severe", "begdate": "2001-01-01"},
        )
        store.insert(
            "lists",
            {"pid": pid, "type": "medication", "title": "Metformin"}
            | {"diagnosis": "RXCUI:860975", "begdate": "2019-03-01", "activity": 1},
        )
        store.insert(
            "prescriptions",
            {"patient_id": pid, "drug": "Metformin 500 MG"}
            | {"rxnorm_drugcode": "860975", "date_added": "2019-03-01", "active": 1, "refills": "2"}
            | {"provider_id": doc["id"], "dosage": "twice daily", "encounter": pid},
        )
        clock.now += 60
    lab = store.insert("procedure_providers", {"name": "Central lab", "npi": "1999999992"})
    order = store.insert(
        "procedure_order",
        {"patient_id": 1, "lab_id": lab["ppid"], "procedure_code": "2160-0"}
        | {"procedure_name": "Creatinine", "order_status": "complete", "order_priority": "stat"},
    )
    store.insert(
        "procedure_specimen",
        {"procedure_order_id": order["procedure_order_id"], "specimen_identifier": "S-1"},
    )
    report = store.insert(
        "procedure_report",
        {"procedure_order_id": order["procedure_order_id"], "report_status": "final"}
        | {"date_report": "2024-02-01 08:00:00"},
    )
    store.insert(
        "procedure_result",
        {"procedure_report_id": report["procedure_report_id"], "result_code": "2160-0"}
        | {"result_text": "Creatinine", "result": "1.4", "units": "mg/dL", "range": "0.6-1.2"}
        | {"abnormal": "high", "result_status": "final"},
    )


def token(client: TestClient, scopes: str, **login: str) -> dict[str, str]:
    oauth = client.app.state.oauth  # type: ignore[attr-defined]
    reg = oauth.register_client(
        {"application_type": "private", "client_name": "t", "redirect_uris": ["http://x/cb"]}
        | {"scope": scopes}
    )
    form = {"grant_type": "password", "username": "admin", "password": "pass"}
    form |= {"user_role": "users", "scope": scopes} | login
    answer = client.post(
        "/oauth2/default/token", data=form, auth=(reg["client_id"], reg["client_secret"])
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(clock: Clock) -> Iterator[TestClient]:
    alice = UserAccount("alice", "pw", f"Patient/{ALICE}", role="patient", email="a@x.org")
    admin = UserAccount("admin", "pass", "Practitioner/00000000-0000-4000-8000-00000000000a")
    app = create_openemr_app(public_base=BASE, users={"admin": admin, "alice": alice}, clock=clock)
    seed(app.state.store, clock)
    with TestClient(app, base_url=BASE) as c:
        yield c


@pytest.fixture
def user(client: TestClient) -> dict[str, str]:
    scopes = "openid " + " ".join(f"user/{t}.rs" for t in TYPES) + " user/Patient.write"
    return token(client, scopes + " user/Practitioner.write")


def entries(answer: Any) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry", [])]


def test_metadata_and_smart_configuration_need_no_token(client: TestClient) -> None:
    cap = client.get(f"{FHIR}/metadata").json()
    assert cap["resourceType"] == "CapabilityStatement" and cap["fhirVersion"] == "4.0.1"
    patient = next(r for r in cap["rest"][0]["resource"] if r["type"] == "Patient")
    assert {p["name"] for p in patient["searchParam"]} >= {"identifier", "_lastUpdated", "name"}
    assert client.get(f"{FHIR}/.well-known/smart-configuration").status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic YWRtaW46cGFzcw=="])
def test_no_valid_token_is_401(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for path in ("Patient", f"Patient/{ALICE}", "Observation"):
        answer = client.get(f"{FHIR}/{path}", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["code"] == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_expired_token_is_401(client: TestClient, clock: Clock, user: dict[str, str]) -> None:
    assert client.get(f"{FHIR}/Patient", headers=user).status_code == 200
    clock.now += 3601
    assert client.get(f"{FHIR}/Patient", headers=user).status_code == 401


def test_type_not_granted_is_403(client: TestClient) -> None:
    headers = token(client, "openid user/Patient.rs")
    assert client.get(f"{FHIR}/Patient", headers=headers).status_code == 200
    for path in ("Observation", f"Condition/{ALICE}", "Practitioner"):
        assert client.get(f"{FHIR}/{path}", headers=headers).status_code == 403


def test_patient_token_sees_only_its_patient(client: TestClient) -> None:
    scopes = "openid patient/Patient.rs patient/Observation.rs patient/Condition.rs"
    login = {"username": "alice", "password": "pw", "user_role": "patient", "email": "a@x.org"}
    headers = token(client, scopes, **login)
    assert client.get(f"{FHIR}/Patient/{ALICE}", headers=headers).status_code == 200
    assert client.get(f"{FHIR}/Patient/{BOB}", headers=headers).status_code == 403
    assert [p["id"] for p in entries(client.get(f"{FHIR}/Patient", headers=headers))] == [ALICE]
    observations = entries(client.get(f"{FHIR}/Observation", headers=headers))
    assert observations and {o["subject"]["reference"] for o in observations} == {
        f"Patient/{ALICE}"
    }
    bob = entries(client.get(f"{FHIR}/Condition", params={"patient": BOB}, headers=headers))
    assert bob == []
    bob_condition = entries(client.get(f"{FHIR}/Condition", headers={**_admin(client)}))[1]
    answer = client.get(f"{FHIR}/Condition/{bob_condition['id']}", headers=headers)
    assert answer.status_code == 403


def _admin(client: TestClient) -> dict[str, str]:
    return token(client, "openid user/Condition.rs")


def test_searches_follow_the_section_1_7_parameters(
    client: TestClient, user: dict[str, str]
) -> None:
    def ids(path: str, **params: str) -> list[str]:
        return [r["id"] for r in entries(client.get(f"{FHIR}/{path}", params=params, headers=user))]

    assert ids("Patient", identifier="MRN-2") == [BOB]
    assert ids("Patient", name="ali") == [ALICE]
    assert ids("Patient", family="Smith", given="Bob") == [BOB]
    assert ids("Patient", gender="female") == [ALICE]
    assert ids("Patient", birthdate="ge1952-01-01") == [BOB]
    assert ids("Patient", _id=f"{ALICE},{BOB}") == [ALICE, BOB]
    assert ids("Patient", **{"address-city": "lyon"}) == [ALICE, BOB]
    assert ids("Patient", unknown_param="x") == [ALICE, BOB]
    assert ids("Patient", _count="1", _offset="1") == [BOB]
    vitals = ids("Observation", patient=ALICE, category="vital-signs")
    assert len(vitals) == 2  # heart rate + the vital-signs panel
    assert len(ids("Observation", code="http://loinc.org|8867-4")) == 2
    assert len(ids("Observation", category="laboratory", patient=f"Patient/{ALICE}")) == 1
    assert len(ids("Observation", code="72166-2")) == 2
    assert ids("Condition", patient=BOB) == ids("Condition", patient=f"Patient/{BOB}")
    assert len(ids("ServiceRequest", status="completed", intent="order")) == 1
    assert len(ids("Specimen", identifier="S-1")) == 1


def test_last_updated_prefixes(client: TestClient, user: dict[str, str]) -> None:
    everyone = entries(client.get(f"{FHIR}/Patient", headers=user))
    first, second = (p["meta"]["lastUpdated"] for p in everyone)
    assert first < second

    def ids(value: str) -> list[str]:
        answer = client.get(f"{FHIR}/Patient", params={"_lastUpdated": value}, headers=user)
        return [r["id"] for r in entries(answer)]

    assert ids(f"ge{second}") == [BOB]
    assert ids(f"gt{first}") == [BOB]
    assert ids(f"lt{second}") == [ALICE]
    assert ids(f"le{first}") == [ALICE]
    assert ids(first) == [ALICE]
    assert ids(f"ge{first[:10]}") == [ALICE, BOB]
    assert ids("ge2100-01-01") == []


def test_every_rendered_resource_validates(client: TestClient, user: dict[str, str]) -> None:
    for resource_type in TYPES:
        found = entries(client.get(f"{FHIR}/{resource_type}", headers=user))
        assert found, resource_type
        for resource in found:
            validate(resource)
            answer = client.get(f"{FHIR}/{resource_type}/{resource['id']}", headers=user)
            assert answer.json() == resource


def test_lab_results_render_as_openemr_does(client: TestClient, user: dict[str, str]) -> None:
    (lab,) = entries(
        client.get(f"{FHIR}/Observation", params={"category": "laboratory"}, headers=user)
    )
    assert lab["valueQuantity"] == {
        "value": 1.4,
        "unit": "mg/dL",
        "system": "http://unitsofmeasure.org",
        "code": "mg/dL",
    }
    assert lab["interpretation"][0]["coding"][0]["code"] == "H"
    assert lab["referenceRange"][0]["high"]["value"] == 1.2
    assert lab["specimen"]["reference"].startswith("Specimen/")
    (report,) = entries(client.get(f"{FHIR}/DiagnosticReport", headers=user))
    assert report["result"] == [{"reference": f"Observation/{lab['id']}", "type": "Observation"}]
    (order,) = entries(client.get(f"{FHIR}/ServiceRequest", headers=user))
    assert (order["status"], order["priority"]) == ("completed", "stat")
    smoking = entries(client.get(f"{FHIR}/Observation", params={"code": "72166-2"}, headers=user))
    assert smoking[0]["valueCodeableConcept"]["coding"][0]["code"] == "449868002"


def test_writes_only_where_openemr_allows(client: TestClient, user: dict[str, str]) -> None:
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    assert client.post(f"{FHIR}/Observation", json=observation, headers=user).status_code in (
        404,
        405,
    )
    practitioner = {"resourceType": "Practitioner", "name": [{"family": "Grey", "given": ["M"]}]}
    practitioner["identifier"] = [
        {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1555555550"}
    ]
    created = client.post(f"{FHIR}/Practitioner", json=practitioner, headers=user)
    assert created.status_code == 201 and set(created.json()) == {"id", "uuid"}
    read_only = token(client, "openid user/Patient.rs")
    patient = {"resourceType": "Patient", "name": [{"family": "X", "given": ["Y"]}]}
    assert client.post(f"{FHIR}/Patient", json=patient, headers=read_only).status_code == 403
    wrong = {"resourceType": "Observation"}
    assert client.put(f"{FHIR}/Patient/{ALICE}", json=wrong, headers=user).status_code == 400
    missing = client.put(
        f"{FHIR}/Patient/00000000-0000-4000-8000-000000000000", json=patient, headers=user
    )
    assert (missing.status_code, missing.json()) == (404, [])


def test_garbage_is_no_grant_and_user_tokens_read_all(client: TestClient) -> None:
    oauth = client.app.state.oauth  # type: ignore[attr-defined]
    assert oauth.verify("x") is None
    headers = token(client, "openid " + " ".join(f"user/{t}.rs" for t in TYPES))
    assert len(entries(client.get(f"{FHIR}/Patient", headers=headers))) == 2


def test_unsimulated_routed_types_answer_empty(client: TestClient) -> None:
    headers = token(client, "openid user/CarePlan.rs")
    answer = client.get(f"{FHIR}/CarePlan", headers=headers)
    assert answer.status_code == 200 and answer.json()["total"] == 0
    assert client.get(f"{FHIR}/ImagingStudy", headers=headers).status_code == 404
