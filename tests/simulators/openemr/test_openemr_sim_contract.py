"""Contract: the simulator answers the recorded OpenEMR requests as the real server did.

The rows behind each recorded payload are seeded into the simulator's tables (same UUIDs, same
timestamps), then the FHIR API is asked for them. The answer must equal the recording field for
field, in the same key order (OpenEMR serialises in a fixed order; clients see that order).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from simulators.openemr.app import create_openemr_app
from simulators.openemr.store import OpenEMRStore
from tests.support.paths import FIXTURES as SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES / "openemr"
BASE = "http://testserver"
FHIR = "/apis/default/fhir"
USER_SCOPES = (
    "openid api:oemr api:fhir user/Patient.read user/Patient.write user/Encounter.read "
    "user/Observation.read user/ServiceRequest.rs user/DiagnosticReport.read user/Specimen.rs"
)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def seed_recorded(store: OpenEMRStore) -> None:
    """The rows OpenEMR held when it produced the recorded payloads."""
    t = store.table("patient_data")
    stamp = store.now()
    t.insert(
        {
            "uuid": "946da617-1a4a-4b2c-ae66-93b84377cb1e",
            "pid": 1,
            "pubpid": "1",
            "fname": "Aurore252",
            "lname": "Von197",
            "sex": "Female",
            "DOB": "1970-07-03",
            "race": "abenaki",
            "ethnicity": "decline_to_specfy",
            "street": "245 Crona Wall",
            "city": "Boston",
            "state": "Massachusetts",
            "postal_code": "02215",
            "contact_address_period_start": "2020-09-21 17:08:03.532",
            "_last_updated": "2021-09-21 17:08:03",
        },
        stamp=stamp,
    )
    for pid, puuid in (
        (2, "946da61b-626b-4f88-81e2-adfb88f4f0fe"),
        (3, "946da619-c631-431a-a282-487cd6fb7802"),
        (4, "95e8d830-3068-48cf-930a-2fefb18c2bcf"),
        (5, "9353b8f5-0a87-4e2a-afd4-25341fdb0fbc"),
    ):
        t.insert({"uuid": puuid, "pid": pid, "pubpid": str(pid), "fname": "X"}, stamp=stamp)
    doctor = store.insert("users", {"uuid": "946da61d-ac5f-4fdc-b3f2-7b58dc49976b", "lname": "Dr"})
    store.table("form_encounter").insert(
        {
            "uuid": "946da61d-6b95-4f8e-abe5-534a25913b71",
            "encounter": 1,
            "pid": 2,
            "date": "2012-08-13 00:00:00",
            "class_code": "AMB",
            "provider_id": doctor["id"],
            "_last_updated": "2021-09-19 06:27:41",
        },
        stamp=stamp,
    )
    vitals = store.insert("form_vitals", {"pid": 3, "date": "2015-08-31 00:00:00", "bps": "122"})
    store.update("form_vitals", vitals["id"], {"bpd": "77.000000"})
    vitals["_last_updated"] = "2021-09-20 04:12:16"
    store.set_mapped_uuid(
        vitals["uuid"], "category=vital-signs&code=85354-9", "946da61e-0597-485e-9dfd-a87205ea56b3"
    )
    order = store.table("procedure_order").insert(
        {
            "uuid": "95e9d3fb-fe7b-448a-aa60-d40b11b486a5",
            "patient_id": 4,
            "order_status": "pending",
            "procedure_order_type": "laboratory_test",
            "procedure_code": "24356-8",
            "procedure_name": "Urinalysis complete",
            "date_ordered": "2025-03-26",
            "_last_updated": "2025-03-26 17:20:14",
        },
        stamp=stamp,
    )
    store.table("procedure_specimen").insert(
        {
            "uuid": "95e9d3fb-fe7b-448a-aa60-d40b11b486a5",
            "procedure_order_id": order["procedure_order_id"],
            "specimen_identifier": "SPEC-2025-001",
            "accession_identifier": "ACC-2025-12345",
            "specimen_status": "available",
            "specimen_type_code": "122555007",
            "specimen_type": "Venous blood specimen",
            "received_date": "2025-10-10 10:30:00",
            "collection_date": "2025-10-10 09:00:00",
            "collected_volume": "10",
            "volume_unit": "mL",
            "body_site_code": "368208006",
            "body_site": "Left arm",
            "container_code": "702281005",
            "container": "Evacuated blood collection tube with heparin",
            "_last_updated": "2025-10-10 17:20:14",
        },
        stamp=stamp,
    )
    store.table("form_encounter").insert(
        {"uuid": "93540818-cb5f-49df-b73b-83901bb793b6", "encounter": 2, "pid": 5, "date": ""},
        stamp=stamp,
    )
    lab = store.table("procedure_providers").insert(
        {"uuid": "935249b5-0ba6-4b5b-8863-a7a27d4c6350", "name": "Lab"}, stamp=stamp
    )
    lab_order = store.insert(
        "procedure_order",
        {
            "patient_id": 5,
            "encounter_id": 2,
            "lab_id": lab["ppid"],
            "procedure_code": "11502-2",
            "procedure_name": "Laboratory report",
        },
    )
    notes = fixture("diagnosticreport.read.json")["presentedForm"][0]["data"]
    store.table("procedure_report").insert(
        {
            "uuid": "93fb2d6a-77ac-48ca-a12d-1a17e40007e3",
            "procedure_order_id": lab_order["procedure_order_id"],
            "date_collected": "2015-06-22 00:00:00",
            "date_report": "2015-06-22 00:00:00",
            "report_status": "final",
            "report_notes": base64.b64decode(notes).decode(),
            "_last_updated": "2021-09-18 20:52:34",
        },
        stamp=stamp,
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_openemr_app(public_base=BASE)
    seed_recorded(app.state.store)
    with TestClient(app, base_url=BASE) as c:
        reg = app.state.oauth.register_client(
            {
                "application_type": "private",
                "client_name": "contract",
                "redirect_uris": ["http://localhost/cb"],
                "scope": USER_SCOPES,
            }
        )
        form = {"grant_type": "password", "username": "admin", "password": "pass"}
        form |= {"user_role": "users", "scope": USER_SCOPES}
        answer = c.post(
            "/oauth2/default/token", data=form, auth=(reg["client_id"], reg["client_secret"])
        )
        assert answer.status_code == 200, answer.text
        c.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield c


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("patient.read.json", "Patient/946da617-1a4a-4b2c-ae66-93b84377cb1e"),
        ("encounter.read.json", "Encounter/946da61d-6b95-4f8e-abe5-534a25913b71"),
        ("observation.vital-signs.read.json", "Observation/946da61e-0597-485e-9dfd-a87205ea56b3"),
        ("servicerequest.read.json", "ServiceRequest/95e9d3fb-fe7b-448a-aa60-d40b11b486a5"),
        ("diagnosticreport.read.json", "DiagnosticReport/93fb2d6a-77ac-48ca-a12d-1a17e40007e3"),
        ("specimen.read.json", "Specimen/95e9d3fb-fe7b-448a-aa60-d40b11b486a5"),
    ],
)
def test_reads_reproduce_the_recordings(client: TestClient, name: str, path: str) -> None:
    answer = client.get(f"{FHIR}/{path}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    # equal, and in the same key order at every level
    assert json.dumps(answer.json()) == json.dumps(fixture(name))


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("patient.search-bundle.empty.json", "Patient?family=Nobody"),
        ("observation.search-bundle.empty.json", "Observation?code=http://loinc.org|0000-0"),
    ],
)
def test_empty_searches_reproduce_the_recordings(client: TestClient, name: str, query: str) -> None:
    answer = client.get(f"{FHIR}/{query}").json()
    recorded = fixture(name)
    assert list(answer) == list(recorded)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", answer["meta"]["lastUpdated"])
    assert {k: answer[k] for k in ("resourceType", "type", "total")} == {
        k: recorded[k] for k in ("resourceType", "type", "total")
    }
    path = recorded["link"][0]["url"].split("/apis/", 1)[1]
    assert answer["link"] == [{"relation": "self", "url": f"{BASE}/apis/{path}"}]


def test_search_bundle_has_openemr_shape(client: TestClient) -> None:
    answer = client.get(f"{FHIR}/Patient", params={"_id": "946da617-1a4a-4b2c-ae66-93b84377cb1e"})
    bundle = answer.json()
    assert bundle["type"] == "collection" and bundle["total"] == 1
    assert [link["relation"] for link in bundle["link"]] == ["self"]
    (entry,) = bundle["entry"]
    assert list(entry) == ["fullUrl", "resource"]  # no search.mode
    assert entry["fullUrl"] == f"{BASE}{FHIR}/Patient/946da617-1a4a-4b2c-ae66-93b84377cb1e"
    assert entry["resource"] == fixture("patient.read.json")


def test_unknown_id_is_404_with_an_empty_array(client: TestClient) -> None:
    answer = client.get(f"{FHIR}/Patient/00000000-0000-4000-8000-000000000000")
    assert answer.status_code == 404
    assert answer.json() == []


def test_create_answers_like_the_recording(client: TestClient) -> None:
    request = fixture("patient.create-request.json")
    answer = client.post(f"{FHIR}/Patient", json=request)
    assert answer.status_code == 201
    recorded = fixture("patient.update-response.json")
    body = answer.json()
    assert list(body) == list(recorded)
    assert isinstance(body["id"], int) and re.fullmatch(r"[0-9a-f-]{36}", body["uuid"])
    stored = client.get(f"{FHIR}/Patient/{body['uuid']}").json()
    expected = fixture("patient.create-response.json")
    for element in ("identifier", "active", "name", "gender", "birthDate", "communication"):
        assert stored[element] == expected[element], element
    assert stored["extension"][:2] == expected["extension"]


def test_update_answers_with_the_resource(client: TestClient) -> None:
    uuid = "946da617-1a4a-4b2c-ae66-93b84377cb1e"
    changed = fixture("patient.read.json") | {"birthDate": "1971-01-01"}
    answer = client.put(f"{FHIR}/Patient/{uuid}", json=changed)
    assert answer.status_code == 200
    body = answer.json()
    assert body["resourceType"] == "Patient" and body["id"] == uuid
    assert body["birthDate"] == "1971-01-01"
    assert body["identifier"] == fixture("patient.read.json")["identifier"]


def test_invalid_create_is_400_with_validation_errors(client: TestClient) -> None:
    request = fixture("patient.create-request.json")
    del request["name"]
    answer = client.post(f"{FHIR}/Patient", json=request)
    assert answer.status_code == 400
    errors = answer.json()["validationErrors"]
    assert set(errors) == {"fname", "lname"}
    assert errors["fname"] == {
        "Required::NON_EXISTENT_KEY": "fname must be provided, but does not exist"
    }
