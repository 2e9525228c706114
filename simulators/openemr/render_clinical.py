"""Records -> FHIR R4 JSON for the clinical lists, vital signs and smoking status, OpenEMR-shaped.

Sources as in OpenEMR: `lists` (type medical_problem -> Condition problem-list-item, allergy ->
AllergyIntolerance, medication -> MedicationRequest intent "plan"), `prescriptions` ->
MedicationRequest intent "order", `form_vitals` -> one Observation per LOINC code (ids from
`uuid_mapping`, resource path `category=vital-signs&code=...`), `history_data.tobacco` -> the
social-history smoking status Observation (LOINC 72166-2) valued with SNOMED CT.
"""

from __future__ import annotations

import html
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
from simulators.openemr.store import OpenEMRStore, Row

OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SMOKING_CODE = "72166-2"
BP_PANEL = "85354-9"
VITALS_PANEL = "85353-1"
PANEL_DISPLAY = "Vital signs, weight, height, head circumference, oxygen saturation and BMI panel"
# form_vitals column -> (LOINC, display, unit, UCUM code), in OpenEMR's vitals service order
VITALS: dict[str, tuple[str, str, str, str]] = {
    "respiration": ("9279-1", "Respiratory rate", "/min", "/min"),
    "pulse": ("8867-4", "Heart rate", "/min", "/min"),
    "oxygen_saturation": (
        "59408-5",
        "Oxygen saturation in Arterial blood by Pulse oximetry",
        "%",
        "%",
    ),
    "temperature": ("8310-5", "Body temperature", "degF", "[degF]"),
    "height": ("8302-2", "Body height", "in", "[in_i]"),
    "head_circ": ("9843-4", "Head Occipital-frontal circumference", "in", "[in_i]"),
    "weight": ("29463-7", "Body weight", "lb", "[lb_av]"),
    "BMI": ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", "kg/m2"),
}
# list_options "smoking_status": option_id -> SNOMED CT code, title
SMOKING_STATUS = {
    "1": ("449868002", "Current every day smoker"),
    "2": ("428041000124106", "Current some day smoker"),
    "3": ("8517006", "Former smoker"),
    "4": ("266919005", "Never smoker"),
    "5": ("77176002", "Smoker, current status unknown"),
    "9": ("266927001", "Unknown if ever smoked"),
    "15": ("428071000124103", "Heavy tobacco smoker"),
    "16": ("428061000124105", "Light tobacco smoker"),
}


def _ended(store: OpenEMRStore, row: Row) -> bool:
    """An end date before today (the store's clock), as OpenEMR's status checks compare it."""
    end = str(row.get("enddate") or "")
    return bool(end) and end[:10] < store.now()[:10]


def _status_concept(system: str, code: str) -> dict[str, Any]:
    return concept(system, code, code.replace("-", " ").title())


def condition(store: OpenEMRStore, row: Row) -> dict[str, Any] | None:
    puuid = store.puuid(row.get("pid"))
    if puuid is None:
        return None
    profile = "us-core-condition-problems-health-concerns"
    out: dict[str, Any] = {"id": row["uuid"], "meta": meta(row, profile)}
    out["resourceType"] = "Condition"
    if row.get("date"):
        asserted = "http://hl7.org/fhir/StructureDefinition/condition-assertedDate"
        out["extension"] = [{"url": asserted, "valueDateTime": utc(row["date"])}]
    if _ended(store, row):
        clinical = "inactive"
    elif str(row.get("occurrence")) == "1" or str(row.get("outcome")) == "1":
        clinical = "resolved"
    else:
        clinical = "active"
    cs = "http://terminology.hl7.org/CodeSystem/condition-"
    out["clinicalStatus"] = _status_concept(cs + "clinical", clinical)
    out["verificationStatus"] = _status_concept(
        cs + "ver-status", str(row.get("verification") or "confirmed")
    )
    category = concept(cs + "category", "problem-list-item", "Problem List Item")
    out["category"] = [{**category, "text": "Problem List Item"}]
    title = str(row.get("title") or "Problem")
    codes = parse_codes(row.get("diagnosis"))
    out["code"] = {"coding": [coding(s, c, title) for s, c in codes]} if codes else {"text": title}
    out["subject"] = {"reference": f"Patient/{puuid}"}
    if row.get("begdate"):
        out["onsetDateTime"] = utc(row["begdate"])
    if row.get("enddate"):
        out["abatementDateTime"] = utc(row["enddate"])
    if recorded := utc(row.get("date") or row.get("begdate")):
        out["recordedDate"] = recorded
    if row.get("comments"):
        out["note"] = [{"text": str(row["comments"])}]
    return out


