"""Index rows extracted from plain FHIR JSON, one parameter and value shape at a time."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fhir_facade.search import extract
from fhir_facade.search.dates import MAX_US, MIN_US
from fhir_facade.search.extract import IndexRows, extract_index, parse_reference
from fhir_facade.search.parameters import SearchParam

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECOND = 1_000_000


def us(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Microseconds since the epoch of a UTC wall-clock time."""
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def rows_of(rows: IndexRows, name: str) -> list[tuple[Any, ...]]:
    """Every row of one parameter, whatever its table, without the name column."""
    tables: list[list[Any]] = [
        rows.tokens,
        rows.strings,
        rows.dates,
        rows.references,
        rows.quantities,
        rows.numbers,
    ]
    return [row[1:] for table in tables for row in table if row[0] == name]


def only(resource_type: str, name: str, /, **body: Any) -> list[tuple[Any, ...]]:
    """Rows of one parameter for a resource built from keyword elements."""
    return rows_of(extract_index({"resourceType": resource_type, **body}), name)


PATIENT: Mapping[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {"lastUpdated": "2024-01-01T00:00:00Z", "versionId": "1"},
    "identifier": [
        {"system": "urn:mrn", "value": "123"},
        {"value": "no-system"},
        {"system": "urn:only-system"},
        {"use": "official"},
    ],
    "active": True,
    "gender": "female",
    "birthDate": "1980-05-17",
    "name": [
        {
            "use": "official",
            "family": "Chalmers",
            "given": ["Peter", "James"],
            "prefix": ["Mr."],
            "suffix": ["Jr"],
            "text": "Peter James Chalmers",
        },
        {"given": ["Jim"]},
    ],
    "telecom": [
        {"system": "phone", "value": "+1 555 0100", "use": "home"},
        {"system": "email", "value": "pj@example.org"},
        {"system": "fax", "value": "+1 555 0199"},
        {"value": "unlabelled"},
        {"system": "phone"},
    ],
    "address": [
        {
            "line": ["534 Erewhon St", "Apt 2"],
            "city": "PleasantVille",
            "district": "Rainbow",
            "state": "Vic",
            "postalCode": "3999",
            "country": "AU",
            "text": "534 Erewhon St PleasantVille",
        }
    ],
    "generalPractitioner": [
        {"reference": "Practitioner/dr1"},
        {"reference": "Organization/org1"},
    ],
    "managingOrganization": {"reference": "Organization/org1"},
}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "identifier",
            [("urn:mrn", "123"), (None, "no-system"), ("urn:only-system", None)],
        ),
        ("active", [(None, "true")]),
        ("gender", [(None, "female")]),
        ("birthdate", [(us(1980, 5, 17), us(1980, 5, 18))]),
        (
            "name",
            [
                ("Chalmers",),
                ("Peter",),
                ("James",),
                ("Mr.",),
                ("Jr",),
                ("Peter James Chalmers",),
                ("Jim",),
            ],
        ),
        ("family", [("Chalmers",)]),
        ("given", [("Peter",), ("James",), ("Jim",)]),
        (
            "telecom",
            [
                (None, "+1 555 0100"),
                (None, "pj@example.org"),
                (None, "+1 555 0199"),
                (None, "unlabelled"),
            ],
        ),
        ("phone", [(None, "+1 555 0100")]),
        ("email", [(None, "pj@example.org")]),
        (
            "address",
            [
                ("534 Erewhon St",),
                ("Apt 2",),
                ("PleasantVille",),
                ("Rainbow",),
                ("Vic",),
                ("3999",),
                ("AU",),
                ("534 Erewhon St PleasantVille",),
            ],
        ),
        ("address-city", [("PleasantVille",)]),
        ("address-postalcode", [("3999",)]),
        (
            "general-practitioner",
            [
                ("Practitioner", "dr1", "Practitioner/dr1"),
                ("Organization", "org1", "Organization/org1"),
            ],
        ),
        ("organization", [("Organization", "org1", "Organization/org1")]),
        ("_id", []),
        ("_lastUpdated", []),
    ],
)
def test_patient_rows(name: str, expected: list[tuple[Any, ...]]) -> None:
    assert rows_of(extract_index(PATIENT), name) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, [(None, "false")]),
        (True, [(None, "true")]),
        (None, []),
    ],
)
def test_boolean_token(value: bool | None, expected: list[tuple[Any, ...]]) -> None:
    assert only("Practitioner", "active", active=value) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # CodeableConcept: one row per coding, text ignored
        (
            {
                "coding": [
                    {"system": "http://loinc.org", "code": "8480-6", "display": "Systolic"},
                    {"system": "http://snomed.info/sct", "code": "271649006"},
                    {"code": "local"},
                    {"display": "no code"},
                ],
                "text": "BP",
            },
            [
                ("http://loinc.org", "8480-6"),
                ("http://snomed.info/sct", "271649006"),
                (None, "local"),
            ],
        ),
        ({"text": "text only"}, []),
        ({"coding": []}, []),
    ],
)
def test_codeable_concept_token(code: Any, expected: list[tuple[Any, ...]]) -> None:
    assert only("Observation", "code", code=code) == expected


