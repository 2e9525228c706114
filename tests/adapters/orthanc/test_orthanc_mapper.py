"""DICOM JSON -> ImagingStudy/Endpoint: golden files from the captured Orthanc 1.10.1 payloads,
and the lenient-read rules one by one. Every emitted resource passes fhir_facade.fhir.validate
(and comes out canonical) and the strict R4 models of fhirclient.

Regenerate the golden files with CDSS_UPDATE_GOLDEN=1 (then read the diff before committing).
"""

from __future__ import annotations

import json
import os
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import fhirclient.models.endpoint as r4_endpoint
import fhirclient.models.imagingstudy as r4_imagingstudy
import pytest

from adapters.base import MRN_SYSTEM, source_id
from adapters.orthanc.codes import BODY_PART_SNOMED, LATERALITY_SNOMED, SNOMED
from adapters.orthanc.mapper import (
    MappingError,
    StudyMapping,
    endpoint_id,
    map_endpoint,
    map_imaging_study,
)
from fhir_facade.fhir import validate

CAPTURED = Path(__file__).parent / "captured"  # copies of fixtures/orthanc/captured-1.10.1
GOLDEN = Path(__file__).parent / "golden"
PUBLIC = "https://cdss.example.org/dicom-web/"
ORTHANC = "http://orthanc.internal:8042"
STUDY_UID = "1.2.276.0.7230010.3.1.2.8323328.15814.1795940383.468356"
SERIES_UID = "1.2.276.0.7230010.3.1.3.8323328.15814.1795940383.468357"


def captured(name: str) -> Any:
    return json.loads((CAPTURED / name).read_text())


def check_fhir(resource: dict[str, Any]) -> None:
    """Valid R4 twice over, and already in the facade's canonical form."""
    assert validate(resource) == resource
    model = {"ImagingStudy": r4_imagingstudy.ImagingStudy, "Endpoint": r4_endpoint.Endpoint}
    model[resource["resourceType"]](resource, strict=True)


def golden(name: str, resource: dict[str, Any]) -> None:
    path = GOLDEN / name
    if os.environ.get("CDSS_UPDATE_GOLDEN"):
        path.write_text(json.dumps(resource, indent=2) + "\n")
    assert resource == json.loads(path.read_text())


def from_fixtures(study: str, instances: str, **kw: Any) -> StudyMapping:
    return map_imaging_study(
        captured(study)[0],
        captured("qido-series.json"),
        captured(instances),
        dicomweb_public_url=PUBLIC,
        source_url=ORTHANC,
        **kw,
    )


def test_golden_from_default_qido_results() -> None:
    """What plain QIDO-RS gives: no StudyDescription, no BodyPartExamined, no SOPClassUID."""
    mapping = from_fixtures("qido-studies.json", "qido-instances.json", tz=UTC)
    check_fhir(mapping.resource)
    golden("imagingstudy-qido.json", mapping.resource)
    assert mapping.resource["id"] == source_id("orthanc", "ImagingStudy", STUDY_UID)
    # the captured objects were made without SOPClassUID, so no instance can be listed
    assert len(mapping.deviations) == 2
    assert all("SOPClassUID" in d for d in mapping.deviations)


def test_golden_from_wado_metadata_fills_the_gaps() -> None:
    """WADO-RS metadata carries BodyPartExamined, SeriesDate/Time and StudyDescription."""
    mapping = from_fixtures(
        "qido-studies-includefield.json", "wado-study-metadata.json", tz=ZoneInfo("Europe/Berlin")
    )
    check_fhir(mapping.resource)
    golden("imagingstudy-wado.json", mapping.resource)
    series = mapping.resource["series"][0]
    assert series["bodySite"] == {"system": SNOMED, "code": "816094009", "display": "Chest"}
    assert mapping.resource["started"] == "2024-01-15T10:15:00+01:00"  # CET in January
    assert series["started"] == "2026-11-29T08:19:43+01:00"


def test_golden_endpoint() -> None:
    endpoint = map_endpoint(PUBLIC, source_url=ORTHANC)
    check_fhir(endpoint)
    golden("endpoint.json", endpoint)
    assert endpoint["address"] == PUBLIC.rstrip("/")
    assert endpoint["id"] == endpoint_id(PUBLIC) == endpoint_id(PUBLIC.rstrip("/"))