def allergy(store: OpenEMRStore, row: Row) -> dict[str, Any] | None:
    puuid = store.puuid(row.get("pid"))
    if puuid is None:
        return None
    title = str(row.get("title") or "")
    out: dict[str, Any] = {"id": row["uuid"], "meta": meta(row, "us-core-allergyintolerance")}
    out["resourceType"] = "AllergyIntolerance"
    div = f'<div xmlns="http://www.w3.org/1999/xhtml">{html.escape(title)}</div>'
    out["text"] = {"status": "additional", "div": div}
    ac = "http://terminology.hl7.org/CodeSystem/allergyintolerance-"
    clinical = "resolved" if str(row.get("outcome")) == "1" else "active"
    out["clinicalStatus"] = _status_concept(
        ac + "clinical", "inactive" if _ended(store, row) else clinical
    )
    verified = str(row.get("verification") or "confirmed")
    out["verificationStatus"] = _status_concept(ac + "verification", verified)
    if row.get("subtype") in {"food", "medication", "environment", "biologic"}:
        out["category"] = [str(row["subtype"])]
    severity = str(row.get("severity_al") or "")
    high = {"severe", "life_threatening_severity", "fatal"}
    low = {"mild", "mild_to_moderate", "moderate", "moderate_to_severe"}
    out["criticality"] = (
        "high" if severity in high else "low" if severity in low else ("unable-to-assess")
    )
    codes = parse_codes(row.get("diagnosis"))
    out["code"] = (
        {"coding": [coding(s, c, title) for s, c in codes], "text": title}
        if codes
        else ({"text": title} if title else data_absent())
    )
    out["patient"] = ref("Patient", puuid)
    if row.get("begdate"):
        out["onsetDateTime"] = utc(row["begdate"])
    if row.get("reaction"):
        reaction: dict[str, Any] = {"manifestation": [{"text": str(row["reaction"])}]}
        if severity in {"mild", "moderate", "severe"}:
            reaction["severity"] = severity
        out["reaction"] = [reaction]
    return out


def _medication_request(store: OpenEMRStore, row: Row, *, intent: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row["uuid"], "meta": meta(row, "us-core-medicationrequest")}
    out["resourceType"] = "MedicationRequest"
    active = str(row.get("active", row.get("activity", "1"))) == "1" and not _ended(store, row)
    out["status"] = "active" if active else "completed"
    out["intent"] = intent
    mc = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
    out["category"] = [concept(mc, "community", "Home/Community")]
    out["reportedBoolean"] = intent == "plan"
    return out


def medication_from_list(store: OpenEMRStore, row: Row) -> dict[str, Any] | None:
    puuid = store.puuid(row.get("pid"))
    if puuid is None:
        return None
    out = _medication_request(store, row, intent="plan")
    title = str(row.get("title") or "")
    codes = [(s, c) for s, c in parse_codes(row.get("diagnosis")) if s == RXNORM]
    out["medicationCodeableConcept"] = {"coding": [coding(s, c, title) for s, c in codes]}
    out["medicationCodeableConcept"]["text"] = title
    if not codes:
        del out["medicationCodeableConcept"]["coding"]
    out["subject"] = ref("Patient", puuid)
    if row.get("begdate"):
        out["authoredOn"] = utc(row["begdate"])
    return out


