"""Contract: the simulator answers the recorded requests with the recorded shapes.

Each recorded SENAITE 2.x answer (fixtures/senaite, captured by Ozone HIS) is compared key set by
key set, recursively, with the JSON value types, to the simulator's answer to the same request.
The recording site had no senaite.patient and no default specification, so the simulator runs
without them here; the patient fields are checked separately.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from simulators.senaite import create_senaite_app
from tests.simulators.senaite.senaite_sim_support import API, Clock, fixture, shape_diff

CLIENT_ID = "467aca2c-d069-40fc-90f4-17216fab0454"
CLIENT_SAMPLE_ID = "bbaea498-e046-43c6-bf9c-dbbc7d39f38c"


class Site:
    """A simulated site with the objects the recorded requests touched."""

    def __init__(self, http: TestClient) -> None:
        self.http = http
        self.answers: dict[str, dict[str, Any]] = {}
        self.answers["create-client.json"] = self.post(
            "/create",
            {
                "portal_type": "Client",
                "Name": "Siddharth Vaish (100000Y)",
                "ClientID": CLIENT_ID,
                "parent_path": "/senaite/clients",
            },
        )
        self.client = self.answers["create-client.json"]["items"][0]
        self.answers["create-contact.json"] = self.post(
            "/create",
            {
                "portal_type": "Contact",
                "parent_path": self.client["path"],
                "Firstname": "Super",
                "Surname": "User",
            },
        )
        self.contact = self.answers["create-contact.json"]["items"][0]
        category = self.search("AnalysisCategory")[0]
        department = self.search("Department")[0]
        self.service = self.post(
            "/create",
            {
                "portal_type": "AnalysisService",
                "title": "Red blood cells",
                "Keyword": "LAB-047",
                "Category": category["uid"],
                "Department": department["uid"],
                "ShortTitle": "Red blood cells",
                "description": "Blood test to measure the number of red blood cells.",
            },
        )["items"][0]
        self.urine = next(s for s in self.search("SampleType") if s["title"] == "Urine")
        self.template = self.post(
            "/create",
            {
                "portal_type": "ARTemplate",
                "parent_path": "/senaite/bika_setup/bika_artemplates",
                "title": "Blood urea nitrogen Template",
                "description": "857AAA",
                "SampleType": self.urine["uid"],
                "Analyses": [{"service_uid": self.service["uid"], "partition": "part-1"}],
                "Partitions": [{"part_id": "part-1", "container": "", "preservation": ""}],
            },
        )["items"][0]

    def post(self, path: str, body: Any) -> dict[str, Any]:
        response = self.http.post(API + path, json=body)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        assert "success" not in data, data
        return data

    def get(self, route: str, **params: str) -> dict[str, Any]:
        response = self.http.get(API + route, params=params)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def search(self, portal_type: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(f"/{portal_type}", limit="100")["items"]
        return items

    def create_sample(self) -> dict[str, Any]:
        return self.post(
            f"/AnalysisRequest/create/{self.client['uid']}",
            {
                "Contact": self.contact["uid"],
                "SampleType": self.urine["uid"],
                "DateSampled": "2024-10-07T08:20:31+00:00",
                "Template": self.template["uid"],
                "ClientSampleID": CLIENT_SAMPLE_ID,
            },
        )


@pytest.fixture
def site() -> Iterator[Site]:
    app = create_senaite_app(patient_extension=False, auto_specification=False, clock=Clock())
    with TestClient(app, base_url="http://senaite:8080") as http:
        http.auth = ("admin", "admin")
        yield Site(http)


def assert_same_shape(name: str, answer: dict[str, Any]) -> None:
    problems = shape_diff(fixture(name), answer)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("name", ["create-client.json", "create-contact.json"])
def test_create_answers_match_the_recording(site: Site, name: str) -> None:
    assert_same_shape(name, site.answers[name])


def test_client_search_matches_the_recording(site: Site) -> None:
    answer = site.get("/client", getClientID=CLIENT_ID)
    assert_same_shape("get-client.json", answer)
    item = answer["items"][0]
    assert (item["id"], item["review_state"], item["getClientID"]) == (
        "client-1",
        "active",
        CLIENT_ID,
    )


def test_contact_search_matches_the_recording(site: Site) -> None:
    answer = site.get("/Contact", depth="2", path=site.client["path"])
    assert_same_shape("get-contact.json", answer)
    assert answer["items"][0]["path"] == "/senaite/clients/client-1/contact-1"


def test_template_search_matches_the_recording(site: Site) -> None:
    answer = site.get(
        "/ARTemplate", complete="true", catalog="senaite_catalog_setup", Description="857AAA"
    )
    assert_same_shape("get-analysis-request-template.json", answer)


def test_sample_create_matches_the_recording(site: Site) -> None:
    answer = site.create_sample()
    assert_same_shape("create-analysis-request.json", answer)
    item = answer["items"][0]
    assert answer["url"] == f"http://senaite:8080{API}/create"
    assert item["id"] == "URI-0001"
    assert item["path"] == "/senaite/clients/client-1/URI-0001"
    assert item["review_state"] is None  # object answers carry the uid_catalog brain
    assert item["Client"] is None and item["Priority"] == "3"
    assert item["ContactFullName"] == "Super User" and item["SampleTypeTitle"] == "Urine"
    assert item["TemplateTitle"] == "Blood urea nitrogen Template"
    assert item["api_url"] == f"http://senaite:8080{API}/analysisrequest/{item['uid']}"


def test_sample_search_matches_the_recording(site: Site) -> None:
    site.create_sample()
    answer = site.get(
        "/AnalysisRequest",
        getClientSampleID=CLIENT_SAMPLE_ID,
        getClientID=CLIENT_ID,
        catalog="senaite_catalog_sample",
        complete="true",
    )
    assert_same_shape("get-analysis-request.json", answer)
    item = answer["items"][0]
    assert item["review_state"] == "sample_due"
    assert item["getAnalysesNum"] == [0, 1, 1, 0]
    assert item["getPrioritySortkey"] == "3.2024-10-07T08:20:33+00:00"
    assert item["getPhysicalPath"] == ["", "senaite", "clients", "client-1", "URI-0001"]


def test_analysis_read_matches_the_recording(site: Site) -> None:
    sample = site.create_sample()["items"][0]
    site.post("/update", {"uid": sample["uid"], "transition": "receive"})
    analysis_uid = sample["Analyses"][0]["uid"]
    site.post("/update", {"uid": analysis_uid, "Result": "4.5"})
    answer = site.get(f"/analysis/{analysis_uid}")
    assert_same_shape("get-analyses.json", answer)
    item = answer["items"][0]
    assert (item["id"], item["Keyword"], item["Result"]) == ("LAB-047", "LAB-047", "4.5")
    assert item["review_state"] is None  # the recorded quirk: read by UID, no catalog column
    assert item["parent_id"] == "URI-0001"


def test_cancel_matches_the_recording(site: Site) -> None:
    sample = site.create_sample()["items"][0]
    answer = site.post(
        f"/AnalysisRequest/update/{sample['uid']}",
        {"Client": site.client["uid"], "transition": "cancel"},
    )
    assert_same_shape("cancel-analysis-request.json", answer)
    assert answer["url"] == f"http://senaite:8080{API}/update"
    listed = site.get("/AnalysisRequest", catalog="senaite_catalog_sample")["items"][0]
    assert listed["review_state"] == "cancelled"


def test_patient_extension_adds_exactly_the_senaite_patient_fields() -> None:
    app = create_senaite_app(clock=Clock())
    with TestClient(app, base_url="http://senaite:8080") as http:
        http.auth = ("admin", "admin")
        site = Site(http)
        created = site.create_sample()["items"][0]
        listed = site.get("/AnalysisRequest", complete="yes")["items"][0]
    recorded_created = set(fixture("create-analysis-request.json")["items"][0])
    recorded_listed = set(fixture("get-analysis-request.json")["items"][0])
    patient = {
        "MedicalRecordNumber",
        "PatientFullName",
        "PatientAddress",
        "DateOfBirth",
        "Sex",
        "Gender",
    }
    assert set(created) - recorded_created == patient
    assert set(listed) - recorded_listed == patient | {
        "getMedicalRecordNumberValue",
        "getPatientFullName",
    }
    assert created["MedicalRecordNumber"] == {"temporary": False, "value": ""}
    assert created["DateOfBirth"] == [None, False, False]