@pytest.mark.parametrize(
    ("element", "value", "name", "expected"),
    [
        # Coding (Encounter.class)
        (
            "class",
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "class",
            [("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB")],
        ),
        # code
        ("status", "finished", "status", [(None, "finished")]),
        ("status", "", "status", []),
        # Identifier with and without system
        (
            "identifier",
            [{"system": "urn:x", "value": "1"}, {"value": "2"}],
            "identifier",
            [("urn:x", "1"), (None, "2")],
        ),
    ],
)
def test_encounter_token_shapes(
    element: str, value: Any, name: str, expected: list[tuple[Any, ...]]
) -> None:
    assert only("Encounter", name, **{element: value}) == expected


def test_plain_string_token_and_string_params() -> None:
    assert only("AuditEvent", "site", source={"site": "Cloud", "observer": {}}) == [(None, "Cloud")]
    assert only("Endpoint", "name", name="PACS") == [("PACS",)]
    assert only("Endpoint", "name", name="") == []


def test_code_list_token() -> None:
    body = {"category": ["food", "medication", "food"], "patient": {"reference": "Patient/1"}}
    assert only("AllergyIntolerance", "category", **body) == [(None, "food"), (None, "medication")]


def test_allergy_code_covers_reaction_substance() -> None:
    body = {
        "code": {"coding": [{"system": "s", "code": "peanut"}]},
        "reaction": [
            {"substance": {"coding": [{"system": "s", "code": "arachis-oil"}]}},
            {"substance": {"coding": [{"system": "s", "code": "peanut"}]}},
        ],
    }
    assert only("AllergyIntolerance", "code", **body) == [("s", "peanut"), ("s", "arachis-oil")]


