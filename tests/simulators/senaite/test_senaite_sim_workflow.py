"""Lab set-up and workflows of the simulator, driven only through its JSON API (as the cohort)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.senaite.loinc import load_table
from adapters.senaite.terminology import ucum_unit
from simulators.senaite import SERVICES, create_senaite_app
from tests.simulators.senaite.senaite_sim_support import API, Clock


class Lab:
    """A thin JSON API driver, as the synthetic cohort uses it."""

    def __init__(self, http: TestClient, clock: Clock) -> None:
        self.http = http
        self.clock = clock
        self.services = {s["getKeyword"]: s["uid"] for s in self.get("/AnalysisService")["items"]}
        self.types = {s["title"]: s["uid"] for s in self.get("/SampleType")["items"]}
        self.client = self.create({"portal_type": "Client", "Name": "Ward 4", "ClientID": "W4"})
        self.contact = self.create(
            {
                "portal_type": "Contact",
                "parent_uid": self.client["uid"],
                "Firstname": "Nia",
                "Surname": "Okafor",
            }
        )

    def get(self, route: str, **params: Any) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get(API + route, params={"limit": 100, **params}).json()
        return body

    def post(self, route: str, body: Any) -> dict[str, Any]:
        self.clock.advance(1)
        data: dict[str, Any] = self.http.post(API + route, json=body).json()
        return data

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = self.post("/create", body)["items"][0]
        return item

    def sample(self, *keywords: str, mrn: str = "MRN-1") -> dict[str, Any]:
        return self.create(
            {
                "portal_type": "AnalysisRequest",
                "parent_uid": self.client["uid"],
                "Contact": self.contact["uid"],
                "SampleType": self.types["Serum"],
                "DateSampled": "2024-10-07 08:00:00",
                "MedicalRecordNumber": mrn,
                "PatientFullName": {"firstname": "Ada", "lastname": "Lovelace"},
                "Analyses": [self.services[k] for k in keywords],
            }
        )

    def analyses(self, sample: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(
            "/Analysis", getRequestID=sample["id"], complete="yes"
        )["items"]
        return items

    def state(self, sample: dict[str, Any]) -> str:
        listed: dict[str, Any] = self.get("/AnalysisRequest", UID=sample["uid"])["items"][0]
        return str(listed["review_state"])

    def transition(self, uid: str, name: str, **fields: Any) -> dict[str, Any]:
        return self.post("/update", {"uid": uid, "transition": name, **fields})


@pytest.fixture
def lab() -> Iterator[Lab]:
    clock = Clock()
    with TestClient(create_senaite_app(clock=clock), base_url="http://senaite:8080") as http:
        http.auth = ("admin", "admin")
        yield Lab(http, clock)


def test_catalogue_covers_the_analytes_with_ucum_units_and_ranges(lab: Lab) -> None:
    table = load_table()
    assert len(SERVICES) == 18
    for service in SERVICES:
        assert ucum_unit(service.unit) == service.unit
        assert table.lookup(service.keyword, service.unit) is not None, service.keyword
        assert service.low or service.high
    spec = lab.get("/AnalysisSpec", complete="yes")["items"][0]
    assert {r["keyword"] for r in spec["ResultsRange"]} == {s.keyword for s in SERVICES}


def test_the_cohort_path_create_results_submit_verify_publish(lab: Lab) -> None:
    sample = lab.sample("CREA", "K", "CRP")
    assert sample["id"] == "SER-0001" and sample["MedicalRecordNumber"]["value"] == "MRN-1"
    assert lab.state(sample) == "sample_due"
    assert {a["review_state"] for a in lab.analyses(sample)} == {"registered"}
    lab.transition(sample["uid"], "receive")
    analyses = lab.analyses(sample)
    assert {a["review_state"] for a in analyses} == {"unassigned"}
    assert analyses[0]["ResultsRange"]["min"] == "0.6"  # from the default specification
    for analysis, result in zip(analyses, ["1.1", "4.2", "<0.3"], strict=True):
        lab.post("/update", {"uid": analysis["uid"], "Result": result})
        lab.transition(analysis["uid"], "submit")
    assert lab.state(sample) == "to_be_verified"
    for analysis in analyses:
        lab.transition(analysis["uid"], "verify")
    assert lab.state(sample) == "verified"
    published = lab.transition(sample["uid"], "publish")
    assert published["items"][0]["DatePublished"] is not None
    final = lab.get("/AnalysisRequest", complete="yes")["items"][0]
    assert final["review_state"] == "published" and final["getAnalysesNum"] == [3, 3, 0, 0]
    crp = next(a for a in lab.analyses(sample) if a["Keyword"] == "CRP")
    assert (crp["review_state"], crp["Result"], crp["DetectionLimitOperand"]) == (
        "published",
        "0.3",
        "<",
    )


def test_every_change_stamps_modified_on_the_sample(lab: Lab) -> None:
    sample = lab.sample("GLU")
    lab.transition(sample["uid"], "receive")
    before = lab.get("/AnalysisRequest")["items"][0]["modified"]
    analysis = lab.analyses(sample)[0]
    lab.post("/update", {"uid": analysis["uid"], "Result": "120"})
    after = lab.get("/AnalysisRequest")["items"][0]["modified"]
    assert after > before


def test_guards_answer_success_false(lab: Lab) -> None:
    sample = lab.sample("HGB")
    analysis = lab.analyses(sample)[0]
    early = lab.transition(analysis["uid"], "submit")
    assert early["success"] is False and "Invalid transition 'submit'" in early["error"]
    lab.transition(sample["uid"], "receive")
    empty = lab.transition(analysis["uid"], "submit")
    assert empty["success"] is False  # no result yet
    lab.post("/update", {"uid": analysis["uid"], "Result": "13.1", "transition": "submit"})
    locked = lab.http.post(f"{API}/update", json={"uid": analysis["uid"], "Result": "9"})
    assert locked.status_code == 401
    cancel = lab.transition(sample["uid"], "cancel")
    assert cancel["success"] is False  # results were submitted


def test_retract_creates_a_retest_and_rolls_the_sample_back(lab: Lab) -> None:
    sample = lab.sample("PLT")
    lab.transition(sample["uid"], "receive")
    original = lab.analyses(sample)[0]
    lab.post("/update", {"uid": original["uid"], "Result": "12", "transition": "submit"})
    assert lab.state(sample) == "to_be_verified"
    lab.transition(original["uid"], "retract")
    analyses = {a["id"]: a for a in lab.analyses(sample)}
    assert analyses["PLT"]["review_state"] == "retracted"
    assert analyses["PLT-1"]["review_state"] == "unassigned"
    assert analyses["PLT-1"]["RetestOf"]["uid"] == original["uid"]
    assert analyses["PLT-1"]["Result"] == ""
    assert lab.state(sample) == "sample_received"


def test_cancel_reject_invalidate(lab: Lab) -> None:
    cancelled = lab.sample("ALT")
    lab.transition(cancelled["uid"], "cancel")
    assert lab.state(cancelled) == "cancelled"
    assert lab.analyses(cancelled)[0]["review_state"] == "cancelled"
    rejected = lab.sample("AST")
    lab.transition(rejected["uid"], "reject")
    assert lab.analyses(rejected)[0]["review_state"] == "rejected"
    sample = lab.sample("NA")
    lab.transition(sample["uid"], "receive")
    analysis = lab.analyses(sample)[0]
    lab.post("/update", {"uid": analysis["uid"], "Result": "139", "transition": "submit"})
    lab.transition(analysis["uid"], "verify")
    lab.transition(sample["uid"], "publish")
    lab.transition(sample["uid"], "invalidate")
    assert lab.state(sample) == "invalid"


def test_workflow_info_and_deactivation(lab: Lab) -> None:
    sample = lab.sample("ALB")
    info = lab.get("/AnalysisRequest", complete="yes", workflow="yes")["items"][0]
    workflow = info["workflow_info"][0]
    assert workflow["review_state"] == "sample_due"
    assert {t["value"] for t in workflow["transitions"]} >= {"receive", "cancel"}
    deleted = lab.post(f"/delete/{lab.contact['uid']}", {})
    assert deleted["count"] == 1
    contact = lab.get("/Contact")["items"][0]
    assert contact["review_state"] == "inactive"
    not_deactivable = lab.post(f"/delete/{sample['uid']}", {})
    assert not_deactivable["success"] is False
