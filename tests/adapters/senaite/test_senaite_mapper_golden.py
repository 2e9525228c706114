"""Golden tests of the SENAITE mapper: recorded and simulator-captured payloads -> FHIR JSON.

Inputs: the recorded Ozone payloads (fixtures/senaite; the recording site had no senaite.patient,
so an MRN and states are added, as stated per case) and payloads captured from the simulator
(`golden/*.senaite.json`). Outputs: `golden/*.fhir.json`. Every resource must also come back
unchanged from `fhir_facade.fhir.validate`. Regenerate with CDSS_UPDATE_GOLDEN=1 and review the
diff.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.senaite.loinc import load_table
from adapters.senaite.mapper import map_raw_sample
from adapters.senaite.payloads import Deviations
from fhir_facade.fhir import validate
from simulators.senaite import create_senaite_app
from tests.adapters.senaite.senaite_adapter_support import GOLDEN, Clock, LabDriver, fixture

SOURCE_URL = "http://senaite:8080/senaite"
UPDATE = os.environ.get("CDSS_UPDATE_GOLDEN") == "1"
API = "/senaite/@@API/senaite/v1/"


class InProcessApi:
    """The driver's Api over an in-process TestClient (fixed origin: stable captures)."""

    def __init__(self, http: TestClient) -> None:
        self.http = http

    def get(self, path: str, params: Any = None) -> dict[str, Any]:
        data: dict[str, Any] = self.http.get(API + path, params=params).json()
        return data

    def post(self, path: str, body: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.http.post(API + path, json=body).json()
        return data


def recorded_case() -> dict[str, Any]:
    """The recorded sample + the recorded analysis, with what senaite.patient would add."""
    sample = copy.deepcopy(fixture("get-analysis-request.json")["items"][0])
    sample |= {
        "MedicalRecordNumber": {"temporary": False, "value": "100000Y"},
        "PatientFullName": {"firstname": "Siddharth", "middlename": "", "lastname": "Vaish"},
        "review_state": "published",
        "DateReceived": "2024-10-07T09:00:00+00:00",
        "DatePublished": "2024-10-07T11:21:49+00:00",
    }
    analysis = copy.deepcopy(fixture("get-analyses.json")["items"][0])
    analysis["review_state"] = "published"  # read by UID it is null; the catalog has it
    return {"sample": sample, "analyses": [analysis]}


def _published(lab: LabDriver) -> dict[str, Any]:
    return lab.published({"CREA": "1.1", "K": "6.5", "CRP": "<0.3", "EGFR": "48", "GLU": "45"})


def _verified(lab: LabDriver) -> dict[str, Any]:
    sample = lab.sample(["HGB", "WBC", "PLT"], sample_type="Whole blood", mrn="MRN-0002")
    lab.results(sample, {"HGB": "10.2", "WBC": "12.5", "PLT": "210"})
    return sample


def _retracted(lab: LabDriver) -> dict[str, Any]:
    sample = lab.sample(["PLT"], sample_type="Whole blood", mrn="MRN-0003")
    lab.results(sample, {"PLT": "12"}, verify=False)
    lab.transition(lab.analyses(sample)["PLT"]["uid"], "retract")
    retest = lab.analyses(sample)["PLT-1"]
    lab.post("update", {"uid": retest["uid"], "Result": "250", "transition": "submit"})
    return sample


def _received(lab: LabDriver) -> dict[str, Any]:
    sample = lab.sample(["PSA", "CEA"], mrn="MRN-0004")
    lab.transition(sample["uid"], "receive")
    return sample


SCENARIOS: dict[str, Callable[[LabDriver], dict[str, Any]]] = {
    "published-chemistry": _published,
    "verified-haematology": _verified,
    "retracted-retest": _retracted,
    "received-no-results": _received,
}


def capture() -> None:
    """Run the scenarios on a fresh simulator and store what the sync would read."""
    clock = Clock()
    with TestClient(create_senaite_app(clock=clock), base_url="http://senaite:8080") as http:
        http.auth = ("admin", "admin")
        lab = LabDriver(InProcessApi(http), clock)
        for name, scenario in SCENARIOS.items():
            sample = scenario(lab)
            case = {
                "sample": lab.raw_sample(sample),
                "analyses": list(lab.analyses(sample).values()),
            }
            write(GOLDEN / f"{name}.senaite.json", case)


def write(path: Any, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_case(name: str) -> dict[str, Any]:
    if name == "recorded-urine-sample":
        return recorded_case()
    data: dict[str, Any] = json.loads((GOLDEN / f"{name}.senaite.json").read_text("utf-8"))
    return data


CASES = ["recorded-urine-sample", *SCENARIOS]


@pytest.fixture(scope="module", autouse=True)
def captured() -> Iterator[None]:
    if UPDATE:
        capture()
    yield


def mapped(name: str) -> dict[str, Any]:
    case = load_case(name)
    out = map_raw_sample(
        case["sample"],
        case["analyses"],
        table=load_table(),
        source_url=SOURCE_URL,
        deviations=Deviations(),
    )
    return {"resources": out.resources, "rejected": [asdict(r) for r in out.rejected]}


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    output = mapped(name)
    path = GOLDEN / f"{name}.fhir.json"
    if UPDATE:
        write(path, output)
    assert output == json.loads(path.read_text("utf-8"))


@pytest.mark.parametrize("name", CASES)
def test_every_resource_survives_the_facade_validator(name: str) -> None:
    resources = mapped(name)["resources"]
    assert resources
    for resource in resources:
        assert validate(resource) == resource


def test_the_recorded_sample_without_mrn_is_rejected() -> None:
    sample = fixture("get-analysis-request.json")["items"][0]
    analysis = fixture("get-analyses.json")["items"][0]
    out = map_raw_sample(sample, [analysis], table=load_table(), source_url=SOURCE_URL)
    assert out.resources == []
    assert [r.source_ref for r in out.rejected] == ["AnalysisRequest/URI-0001"]
    assert "MedicalRecordNumber" in out.rejected[0].reason


def test_golden_outputs_tell_the_story() -> None:
    """Spot checks on the goldens, so that a regenerated file is reviewed against intent."""
    published = {
        r["resourceType"] + ":" + r["code"].get("text", ""): r
        for r in mapped("published-chemistry")["resources"]
        if "code" in r
    }
    flags = {
        key.split(":")[1]: r.get("interpretation", [{}])[0].get("coding", [{}])[0].get("code")
        for key, r in published.items()
        if key.startswith("Observation")
    }
    assert flags == {
        "Creatinine": "N",
        "Potassium": "HH",
        "C-reactive protein": "N",
        "eGFR (CKD-EPI 2021)": "L",
        "Glucose": "LL",
    }
    crp = published["Observation:C-reactive protein"]["valueQuantity"]
    assert crp == {
        "value": 0.3,
        "comparator": "<",
        "unit": "mg/L",
        "system": "http://unitsofmeasure.org",
        "code": "mg/L",
    }
    statuses = [
        (r["resourceType"], r["status"])
        for r in mapped("retracted-retest")["resources"]
        if r["resourceType"] == "Observation"
    ]
    assert sorted(statuses) == [("Observation", "entered-in-error"), ("Observation", "registered")]
    verified = mapped("verified-haematology")["resources"]
    report = next(r for r in verified if r["resourceType"] == "DiagnosticReport")
    assert report["status"] == "preliminary" and len(report["result"]) == 3
    received = [r["resourceType"] for r in mapped("received-no-results")["resources"]]
    assert received == ["ServiceRequest", "Specimen"]