def test_nested_list_paths() -> None:
    study = {
        "series": [
            {
                "uid": "1.2.1",
                "modality": {
                    "system": "http://dicom.nema.org/resources/ontology/DCM",
                    "code": "CT",
                },
                "instance": [{"uid": "1.2.1.1"}, {"uid": "1.2.1.2"}],
                "endpoint": [{"reference": "Endpoint/wado"}],
            },
            {"uid": "1.2.2", "instance": [{"uid": "1.2.2.1"}]},
        ],
        "endpoint": [{"reference": "Endpoint/wado"}],
    }
    assert only("ImagingStudy", "series", **study) == [(None, "1.2.1"), (None, "1.2.2")]
    assert only("ImagingStudy", "instance", **study) == [
        (None, "1.2.1.1"),
        (None, "1.2.1.2"),
        (None, "1.2.2.1"),
    ]
    assert only("ImagingStudy", "modality", **study) == [
        ("http://dicom.nema.org/resources/ontology/DCM", "CT")
    ]
    # endpoint appears at study and series level: indexed once
    assert only("ImagingStudy", "endpoint", **study) == [("Endpoint", "wado", "Endpoint/wado")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"effectiveDateTime": "2020-02-15"}, [(us(2020, 2, 15), us(2020, 2, 16))]),
        (
            {"effectiveInstant": "2020-02-15T10:00:00.000+01:00"},
            [(us(2020, 2, 15, 9), us(2020, 2, 15, 9) + 1000)],
        ),
        (
            {"effectivePeriod": {"start": "2020-01-01", "end": "2020-01-31"}},
            [(us(2020, 1, 1), us(2020, 2, 1))],
        ),
        ({"effectivePeriod": {"start": "2020-01-01"}}, [(us(2020, 1, 1), MAX_US)]),
        ({"effectivePeriod": {"end": "2020-01-01"}}, [(MIN_US, us(2020, 1, 2))]),
        ({"effectivePeriod": {}}, []),
        (
            {"effectiveTiming": {"event": ["2020-03-01", "2020-01-01T10:00:00Z", "2020-02"]}},
            [(us(2020, 1, 1, 10), us(2020, 3, 2))],
        ),
        (
            {
                "effectiveTiming": {
                    "repeat": {"boundsPeriod": {"start": "2021-01-01"}, "frequency": 1}
                }
            },
            [(us(2021, 1, 1), MAX_US)],
        ),
        ({"effectiveTiming": {"repeat": {"frequency": 1}}}, []),
        # malformed content is skipped, never raised
        ({"effectiveDateTime": "2020-13-01"}, []),
        ({"effectiveDateTime": "yesterday"}, []),
        ({"effectiveDateTime": 20200101}, []),
        ({"effectivePeriod": {"start": "2020-02-01", "end": "2020-01-01"}}, []),
        ({"effectivePeriod": {"start": 5}}, []),
        ({"effectiveTiming": {"event": ["2020-01-01", "bad"]}}, []),
    ],
)
def test_observation_date_shapes(body: dict[str, Any], expected: list[tuple[int, int]]) -> None:
    assert only("Observation", "date", **body) == expected


def test_malformed_dates_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="fhir_facade.search.extract"):
        rows = extract_index(
            {
                "resourceType": "Condition",
                "onsetDateTime": "2020-02-30",
                "recordedDate": "2020-02-29",
            }
        )
    assert rows_of(rows, "onset-date") == []
    assert rows_of(rows, "recorded-date") == [(us(2020, 2, 29), us(2020, 3, 1))]
    assert any("onset-date" in record.getMessage() for record in caplog.records)
    assert all(record.levelno == logging.DEBUG for record in caplog.records)


