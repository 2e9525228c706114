"""Which tables each FHIR resource type is rendered from, and which search parameters it takes.

This is the simulator's counterpart of OpenEMR's FHIR service classes: one `Kind` per resource
type the simulator serves, with its source tables (`Origin`) and its §1.7 search parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from simulators.openemr import render, render_clinical, render_labs
from simulators.openemr.search import Param, Resource, select
from simulators.openemr.store import OpenEMRStore, Row

Render = Callable[[OpenEMRStore, Row], list[Resource]]


def _one(fn: Callable[[OpenEMRStore, Row], Resource | None]) -> Render:
    def wrapped(store: OpenEMRStore, row: Row) -> list[Resource]:
        found = fn(store, row)
        return [found] if found is not None else []

    return wrapped


@dataclass(frozen=True, slots=True)
class Origin:
    table: str
    render: Render
    pid_column: str | None = None
    where: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    origins: tuple[Origin, ...]
    params: dict[str, Param]
    in_patient_compartment: bool = True


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _codings(element: str) -> Callable[[Resource], list[Any]]:
    def extract(r: Resource) -> list[Any]:
        return [
            (c.get("system"), c.get("code"))
            for cc in _list(r.get(element))
            for c in cc.get("coding", [])
        ]

    return extract


def _plain(*path: str) -> Callable[[Resource], list[Any]]:
    def extract(r: Resource) -> list[Any]:
        value: Any = r
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        return [v for v in _list(value) if v is not None]

    return extract


def _identifiers(element: str) -> Callable[[Resource], list[Any]]:
    return lambda r: [(i.get("system"), i.get("value")) for i in _list(r.get(element))]


def _names(*parts: str) -> Callable[[Resource], list[Any]]:
    return lambda r: [v for n in _list(r.get("name")) for p in parts for v in _list(n.get(p))]


def _addresses(*parts: str) -> Callable[[Resource], list[Any]]:
    return lambda r: [v for a in _list(r.get("address")) for p in parts for v in _list(a.get(p))]


def _telecom(system: str | None) -> Callable[[Resource], list[Any]]:
    def extract(r: Resource) -> list[Any]:
        return [t.get("value") for t in _list(r.get("telecom")) if system in (None, t["system"])]

    return extract


def _reference(element: str) -> Callable[[Resource], list[Any]]:
    return lambda r: [x.get("reference") for x in _list(r.get(element)) if isinstance(x, dict)]


BASE = {
    "_id": Param("token", _plain("id")),
    "_lastUpdated": Param("date", _plain("meta", "lastUpdated")),
}
PATIENT_REF = {"patient": Param("reference", _reference("subject"))}
ADDRESS = ("line", "city", "state", "postalCode", "country")
PEOPLE = {
    "name": Param("string", _names("family", "given", "prefix", "text")),
    "family": Param("string", _names("family")),
    "given": Param("string", _names("given")),
    "address": Param("string", _addresses(*ADDRESS)),
    "address-city": Param("string", _addresses("city")),
    "address-postalcode": Param("string", _addresses("postalCode")),
    "address-state": Param("string", _addresses("state")),
    "email": Param("token", _telecom("email")),
    "phone": Param("token", _telecom("phone")),
    "telecom": Param("token", _telecom(None)),
}

KINDS: dict[str, Kind] = {
    "Patient": Kind(
        "Patient",
        (Origin("patient_data", _one(render.patient), "pid"),),
        BASE
        | PEOPLE
        | {
            "identifier": Param("token", _identifiers("identifier")),
            "birthdate": Param("date", _plain("birthDate")),
            "gender": Param("token", _plain("gender")),
            "generalPractitioner": Param("reference", _reference("generalPractitioner")),
        },
    ),
    "Practitioner": Kind(
        "Practitioner",
        (Origin("users", _one(lambda _s, row: render.practitioner(row))),),
        BASE | PEOPLE | {"active": Param("token", _plain("active"))},
        in_patient_compartment=False,
    ),
    "Organization": Kind(
        "Organization",
        (Origin("procedure_providers", _one(lambda _s, row: render_labs.organization(row))),),
        BASE | {"name": Param("string", _plain("name"))},
        in_patient_compartment=False,
    ),
    "Encounter": Kind(
        "Encounter",
        (Origin("form_encounter", _one(render.encounter), "pid"),),
        BASE | PATIENT_REF | {"date": Param("date", _plain("period", "start"))},
    ),
    "Condition": Kind(
        "Condition",
        (Origin("lists", _one(render_clinical.condition), "pid", {"type": "medical_problem"}),),
        BASE | PATIENT_REF | {"category": Param("token", _codings("category"))},
    ),
    "AllergyIntolerance": Kind(
        "AllergyIntolerance",
        (Origin("lists", _one(render_clinical.allergy), "pid", {"type": "allergy"}),),
        BASE | {"patient": Param("reference", _reference("patient"))},
    ),
    "MedicationRequest": Kind(
        "MedicationRequest",
        (
            Origin(
                "lists", _one(render_clinical.medication_from_list), "pid", {"type": "medication"}
            ),
            Origin(
                "prescriptions", _one(render_clinical.medication_from_prescription), "patient_id"
            ),
        ),
        BASE
        | PATIENT_REF
        | {"intent": Param("token", _plain("intent")), "status": Param("token", _plain("status"))},
    ),
    "Observation": Kind(
        "Observation",
        (
            Origin("form_vitals", render_clinical.vitals, "pid"),
            Origin("history_data", _one(render_clinical.smoking_status), "pid"),
            Origin("procedure_result", _one(render_labs.lab_observation)),
        ),
        BASE
        | PATIENT_REF
        | {
            "code": Param("token", _codings("code")),
            "category": Param("token", _codings("category")),
            "date": Param("date", _plain("effectiveDateTime")),
        },
    ),
    "DiagnosticReport": Kind(
        "DiagnosticReport",
        (Origin("procedure_report", _one(render_labs.diagnostic_report)),),
        BASE
        | PATIENT_REF
        | {
            "code": Param("token", _codings("code")),
            "category": Param("token", _codings("category")),
            "date": Param("date", _plain("effectiveDateTime")),
        },
    ),
    "ServiceRequest": Kind(
        "ServiceRequest",
        (Origin("procedure_order", _one(render_labs.service_request), "patient_id"),),
        BASE
        | PATIENT_REF
        | {
            "category": Param("token", _codings("category")),
            "code": Param("token", _codings("code")),
            "authored": Param("date", _plain("authoredOn")),
            "status": Param("token", _plain("status")),
            "intent": Param("token", _plain("intent")),
        },
    ),
    "Specimen": Kind(
        "Specimen",
        (Origin("procedure_specimen", _one(render_labs.specimen)),),
        BASE
        | PATIENT_REF
        | {
            "identifier": Param("token", _identifiers("identifier")),
            "accession": Param("token", _identifiers("accessionIdentifier")),
            "type": Param("token", _codings("type")),
            "collected": Param("date", _plain("collection", "collectedDateTime")),
            "status": Param("token", _plain("status")),
        },
    ),
}


def patient_of(resource: Resource) -> str | None:
    """The Patient UUID a resource belongs to (its compartment), or None."""
    if resource.get("resourceType") == "Patient":
        return str(resource["id"])
    for element in ("subject", "patient"):
        reference = (resource.get(element) or {}).get("reference", "")
        if reference.startswith("Patient/"):
            return str(reference.split("/", 1)[1])
    return None


def _rows(store: OpenEMRStore, origin: Origin, pids: set[str] | None) -> Iterable[Row]:
    for row in store.rows(origin.table):
        if any(row.get(k) != v for k, v in origin.where.items()):
            continue
        if pids is not None and origin.pid_column and str(row.get(origin.pid_column)) not in pids:
            continue
        yield row


def collect(store: OpenEMRStore, kind: Kind, pids: set[str] | None = None) -> list[Resource]:
    """Every resource of a kind (optionally only for some patients' pids), rendered."""
    return [
        res for o in kind.origins for row in _rows(store, o, pids) for res in o.render(store, row)
    ]


def _patient_pids(store: OpenEMRStore, query: list[tuple[str, str]]) -> set[str] | None:
    """The pids a `patient=` search names (None: no such parameter), so only their rows are
    rendered; the parameter is still evaluated on the resources afterwards."""
    found: set[str] | None = None
    for name, raw in query:
        if name.partition(":")[0] != "patient" or not raw:
            continue
        rows = (store.patient_by_uuid(v.rsplit("/", 1)[-1]) for v in raw.split(","))
        pids = {str(row["pid"]) for row in rows if row is not None}
        found = pids if found is None else found & pids
    return found


def search(
    store: OpenEMRStore, kind: Kind, query: list[tuple[str, str]], pids: set[str] | None
) -> list[Resource]:
    """Resources of a kind matching a query; `pids` confines it to those patients' rows."""
    named = _patient_pids(store, query) if "patient" in kind.params else None
    if named is not None:
        pids = named if pids is None else pids & named
    return select(collect(store, kind, pids), kind.params, query)


def find(store: OpenEMRStore, kind: Kind, rid: str) -> Resource | None:
    """One resource by id: its row by UUID, or the row its `uuid_mapping` entry points at."""
    mapped = store.unmapped(rid)
    for origin in kind.origins:
        table = store.table(origin.table)
        row = table.by_uuid(rid) or (table.by_uuid(mapped[0]) if mapped else None)
        if row is None or any(row.get(k) != v for k, v in origin.where.items()):
            continue
        for resource in origin.render(store, row):
            if resource["id"] == rid:
                return resource
    return None
