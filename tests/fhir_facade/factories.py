"""Small factories for FHIR R4 resources and helpers for driving the facade over HTTP.

Every factory returns a plain dict that is valid R4 (4.0.1): it passes the server's R4B validation
and the strict R4 models of `fhirclient`, so tests can create, read back and cross-validate it.
The helpers assert what every FHIR response must satisfy (no 5xx, JSON media type, an
OperationOutcome on errors) so individual tests can state only what they are about.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

FHIR_JSON = "application/fhir+json"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MRN = "http://hospital.example/mrn"

Json = dict[str, Any]


# -- resources ----------------------------------------------------------------------------------


def patient(
    family: str | None = "Doe",
    given: Iterable[str] = ("Jan",),
    **extra: Any,
) -> Json:
    name: Json = {"given": list(given)}
    if family is not None:
        name["family"] = family
    return {"resourceType": "Patient", "name": [name], **extra}


def identifier(value: str, system: str | None = MRN) -> Json:
    out: Json = {"value": value}
    if system is not None:
        out["system"] = system
    return out


def observation(
    subject: str | None = None,
    *,
    code: str = "2345-7",
    system: str | None = LOINC,
    **extra: Any,
) -> Json:
    coding: Json = {"code": code}
    if system is not None:
        coding["system"] = system
    out: Json = {"resourceType": "Observation", "status": "final", "code": {"coding": [coding]}}
    if subject is not None:
        out["subject"] = {"reference": subject}
    out.update(extra)
    return out


def quantity(value: float, code: str = "mg/dL", system: str | None = UCUM) -> Json:
    out: Json = {"value": value, "unit": code, "code": code}
    if system is not None:
        out["system"] = system
    return out


def encounter(subject: str, start: str | None = None, end: str | None = None) -> Json:
    out: Json = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": subject},
    }
    period = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    if period:
        out["period"] = period
    return out


def one_of_each(patient_ref: str) -> list[Json]:
    """One R4-valid resource of each of the 15 supported types (the Patient first)."""
    concept = {"coding": [{"system": LOINC, "code": "24627-2"}]}
    subject = {"reference": patient_ref}
    return [
        patient("Every", ["One"], gender="female", birthDate="1970-01-02", active=True),
        {"resourceType": "Practitioner", "name": [{"family": "Osler"}], "active": True},
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": subject,
            "period": {"start": "2024-01-01T10:00:00Z", "end": "2024-01-01T11:00:00Z"},
        },
        {"resourceType": "Condition", "subject": subject, "code": concept},
        observation(patient_ref, valueQuantity=quantity(1.2), effectiveDateTime="2024-01-01"),
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "code": concept,
            "authoredOn": "2024-01-01T09:00:00Z",
        },
        {"resourceType": "Specimen", "subject": subject, "status": "available"},
        {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "code": concept,
            "subject": subject,
        },
        {
            "resourceType": "ImagingStudy",
            "status": "available",
            "subject": subject,
            "started": "2024-01-01T10:00:00Z",
            "series": [
                {
                    "uid": "1.2.3.4",
                    "modality": {
                        "system": "http://dicom.nema.org/resources/ontology/DCM",
                        "code": "CT",
                    },
                }
            ],
        },
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "medicationCodeableConcept": {"text": "aspirin"},
        },
        {"resourceType": "AllergyIntolerance", "patient": subject, "criticality": "low"},
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": subject,
            "content": [{"attachment": {"contentType": "text/plain", "data": "aGVsbG8="}}],
        },
        {
            "resourceType": "Endpoint",
            "status": "active",
            "connectionType": {
                "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                "code": "dicom-wado-rs",
            },
            "payloadType": [{"text": "DICOM"}],
            "address": "https://pacs.example/dicom-web",
        },
        {
            "resourceType": "Provenance",
            "target": [subject],
            "recorded": "2024-01-01T10:00:00Z",
            "agent": [{"who": {"display": "sync job"}}],
        },
        {
            "resourceType": "AuditEvent",
            "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
            "recorded": "2024-01-01T10:00:00Z",
            "agent": [{"who": subject, "requestor": False}],
            "source": {"observer": {"display": "facade"}},
        },
    ]


# -- HTTP helpers -------------------------------------------------------------------------------


def check(resp: httpx.Response) -> httpx.Response:
    """What every facade response must satisfy, whatever the request."""
    assert resp.status_code < 500, f"{resp.request.method} {resp.request.url}: {resp.text}"
    if resp.content:
        assert resp.headers["content-type"].startswith(FHIR_JSON), resp.headers
    return resp


def json_of(resp: httpx.Response, status: int) -> Json:
    check(resp)
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    body: Json = resp.json()
    return body


def create(client: httpx.Client, resource: Mapping[str, Any]) -> Json:
    return json_of(client.post(f"/fhir/{resource['resourceType']}", json=dict(resource)), 201)


def put(client: httpx.Client, resource: Mapping[str, Any], status: int = 201) -> Json:
    url = f"/fhir/{resource['resourceType']}/{resource['id']}"
    return json_of(client.put(url, json=dict(resource)), status)


def transaction(client: httpx.Client, entries: list[Json], kind: str = "transaction") -> Json:
    bundle = {"resourceType": "Bundle", "type": kind, "entry": entries}
    return json_of(client.post("/fhir/", json=bundle), 200)


def post_entry(resource: Json, full_url: str | None = None) -> Json:
    entry: Json = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def create_many(client: httpx.Client, resources: list[Json]) -> list[Json]:
    """Create in one transaction (fast); returns the created resources in the given order."""
    out = transaction(client, [post_entry(r) for r in resources])
    return [e["resource"] for e in out["entry"]]


def search(client: httpx.Client, path: str, params: Any = None, **kw: Any) -> Json:
    bundle = json_of(client.get(f"/fhir/{path}", params=params, **kw), 200)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset", bundle
    return bundle


def ids(bundle: Mapping[str, Any], mode: str = "match") -> list[str]:
    return [
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode") == mode
    ]


def link(bundle: Mapping[str, Any], relation: str) -> str | None:
    return next((x["url"] for x in bundle.get("link", []) if x["relation"] == relation), None)


def local(url: str) -> str:
    """A link's path and query, to follow it with a client that has its own base."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def outcome(resp: httpx.Response, status: int, *, expression: str | None = None) -> Json:
    """Assert an OperationOutcome error with this status; `expression` must be among the
    issue expressions when given. Returns the first issue."""
    body = json_of(resp, status)
    assert body["resourceType"] == "OperationOutcome", body
    issue: Json = body["issue"][0]
    assert issue["severity"] in ("error", "fatal"), issue
    assert issue.get("diagnostics"), issue
    if expression is not None:
        found = [x for i in body["issue"] for x in i.get("expression", [])]
        assert expression in found, f"expected expression {expression!r} in {found}"
    return issue


def r4_model(resource_type: str) -> Any:
    """The strict R4 model class of `fhirclient` for a resource type."""
    module = importlib.import_module(f"fhirclient.models.{resource_type.lower()}")
    return getattr(module, resource_type)


def validate_r4(resource: Mapping[str, Any]) -> None:
    """Raise fhirclient's FHIRValidationError when the JSON is not valid R4."""
    r4_model(resource["resourceType"])(dict(resource), strict=True)