def test_choice_paths_index_under_one_param() -> None:
    body = {"onsetPeriod": {"start": "2019", "end": "2019-06"}, "onsetString": "childhood"}
    assert only("Condition", "onset-date", **body) == [(us(2019, 1, 1), us(2019, 7, 1))]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/123", ("Patient", "123")),
        ("Patient/a-b.C9", ("Patient", "a-b.C9")),
        ("Patient/123/_history/4", ("Patient", "123")),
        ("http://example.org/fhir/Patient/123", ("Patient", "123")),
        ("https://example.org/base/r4/Observation/o1/_history/2", ("Observation", "o1")),
        ("urn:uuid:1b3a0c5e-2f4e-4b8c-9a6b-0d9f8e7c6b5a", (None, None)),
        ("urn:oid:1.2.3", (None, None)),
        ("#contained1", (None, None)),
        ("patient/123", (None, None)),
        ("Patient/", (None, None)),
        ("Patient/1/2", (None, None)),
        ("Patient/" + "x" * 65, (None, None)),
        ("", (None, None)),
    ],
)
def test_parse_reference(reference: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_reference(reference) == expected


@pytest.mark.parametrize(
    ("subject", "patient_rows", "subject_rows"),
    [
        (
            {"reference": "Patient/1"},
            [("Patient", "1", "Patient/1")],
            [("Patient", "1", "Patient/1")],
        ),
        ({"reference": "Group/g"}, [], [("Group", "g", "Group/g")]),
        (
            {"reference": "http://x/fhir/Patient/1/_history/3"},
            [("Patient", None, "http://x/fhir/Patient/1/_history/3")],
            [("Patient", None, "http://x/fhir/Patient/1/_history/3")],
        ),
        # no type in the literal: untyped params keep it, typed params need Reference.type
        ({"reference": "urn:uuid:abc"}, [], [(None, None, "urn:uuid:abc")]),
        (
            {"reference": "urn:uuid:abc", "type": "Patient"},
            [("Patient", None, "urn:uuid:abc")],
            [("Patient", None, "urn:uuid:abc")],
        ),
        (
            {"reference": "urn:uuid:abc", "type": "http://hl7.org/fhir/StructureDefinition/Group"},
            [],
            [("Group", None, "urn:uuid:abc")],
        ),
        ({"reference": "#c1"}, [], [(None, None, "#c1")]),
        # logical (identifier-only) and empty references have no literal to index
        ({"identifier": {"system": "urn:mrn", "value": "1"}, "type": "Patient"}, [], []),
        ({"reference": ""}, [], []),
        ({"display": "Someone"}, [], []),
    ],
)
def test_reference_targets(
    subject: dict[str, Any],
    patient_rows: list[tuple[Any, ...]],
    subject_rows: list[tuple[Any, ...]],
) -> None:
    rows = extract_index({"resourceType": "Observation", "subject": subject})
    assert rows_of(rows, "patient") == patient_rows
    assert rows_of(rows, "subject") == subject_rows


def test_practitioner_targets_on_encounter_participant() -> None:
    body = {
        "participant": [
            {"individual": {"reference": "Practitioner/p1"}},
            {"individual": {"reference": "RelatedPerson/r1"}},
            {"type": [{"text": "no individual"}]},
        ]
    }
    assert only("Encounter", "participant", **body) == [
        ("Practitioner", "p1", "Practitioner/p1"),
        ("RelatedPerson", "r1", "RelatedPerson/r1"),
    ]
    assert only("Encounter", "practitioner", **body) == [("Practitioner", "p1", "Practitioner/p1")]


def test_audit_event_patient_spans_agent_and_entity() -> None:
    body = {
        "agent": [{"who": {"reference": "Practitioner/d"}}, {"who": {"reference": "Patient/a"}}],
        "entity": [{"what": {"reference": "Patient/b"}}, {"what": {"reference": "Observation/o"}}],
    }
    assert only("AuditEvent", "patient", **body) == [
        ("Patient", "a", "Patient/a"),
        ("Patient", "b", "Patient/b"),
    ]
    assert only("AuditEvent", "entity", **body) == [
        ("Patient", "b", "Patient/b"),
        ("Observation", "o", "Observation/o"),
    ]


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        (
            {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
            [(120.0, "http://unitsofmeasure.org", "mm[Hg]")],
        ),
        ({"value": 5.4, "unit": "mmol/L"}, [(5.4, None, "mmol/L")]),
        ({"value": 0}, [(0.0, None, None)]),
        ({"unit": "mg"}, []),
        ({"value": "12"}, []),
        ({"value": True}, []),
    ],
)
def test_value_quantity(quantity: dict[str, Any], expected: list[tuple[Any, ...]]) -> None:
    assert only("Observation", "value-quantity", valueQuantity=quantity) == expected


def test_number_params(monkeypatch: pytest.MonkeyPatch) -> None:
    # No registered R4 parameter here is a number; exercise the shape on a stand-in.
    param = SearchParam("count", "number", ("count",))
    monkeypatch.setattr(extract, "params_for", lambda _type: {"count": param})
    for value, expected in [
        (3, [(3.0,)]),
        (2.5, [(2.5,)]),
        (False, []),
        ("3", []),
        ([1, 1, 2], [(1.0,), (2.0,)]),
    ]:
        assert rows_of(extract_index({"resourceType": "X", "count": value}), "count") == expected


