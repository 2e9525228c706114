"""Records -> FHIR R4 JSON for orders and lab results, as OpenEMR's services render them.

`procedure_order` -> ServiceRequest (category by `procedure_order_type`, status and priority
maps of FhirServiceRequestService), `procedure_report` -> DiagnosticReport, `procedure_result`
-> laboratory Observation (LOINC only when both code and text are present, `referenceRange` only
when the range parses as `low-high`, interpretation coded when mapped), `procedure_specimen` ->
Specimen. Identifier systems of Specimen are the ones of OpenEMR's own example (the fixture).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from simulators.openemr.render import (
    LOINC_SYSTEM,
    coding,
    concept,
    data_absent,
    meta,
    number,
    parse_codes,
    ref,
    utc,
)
from simulators.openemr.render_clinical import OBS_CATEGORY, SNOMED, UCUM
from simulators.openemr.store import OpenEMRStore, Row

SPECIMEN_ID_SYSTEM = "https://example.org/specimen-id"
ACCESSION_SYSTEM = "https://example.org/accession"
ORDER_CATEGORIES = {
    "laboratory_test": ("108252007", "Laboratory procedure"),
    "imaging": ("363679005", "Imaging"),
    "clinical_test": ("103693007", "Diagnostic procedure"),
    "procedure": ("387713003", "Surgical procedure"),
}
ORDER_STATUS = {
    "pending": "active",
    "routed": "active",
    "complete": "completed",
    "completed": "completed",
    "canceled": "revoked",
    "cancelled": "revoked",
    "on-hold": "on-hold",
    "draft": "draft",
}
PRIORITY = {"routine": "routine", "normal": "routine", "urgent": "urgent", "high": "urgent"}
PRIORITY |= {"asap": "asap", "stat": "stat", "emergency": "stat"}
REPORT_STATUS = {"final": "final", "complete": "final", "completed": "final"}
REPORT_STATUS |= {"prelim": "preliminary", "preliminary": "preliminary", "corrected": "corrected"}
REPORT_STATUS |= {"cancel": "cancelled", "cancelled": "cancelled", "error": "entered-in-error"}
OBSERVATION_STATUS = {"registered", "preliminary", "final", "amended", "corrected", "cancelled"}
OBSERVATION_STATUS |= {"entered-in-error", "unknown"}
INTERPRETATION = {
    "high": ("H", "High"),
    "h": ("H", "High"),
    "vhigh": ("HH", "Critical high"),
    "low": ("L", "Low"),
    "l": ("L", "Low"),
    "vlow": ("LL", "Critical low"),
    "yes": ("A", "Abnormal"),
    "abnormal": ("A", "Abnormal"),
    "no": ("N", "Normal"),
    "normal": ("N", "Normal"),
}
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*$")


def _order_code(order: Row) -> dict[str, Any]:
    code, name = str(order.get("procedure_code") or ""), order.get("procedure_name")
    if not code:
        return data_absent()
    pairs = parse_codes(code) if ":" in code else [(LOINC_SYSTEM, code)]
    return {"coding": [coding(s, c, name) for s, c in pairs]} if pairs else data_absent()


def _order_context(store: OpenEMRStore, order: Row) -> tuple[str | None, str | None]:
    encounter = store.encounter_by_number(order.get("encounter_id"))
    return store.puuid(order.get("patient_id")), str(encounter["uuid"]) if encounter else None


def service_request(store: OpenEMRStore, order: Row) -> dict[str, Any] | None:
    puuid, euuid = _order_context(store, order)
    if puuid is None:
        return None
    out: dict[str, Any] = {"id": order["uuid"], "meta": meta(order)}
    out["resourceType"] = "ServiceRequest"
    out["status"] = ORDER_STATUS.get(str(order.get("order_status") or "").lower(), "active")
    out["intent"] = str(order.get("order_intent") or "order")
    kind = str(order.get("procedure_order_type") or "laboratory_test")
    out["category"] = [
        concept(SNOMED, *ORDER_CATEGORIES.get(kind, ORDER_CATEGORIES["laboratory_test"]))
    ]
    if priority := PRIORITY.get(str(order.get("order_priority") or "").lower()):
        out["priority"] = priority
    out["code"] = _order_code(order)
    out["subject"] = ref("Patient", puuid)
    if euuid:
        out["encounter"] = ref("Encounter", euuid)
    if authored := utc(order.get("date_ordered")):
        out["authoredOn"] = authored
    if provider := store.user_uuid(order.get("provider_id")):
        out["requester"] = ref("Practitioner", provider)
    if order.get("clinical_hx"):
        out["reasonCode"] = [{"text": str(order["clinical_hx"])}]
    return out


def _lab(store: OpenEMRStore, order: Row) -> Row | None:
    return store.table("procedure_providers").get(order.get("lab_id"))


def diagnostic_report(store: OpenEMRStore, report: Row) -> dict[str, Any] | None:
    order = store.table("procedure_order").get(report.get("procedure_order_id"))
    if order is None:
        return None
    puuid, euuid = _order_context(store, order)
    if puuid is None:
        return None
    out: dict[str, Any] = {"id": report["uuid"], "meta": meta(report)}
    out["resourceType"] = "DiagnosticReport"
    out["status"] = REPORT_STATUS.get(str(report.get("report_status") or "").lower(), "unknown")
    out["category"] = [concept(LOINC_SYSTEM, "LP7839-6", "Pathology")]
    out["code"] = _order_code(order)
    out["subject"] = ref("Patient", puuid)
    if euuid:
        out["encounter"] = ref("Encounter", euuid)
    if effective := utc(report.get("date_collected")):
        out["effectiveDateTime"] = effective
    if issued := utc(report.get("date_report")):
        out["issued"] = issued
    if (lab := _lab(store, order)) is not None:
        out["performer"] = [ref("Organization", str(lab["uuid"]))]
    key = report["procedure_report_id"]
    results = store.table("procedure_result").where(procedure_report_id=key)
    if results:
        out["result"] = [ref("Observation", str(r["uuid"])) for r in results]
    if report.get("report_notes"):
        data = base64.b64encode(str(report["report_notes"]).encode()).decode()
        out["presentedForm"] = [{"contentType": "text/plain", "data": data}]
    return out


def _lab_quantity(value: str, units: str) -> dict[str, Any]:
    out: dict[str, Any] = {"value": number(value)}
    if units:
        out.update(unit=units, system=UCUM, code=units)
    return out


def lab_observation(store: OpenEMRStore, result: Row) -> dict[str, Any] | None:
    report = store.table("procedure_report").get(result.get("procedure_report_id"))
    order = store.table("procedure_order").get(report.get("procedure_order_id")) if report else None
    if report is None or order is None:
        return None
    puuid, euuid = _order_context(store, order)
    if puuid is None:
        return None
    out: dict[str, Any] = {"id": result["uuid"], "meta": meta(result, "us-core-observation-lab")}
    out["resourceType"] = "Observation"
    status = str(result.get("result_status") or "").lower()
    out["status"] = status if status in OBSERVATION_STATUS else "unknown"
    category = concept(OBS_CATEGORY, "laboratory", "Laboratory")
    out["category"] = [category]
    code, text = str(result.get("result_code") or ""), str(result.get("result_text") or "")
    out["code"] = concept(LOINC_SYSTEM, code, text) if code and text else data_absent()
    out["subject"] = ref("Patient", puuid)
    if euuid:
        out["encounter"] = ref("Encounter", euuid)
    if effective := utc(report.get("date_report")):
        out["effectiveDateTime"] = effective
    value, units = str(result.get("result") or ""), str(result.get("units") or "")
    if number(value) is not None:
        out["valueQuantity"] = _lab_quantity(value, units)
    elif value:
        out["valueString"] = value
    flag = str(result.get("abnormal") or "").lower()
    if flag in INTERPRETATION:
        v3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
        out["interpretation"] = [concept(v3, *INTERPRETATION[flag])]
    elif flag:
        out["interpretation"] = [{"text": flag}]
    if match := _RANGE.match(str(result.get("range") or "")):
        low, high = match.groups()
        out["referenceRange"] = [
            {"low": _lab_quantity(low, units), "high": _lab_quantity(high, units)}
        ]
    order_id = order["procedure_order_id"]
    specimens = store.table("procedure_specimen").where(procedure_order_id=order_id)
    if specimens:
        out["specimen"] = ref("Specimen", str(specimens[0]["uuid"]))
    return out


def specimen(store: OpenEMRStore, row: Row) -> dict[str, Any] | None:
    order = store.table("procedure_order").get(row.get("procedure_order_id"))
    puuid = store.puuid(order.get("patient_id")) if order else None
    if puuid is None:
        return None
    out: dict[str, Any] = {"id": row["uuid"], "meta": meta(row), "resourceType": "Specimen"}
    if row.get("specimen_identifier"):
        out["identifier"] = [
            {"system": SPECIMEN_ID_SYSTEM, "value": str(row["specimen_identifier"])}
        ]
    if row.get("accession_identifier"):
        accession = str(row["accession_identifier"])
        out["accessionIdentifier"] = {"system": ACCESSION_SYSTEM, "value": accession}
    out["status"] = str(row.get("specimen_status") or "available")
    if row.get("specimen_type_code"):
        out["type"] = concept(SNOMED, str(row["specimen_type_code"]), row.get("specimen_type"))
    out["subject"] = ref("Patient", puuid)
    if received := utc(row.get("received_date")):
        out["receivedTime"] = received
    collection: dict[str, Any] = {}
    if collected := utc(row.get("collection_date")):
        collection["collectedDateTime"] = collected
    if number(row.get("collected_volume")) is not None:
        unit = str(row.get("volume_unit") or "mL")
        collection["quantity"] = _lab_quantity(str(row["collected_volume"]), unit)
    if row.get("body_site_code"):
        collection["bodySite"] = concept(SNOMED, str(row["body_site_code"]), row.get("body_site"))
    if collection:
        out["collection"] = collection
    if row.get("container_code"):
        container = concept(SNOMED, str(row["container_code"]), row.get("container"))
        out["container"] = [{"type": container}]
    return out


def organization(row: Row) -> dict[str, Any]:
    """A procedure provider (the lab an order goes to) as OpenEMR's Organization."""
    out: dict[str, Any] = {"id": row["uuid"], "meta": meta(row), "resourceType": "Organization"}
    if row.get("npi"):
        out["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-npi", "value": str(row["npi"])}]
    out["active"] = str(row.get("active", "1")) == "1"
    out["type"] = [concept("http://terminology.hl7.org/CodeSystem/organization-type", "prov")]
    out["type"][0]["coding"][0]["display"] = "Healthcare Provider"
    out["name"] = str(row.get("name") or "")
    return out