def test_identity_subject_accession_and_endpoint_reference() -> None:
    resource = from_fixtures("qido-studies.json", "qido-instances.json").resource
    assert resource["identifier"][0] == {
        "use": "official",
        "system": "urn:dicom:uid",
        "value": f"urn:oid:{STUDY_UID}",
    }
    acsn = resource["identifier"][1]
    assert acsn["value"] == "ACC-0001" and acsn["type"]["coding"][0]["code"] == "ACSN"
    assert resource["subject"] == {
        "type": "Patient",
        "identifier": {"system": MRN_SYSTEM, "value": "SYN-0001"},
        "display": "TEST SYNTHETIC",
    }
    assert "basedOn" not in resource  # order linking adds it from the accession number
    assert resource["endpoint"] == [{"reference": f"Endpoint/{endpoint_id(PUBLIC)}"}]
    assert resource["meta"]["source"] == ORTHANC


# ------------------------------------------------------------------ synthetic DICOM JSON


def el(vr: str, *vals: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(vals)} if vals else {"vr": vr}


def study_json(**over: Any) -> dict[str, Any]:
    ds = {
        "0020000D": el("UI", "1.2.3"),
        "00100020": el("LO", "MRN-9"),
        "00100010": el("PN", {"Alphabetic": "DOE^JANE^Q^DR"}),
        "00080020": el("DA", "20240301"),
        "00080030": el("TM", "0930"),
        "00080050": el("SH", "A-77"),
        "00080061": el("CS", "CT", "SR"),
        "00201206": el("IS", 1),
        "00201208": el("IS", 3),
    }
    ds.update(over)
    return {k: v for k, v in ds.items() if v is not None}


def series_json(uid: str = "1.2.3.1", /, **over: Any) -> dict[str, Any]:
    ds = {
        "0020000E": el("UI", uid),
        "00080060": el("CS", "CT"),
        "00200011": el("IS", "3"),
        "00201209": el("IS", 3),
        "00180015": el("CS", "ABDOMEN"),
    }
    ds.update(over)
    return {k: v for k, v in ds.items() if v is not None}


def instance_json(number: int, series: str = "1.2.3.1", /, **over: Any) -> dict[str, Any]:
    ds = {
        "0020000E": el("UI", series),
        "00080018": el("UI", f"{series}.{number}"),
        "00080016": el("UI", "1.2.840.10008.5.1.4.1.1.2"),
        "00200013": el("IS", number),
    }
    ds.update(over)
    return {k: v for k, v in ds.items() if v is not None}


def mapped(study: dict[str, Any], series: list[Any], instances: list[Any], **kw: Any) -> Any:
    mapping = map_imaging_study(study, series, instances, dicomweb_public_url=PUBLIC, **kw)
    check_fhir(mapping.resource)
    return mapping


def test_instances_sorted_with_sop_class_and_counts_from_the_server() -> None:
    mapping = mapped(study_json(), [series_json()], [instance_json(n) for n in (3, 1, 2)])
    series = mapping.resource["series"][0]
    assert [i["number"] for i in series["instance"]] == [1, 2, 3]
    assert series["instance"][0]["sopClass"] == {
        "system": "urn:ietf:rfc:3986",
        "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2",
    }
    assert series["number"] == 3  # IS as a string is read too
    assert mapping.resource["numberOfSeries"] == 1
    assert mapping.resource["numberOfInstances"] == 3
    assert mapping.deviations == ()


def test_counts_fall_back_to_counting_when_the_server_omits_them() -> None:
    study = study_json(**{"00201206": None, "00201208": None})
    series = [series_json(**{"00201209": None}), series_json("1.2.3.2")]
    lone = instance_json(1, "1.2.3.3", **{"00080060": el("CS", "CT")})
    instances = [instance_json(1), instance_json(2), lone]
    resource = mapped(study, series, instances).resource
    assert resource["numberOfSeries"] == 3  # two described, one known only from its instance
    assert [s["numberOfInstances"] for s in resource["series"]] == [2, 3, 1]
    assert resource["numberOfInstances"] == 6


def test_modalities_are_the_union_of_study_and_series() -> None:
    resource = mapped(study_json(), [series_json(**{"00080060": el("CS", "PT")})], []).resource
    assert [m["code"] for m in resource["modality"]] == ["CT", "SR", "PT"]


def test_study_without_uid_or_patient_id_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="StudyInstanceUID"):
        map_imaging_study(study_json(**{"0020000D": None}), [], [], dicomweb_public_url=PUBLIC)
    with pytest.raises(MappingError, match="PatientID"):
        map_imaging_study(study_json(**{"00100020": el("LO")}), [], [], dicomweb_public_url=PUBLIC)


