"""OpenEMR's scope rules as tables: v1/v2 permissions, contexts, writes, standard API."""

from __future__ import annotations

import pytest

from simulators.openemr.oauth import (
    AccessGrant,
    allows,
    allows_api,
    category_restrictions,
    parse_scope,
    patient_bound,
)
from simulators.openemr.oauth.scope_lists import SUPPORTED_SCOPES

LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


def grant(*scopes: str, patient: str | None = None) -> AccessGrant:
    return AccessGrant("c", frozenset(scopes), patient, None, None, 0)


@pytest.mark.parametrize(
    ("scope", "resource", "read", "search", "write"),
    [
        # SMART v1
        ("patient/Observation.read", "Observation", True, True, False),
        ("user/Observation.read", "Observation", True, True, False),
        ("system/Observation.read", "Observation", True, True, False),
        ("user/Patient.write", "Patient", False, False, True),
        ("user/Patient.*", "Patient", True, True, True),
        ("system/Organization.write", "Organization", False, False, True),
        ("user/Observation.write", "Observation", False, False, False),  # no such write
        ("patient/Patient.write", "Patient", False, False, False),  # no patient-context writes
        ("user/*.read", "DiagnosticReport", True, True, False),
        ("user/*.*", "Observation", True, True, False),
        ("user/*.*", "Practitioner", True, True, True),
        ("user/Patient.read", "Observation", False, False, False),
        # SMART v2
        ("patient/Observation.rs", "Observation", True, True, False),
        ("user/Observation.r", "Observation", True, False, False),
        ("user/Observation.s", "Observation", False, True, False),
        ("user/Patient.cruds", "Patient", True, True, True),
        ("user/Patient.c", "Patient", False, False, True),
        ("user/Patient.u", "Patient", False, False, True),
        ("user/Patient.d", "Patient", False, False, False),
        ("user/Observation.cruds", "Observation", True, True, False),
        ("user/Patient.sr", "Patient", False, False, False),  # letters out of order: not a scope
        (f"patient/Observation.rs?category={LAB}", "Observation", True, True, False),
        # not resource scopes
        ("openid", "Patient", False, False, False),
        ("patient/DocumentReference.$docref", "DocumentReference", False, False, False),
    ],
)
def test_allows(scope: str, resource: str, read: bool, search: bool, write: bool) -> None:
    g = grant(scope)
    assert (
        allows(g, resource, "read"),
        allows(g, resource, "search"),
        allows(g, resource, "write"),
    ) == (
        read,
        search,
        write,
    )


def test_v1_and_v2_mix_as_a_union() -> None:
    g = grant("user/Patient.read", "user/Patient.cud")
    assert allows(g, "Patient", "read") and allows(g, "Patient", "write")


def test_fhir_api_needs_no_api_fhir_scope() -> None:
    assert allows(grant("user/Patient.read"), "Patient", "read")


@pytest.mark.parametrize(
    ("scopes", "resource", "write", "expected"),
    [
        (("api:oemr", "user/patient.write"), "patient", True, True),
        (("api:oemr", "user/patient.write"), "patient", False, False),
        (("api:oemr", "user/patient.read"), "patient", False, True),
        (("user/patient.write",), "patient", True, False),  # api:oemr is required
        (("api:oemr", "user/vital.crus"), "vital", True, True),
        (("api:oemr", "user/list.r"), "list", False, True),
        (("api:oemr", "user/message.cud"), "message", False, False),
        (("api:oemr", "user/Patient.write"), "patient", True, False),  # FHIR case is not API
        (("api:fhir", "user/patient.read"), "patient", False, False),
    ],
)
def test_allows_api(scopes: tuple[str, ...], resource: str, write: bool, expected: bool) -> None:
    assert allows_api(grant(*scopes), resource, write) is expected


def test_patient_bound() -> None:
    assert patient_bound(grant("patient/Observation.rs"), "Observation", "search")
    assert not patient_bound(
        grant("patient/Observation.rs", "user/Observation.rs"), "Observation", "search"
    )
    assert not patient_bound(grant("user/Observation.rs"), "Observation", "search")
    assert not patient_bound(grant("openid"), "Observation", "search")


def test_category_restrictions() -> None:
    restricted = grant(f"patient/Observation.rs?category={LAB}")
    assert category_restrictions(restricted, "Observation", "search") == {LAB}
    both = grant(f"patient/Observation.rs?category={LAB}", "patient/Observation.rs")
    assert category_restrictions(both, "Observation", "search") is None


def test_parse_scope() -> None:
    parsed = parse_scope("user/Patient.read")
    assert parsed is not None
    assert (parsed.context, parsed.resource, parsed.permissions) == ("user", "Patient", {"r", "s"})
    assert parse_scope("launch/patient") is None
    assert parse_scope("system/*.$export") is None


def test_server_scope_list_follows_section_1_4() -> None:
    writes = {s for s in SUPPORTED_SCOPES if s.startswith("user/") and s.endswith(".write")}
    fhir_writes = {s for s in writes if s.split("/")[1][0].isupper()}
    assert fhir_writes == {
        "user/Patient.write",
        "user/Practitioner.write",
        "user/Organization.write",
    }
    assert "user/Observation.rs" in SUPPORTED_SCOPES
    assert "patient/ServiceRequest.rs" in SUPPORTED_SCOPES
    assert "system/ServiceRequest.read" not in SUPPORTED_SCOPES  # v2 only, as in OpenEMR
    assert (
        "patient/Observation.rs?category="
        "http://terminology.hl7.org//CodeSystem-observation-category|social-history"
    ) in SUPPORTED_SCOPES
    assert {
        "openid",
        "fhirUser",
        "launch",
        "launch/patient",
        "offline_access",
        "api:oemr",
    } <= SUPPORTED_SCOPES