def medication_from_prescription(store: OpenEMRStore, row: Row) -> dict[str, Any] | None:
    puuid = store.puuid(row.get("patient_id"))
    if puuid is None:
        return None
    out = _medication_request(store, row, intent="order")
    drug = str(row.get("drug") or "")
    medication: dict[str, Any] = {"text": drug}
    if row.get("rxnorm_drugcode"):
        medication = {"coding": [coding(RXNORM, str(row["rxnorm_drugcode"]), drug)], **medication}
    out["medicationCodeableConcept"] = medication
    out["subject"] = ref("Patient", puuid)
    if encounter := store.encounter_by_number(row.get("encounter")):
        out["encounter"] = ref("Encounter", str(encounter["uuid"]))
    if row.get("date_added"):
        out["authoredOn"] = utc(row["date_added"])
    if provider := store.user_uuid(row.get("provider_id")):
        out["requester"] = ref("Practitioner", provider)
    if row.get("dosage"):
        out["dosageInstruction"] = [{"text": str(row["dosage"])}]
    if (refills := number(row.get("refills"))) is not None:
        out["dispenseRequest"] = {"numberOfRepeatsAllowed": int(refills)}
    return out


def _quantity(value: Any, unit: str, code: str) -> dict[str, Any]:
    return {"value": number(value), "unit": unit, "system": UCUM, "code": code}


def _observation_head(
    store: OpenEMRStore, row: Row, category: str, code: str, display: str
) -> dict[str, Any]:
    mapped = store.mapped_uuid(str(row["uuid"]), f"category={category}&code={code}")
    out: dict[str, Any] = {"id": mapped, "meta": meta(row), "resourceType": "Observation"}
    out["status"] = "final"
    out["category"] = [{"coding": [{"system": OBS_CATEGORY, "code": category}]}]
    out["code"] = concept(LOINC_SYSTEM, code, display)
    return out


def vitals(store: OpenEMRStore, row: Row) -> list[dict[str, Any]]:
    """One form_vitals row -> the BP panel, one Observation per measured value, the panel."""
    puuid = store.puuid(row.get("pid"))
    if puuid is None:
        return []
    subject, when = ref("Patient", puuid), utc(row.get("date"))
    found: list[dict[str, Any]] = []
    if number(row.get("bps")) is not None or number(row.get("bpd")) is not None:
        bp = _observation_head(
            store, row, "vital-signs", BP_PANEL, "Blood pressure systolic and diastolic"
        )
        bp.update(subject=subject, effectiveDateTime=when)
        parts = (
            ("bps", "8480-6", "Systolic blood pressure"),
            ("bpd", "8462-4", "Diastolic blood pressure"),
        )
        bp["component"] = [
            {
                "code": concept(LOINC_SYSTEM, code, display),
                "valueQuantity": _quantity(row[col], "mm[Hg]", "mm[Hg]"),
            }
            for col, code, display in parts
            if number(row.get(col)) is not None
        ]
        found.append(bp)
    for column, (code, display, unit, ucum) in VITALS.items():
        if number(row.get(column)) is None:
            continue
        obs = _observation_head(store, row, "vital-signs", code, display)
        obs.update(subject=subject, effectiveDateTime=when)
        obs["valueQuantity"] = _quantity(row[column], unit, ucum)
        found.append(obs)
    if found:
        panel = _observation_head(store, row, "vital-signs", VITALS_PANEL, PANEL_DISPLAY)
        panel.update(subject=subject, effectiveDateTime=when)
        panel["hasMember"] = [ref("Observation", o["id"]) for o in found]
        found.append(panel)
    return found


def smoking_status(store: OpenEMRStore, row: Row) -> dict[str, Any] | None:
    """history_data.tobacco (`note|restype|date|smoking_status option`) -> 72166-2."""
    puuid = store.puuid(row.get("pid"))
    if puuid is None or not row.get("tobacco"):
        return None
    out = _observation_head(
        store, row, "social-history", SMOKING_CODE, "Tobacco smoking status NHIS"
    )
    out["meta"] = meta(row, "us-core-smokingstatus")
    out["category"][0]["coding"][0]["display"] = "Social History"
    out["subject"] = ref("Patient", puuid)
    if when := utc(row.get("date")):
        out["effectiveDateTime"] = when
        out["issued"] = when
    parts = str(row["tobacco"]).split("|")
    option = parts[3] if len(parts) > 3 else ""
    status = SMOKING_STATUS.get(option)
    out["valueCodeableConcept"] = concept(SNOMED, *status) if status else data_absent()
    return out