def test_names_procedure_code_and_readers() -> None:
    code = {
        "00080100": el("SH", "24627-2"),
        "00080102": el("SH", "LN"),
        "00080104": el("LO", "CT Chest"),
    }
    study = study_json(
        **{
            "00081032": el("SQ", code),
            "00080090": el("PN", {"Alphabetic": "HOUSE^GREGORY"}),
            "00081060": el("PN", {"Alphabetic": "A^B"}, {"Alphabetic": "C^D"}),
            "00081030": el("LO", "CT ABDOMEN"),
        }
    )
    resource = mapped(study, [series_json()], []).resource
    assert resource["subject"]["display"] == "DR JANE Q DOE"
    assert resource["referrer"] == {"display": "GREGORY HOUSE"}
    assert resource["interpreter"] == [{"display": "B A"}, {"display": "D C"}]
    assert resource["procedureCode"] == [
        {
            "coding": [{"system": "http://loinc.org", "code": "24627-2", "display": "CT Chest"}],
            "text": "CT Chest",
        }
    ]
    assert resource["description"] == "CT ABDOMEN"


@pytest.mark.parametrize(
    ("over", "tz", "started", "deviation"),
    [
        ({}, None, "2024-03-01", None),  # no zone known: the date alone
        ({}, UTC, "2024-03-01T09:30:00Z", None),
        ({"00080201": el("SH", "-0500")}, UTC, "2024-03-01T09:30:00-05:00", None),
        ({"00080201": el("SH", "+0100")}, None, "2024-03-01T09:30:00+01:00", None),
        ({"00080030": el("TM", "093015.250")}, UTC, "2024-03-01T09:30:15.250000Z", None),
        ({"00080030": el("TM", "25")}, UTC, "2024-03-01", "not a DICOM TM"),
        ({"00080020": el("DA", "2024-13-01")}, UTC, None, "not a DICOM DA"),
        ({"00080201": el("SH", "CET")}, UTC, "2024-03-01T09:30:00Z", "TimezoneOffsetFromUTC"),
    ],
)
def test_started(over: dict[str, Any], tz: Any, started: str | None, deviation: str | None) -> None:
    mapping = mapped(study_json(**over), [], [], tz=tz)
    assert mapping.resource.get("started") == started
    assert any(deviation in d for d in mapping.deviations) if deviation else not mapping.deviations


def test_body_site_laterality_and_unknown_terms() -> None:
    series = [
        series_json("1.2.3.1", **{"00180015": el("CS", "Chest "), "00200060": el("CS", "L")}),
        series_json("1.2.3.2", **{"00180015": el("CS", "TAIL"), "00200060": el("CS", "B")}),
    ]
    mapping = mapped(study_json(), series, [])
    first, second = mapping.resource["series"]
    assert first["bodySite"]["code"] == "816094009"
    assert first["laterality"] == {"system": SNOMED, "code": "7771000", "display": "Left"}
    assert second["bodySite"] == {"display": "TAIL"}  # kept, not guessed
    assert "laterality" not in second
    assert len(mapping.deviations) == 2


def test_broken_series_and_instances_are_left_out_and_reported() -> None:
    series = [series_json("1.2.3.1", **{"00080060": None}), series_json("1.2.3.2")]
    instances = [
        instance_json(1, "1.2.3.2", **{"00080016": None}),
        instance_json(2, "1.2.3.2", **{"00080018": el("UI", "bad uid with spaces")}),
        instance_json(3, "1.2.3.2"),
        instance_json(3, "1.2.3.2"),  # the same instance twice: listed once
    ]
    mapping = mapped(study_json(), series, instances)
    assert [s["uid"] for s in mapping.resource["series"]] == ["1.2.3.2"]
    assert [i["number"] for i in mapping.resource["series"][0]["instance"]] == [3]
    assert len(mapping.deviations) == 3


def verhoeff_ok(number: str) -> bool:
    """SNOMED CT identifiers end in a Verhoeff check digit: catches a mistyped code."""
    d = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ]
    p = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ]
    c = 0
    for i, digit in enumerate(reversed(number)):
        c = d[c][p[i % 8][int(digit)]]
    return c == 0


SHIPPED_CODES = [code for code, _ in [*BODY_PART_SNOMED.values(), *LATERALITY_SNOMED.values()]]


@pytest.mark.parametrize("code", SHIPPED_CODES)
def test_shipped_snomed_codes_have_valid_check_digits(code: str) -> None:
    assert code.isdigit() and verhoeff_ok(code)
