"""The OpenEMR mapper on the recorded payloads (golden output) and on the quirks it absorbs.

Golden files live in golden/; regenerate them with OPENEMR_UPDATE_GOLDEN=1 after a deliberate
mapping change, and review the diff.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from adapters.base import MRN_SYSTEM
from adapters.openemr.mapper import PUBPID_SYSTEM, Unmappable, map_resource
from fhir_facade.fhir import validate
from tests.support.paths import FIXTURES as SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES / "openemr"
GOLDEN = Path(__file__).parent / "golden"
RECORDED = (
    "patient.read",
    "patient.create-request",
    "encounter.read",
    "observation.vital-signs.read",
    "servicerequest.read",
    "diagnosticreport.read",
    "specimen.read",
)


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_payloads_map_to_the_golden_output(name: str) -> None:
    mapped = map_resource(recorded(name))
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("OPENEMR_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(mapped.resource, indent=2) + "\n")
    assert mapped.resource == json.loads(golden.read_text())
    assert mapped.deviations == ()


@pytest.mark.parametrize("name", RECORDED)
def test_golden_output_round_trips_through_validation(name: str) -> None:
    golden = json.loads((GOLDEN / f"{name}.json").read_text())
    assert validate(golden) == golden


def test_ids_and_references_are_kept() -> None:
    source = recorded("encounter.read")
    mapped = map_resource(source).resource
    assert mapped["id"] == source["id"]
    assert mapped["subject"] == source["subject"]  # Patient/<uuid>: the same id in the facade
    assert mapped["participant"][0]["individual"]["reference"].startswith("Practitioner/")
    assert "versionId" not in mapped.get("meta", {}) and "lastUpdated" not in mapped.get("meta", {})


def test_patient_gets_the_mrn_and_a_real_pubpid_namespace() -> None:
    mapped = map_resource(recorded("patient.read")).resource
    by_system = {i["system"]: i for i in mapped["identifier"]}
    assert by_system[MRN_SYSTEM]["value"] == "1"
    pt = by_system[PUBPID_SYSTEM]
    assert pt["type"]["coding"][0]["code"] == "PT" and pt["value"] == "1"
    assert "http://terminology.hl7.org/CodeSystem/v2-0203" not in by_system


def test_patient_without_pubpid_is_kept_with_a_deviation() -> None:
    patient = recorded("patient.read")
    del patient["identifier"]
    mapped = map_resource(patient)
    assert "identifier" not in mapped.resource
    assert any("pubpid" in d for d in mapped.deviations)


def test_empty_values_are_removed_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    observation = recorded("observation.vital-signs.read")
    observation["category"][0]["coding"][0]["display"] = ""
    observation["note"] = []
    observation["code"]["text"] = "  "
    with caplog.at_level(logging.INFO, logger="adapters.openemr.mapper"):
        mapped = map_resource(observation)
    assert mapped.resource["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
        "code": "vital-signs",
    }
    assert len(mapped.deviations) == 3
    assert "removed empty" in caplog.text


def test_invalid_optional_element_is_dropped_with_a_deviation() -> None:
    observation = recorded("observation.vital-signs.read")
    observation["effectiveDateTime"] = "2015-31-08"
    observation["issued"] = {"bad": "shape"}
    mapped = map_resource(observation)
    assert "effectiveDateTime" not in mapped.resource and "issued" not in mapped.resource
    assert sorted(d.split(":")[0] for d in mapped.deviations) == [
        "dropped effectiveDateTime",
        "dropped issued",
    ]
    validate(mapped.resource)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"resourceType": "ImagingStudy"}, "not synced"),
        ({"id": ""}, "without an id"),
        ({"code": "85354-9"}, "invalid"),
        ({"status": None, "code": None}, "invalid"),
    ],
)
def test_unmappable_payloads(change: dict[str, Any], reason: str) -> None:
    observation = copy.deepcopy(recorded("observation.vital-signs.read")) | change
    with pytest.raises(Unmappable, match=reason):
        map_resource(observation)


def test_source_payload_is_not_modified() -> None:
    source = recorded("patient.read")
    before = copy.deepcopy(source)
    map_resource(source)
    assert source == before