def test_rows_are_deduplicated() -> None:
    rows = extract_index(
        {
            "resourceType": "Observation",
            "code": {"coding": [{"system": "s", "code": "c"}, {"system": "s", "code": "c"}]},
            "category": [
                {"coding": [{"system": "s", "code": "vital-signs"}]},
                {"coding": [{"system": "s", "code": "vital-signs"}]},
            ],
            "performer": [{"reference": "Practitioner/1"}, {"reference": "Practitioner/1"}],
            "identifier": [
                {"system": "u", "value": "1"},
                {"system": "u", "value": "1", "use": "old"},
            ],
        }
    )
    assert rows.tokens == [
        ("code", "s", "c"),
        ("category", "s", "vital-signs"),
        ("identifier", "u", "1"),
    ]
    assert rows.references == [("performer", "Practitioner", "1", "Practitioner/1")]


@pytest.mark.parametrize(
    "resource",
    [
        {"resourceType": "Basic", "code": {"coding": [{"code": "x"}]}},
        {"code": {"coding": [{"code": "x"}]}},
        {"resourceType": 7},
        {"resourceType": "Observation"},
    ],
)
def test_no_rows(resource: dict[str, Any]) -> None:
    assert extract_index(resource) == IndexRows()


@pytest.mark.parametrize(
    "body",
    [
        {"code": "not-a-codeable-concept"},
        {"code": {"coding": "not-a-list"}},
        {"code": {"coding": [None, 5, "x"]}},
        {"subject": "Patient/1"},
        {"subject": 42},
        {"valueQuantity": [1, 2]},
        {"identifier": [None, {"value": 3}]},
        {"effectivePeriod": "2020"},
    ],
)
def test_odd_shapes_never_raise(body: dict[str, Any]) -> None:
    extract_index({"resourceType": "Observation", **body})


def test_provenance_and_document_reference_paths() -> None:
    provenance = {
        "resourceType": "Provenance",
        "target": [{"reference": "Patient/p"}, {"reference": "Observation/o/_history/1"}],
        "recorded": "2024-05-01T12:00:00.123Z",
        "agent": [{"who": {"reference": "Device/d"}}],
        "entity": [{"what": {"reference": "DocumentReference/doc"}, "role": "source"}],
    }
    rows = extract_index(provenance)
    assert rows_of(rows, "patient") == [("Patient", "p", "Patient/p")]
    assert rows_of(rows, "target") == [
        ("Patient", "p", "Patient/p"),
        ("Observation", "o", "Observation/o/_history/1"),
    ]
    assert rows_of(rows, "recorded") == [
        (us(2024, 5, 1, 12) + 123_000, us(2024, 5, 1, 12) + 124_000)
    ]
    docref = {
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2"},
        "identifier": [{"system": "urn:x", "value": "d1"}],
        "context": {"encounter": [{"reference": "Encounter/e"}]},
        "date": "2024-05-01T12:00:00Z",
    }
    rows = extract_index(docref)
    assert rows_of(rows, "identifier") == [("urn:ietf:rfc:3986", "urn:oid:1.2"), ("urn:x", "d1")]
    assert rows_of(rows, "encounter") == [("Encounter", "e", "Encounter/e")]
    assert rows_of(rows, "date") == [(us(2024, 5, 1, 12), us(2024, 5, 1, 12) + SECOND)]


def test_meta_tags_are_indexed_as_the_common_tag_parameter() -> None:
    rows = extract_index(
        {
            "resourceType": "Observation",
            "meta": {"tag": [{"system": "urn:cdss:source", "code": "senaite"}]},
        }
    )
    assert ("_tag", "urn:cdss:source", "senaite") in rows.tokens
