"""Records -> FHIR R4 JSON exactly as OpenEMR renders them (demographics and encounters).

Pure functions of a row plus the lookups they need (a patient's UUID from its pid, a user's UUID).
Key order follows what OpenEMR's PHP FHIR classes serialise: `id`, `meta`, `resourceType`, then
the elements in FHIR definition order, which the recorded fixtures show. Quirks kept on purpose:
the PT identifier with the v2-0203 code-system URL as `system`, race/ethnicity/birthsex
extensions always present (UNK when unknown), references carrying `type`, dates in UTC `+00:00`.
"""

from __future__ import annotations

import html
from typing import Any

from simulators.openemr.store import OpenEMRStore, Row

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
CDC_RACE = "urn:oid:2.16.840.1.113883.6.238"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
LOINC_SYSTEM = "http://loinc.org"
XHTML = '<div xmlns="http://www.w3.org/1999/xhtml">'

CODE_SYSTEMS = {
    "ICD10": "http://hl7.org/fhir/sid/icd-10-cm",
    "ICD10-CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "SNOMED-CT": "http://snomed.info/sct",
    "SNOMED": "http://snomed.info/sct",
    "LOINC": "http://loinc.org",
    "RXCUI": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "CPT4": "http://www.ama-assn.org/go/cpt",
}
# list_options "race" / "ethnicity" (option_id -> CDC code, title); declined => text only
RACES = {
    "amer_ind_or_alaska_native": ("1002-5", "American Indian or Alaska Native"),
    "abenaki": ("1006-6", "Abenaki"),
    "Asian": ("2028-9", "Asian"),
    "asian": ("2028-9", "Asian"),
    "black_or_afri_amer": ("2054-5", "Black or African American"),
    "native_hawai_or_pac_island": ("2076-8", "Native Hawaiian or Other Pacific Islander"),
    "white": ("2106-3", "White"),
}
ETHNICITIES = {
    "hisp_or_latin": ("2135-2", "Hispanic or Latino"),
    "not_hisp_or_latin": ("2186-5", "Not Hispanic or Latino"),
}
DECLINED = {"declne_to_specfy", "decline_to_specfy", "declined"}
LANGUAGES = {"english": ("en", "English"), "spanish": ("es", "Spanish"), "french": ("fr", "French")}
ENCOUNTER_CLASSES = {
    "AMB": "ambulatory",
    "EMER": "emergency",
    "FLD": "field",
    "HH": "home health",
    "IMP": "inpatient encounter",
    "OBSENC": "observation encounter",
    "VR": "virtual",
}


def utc(value: Any) -> str | None:
    """A MySQL date/datetime string (sim local time = UTC) as OpenEMR's `+00:00` ISO string."""
    if value in (None, "", "0000-00-00", "0000-00-00 00:00:00"):
        return None
    text = str(value).strip().replace("T", " ")
    day, _, clock = text.partition(" ")
    return f"{day}T{clock or '00:00:00'}+00:00"


def ref(resource_type: str, uuid: str) -> dict[str, Any]:
    return {"reference": f"{resource_type}/{uuid}", "type": resource_type}


def meta(row: Row, *profiles: str) -> dict[str, Any]:
    out: dict[str, Any] = {"versionId": "1", "lastUpdated": utc(row["_last_updated"])}
    if profiles:
        out["profile"] = [US_CORE + p for p in profiles]
    return out


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [coding(system, code, display)]}


def data_absent() -> dict[str, Any]:
    return concept(DATA_ABSENT, "unknown", "Unknown")


def parse_codes(value: Any) -> list[tuple[str, str]]:
    """OpenEMR's `TYPE:code;TYPE:code` code strings -> (system URI, code); unknown types skipped."""
    pairs = []
    for part in str(value or "").split(";"):
        kind, _, code = part.strip().partition(":")
        system = CODE_SYSTEMS.get(kind.strip().upper())
        if system and code.strip():
            pairs.append((system, code.strip()))
    return pairs


def number(value: Any) -> int | float | None:
    """Numeric text as JSON numbers the way the fixtures show them (122, not 122.0)."""
    try:
        parsed = float(str(value))
    except ValueError:
        return None
    return int(parsed) if parsed.is_integer() else parsed


def narrative(*words: Any) -> dict[str, str]:
    text = " ".join(str(w) for w in words if w)
    return {"status": "generated", "div": f"{XHTML} <p>{html.escape(text)}</p></div>"}


def _category_extension(url: str, value: str, table: dict[str, tuple[str, str]]) -> dict[str, Any]:
    inner: list[dict[str, Any]]
    if value in DECLINED:
        inner = [{"valueString": "Declined To Specify", "url": "text"}]
    elif value in table:
        code, title = table[value]
        inner = [
            {"valueCoding": coding(CDC_RACE, code, title), "url": "ombCategory"},
            {"valueString": title, "url": "text"},
        ]
    else:
        inner = [
            {"valueCoding": coding(NULL_FLAVOR, "UNK", "Unknown"), "url": "ombCategory"},
            {"valueString": "Unknown", "url": "text"},
        ]
    return {"extension": inner, "url": US_CORE + url}


def _telecom(row: Row) -> list[dict[str, str]]:
    slots: tuple[tuple[str, str, str], ...] = (("phone_home", "phone", "home"),)
    slots += (("phone_biz", "phone", "work"),)
    slots += (("phone_cell", "phone", "mobile"), ("email", "email", "home"))
    return [{"system": s, "value": str(row[c]), "use": u} for c, s, u in slots if row.get(c)]


def _address(row: Row, street: tuple[str, ...], postal: str) -> list[dict[str, Any]]:
    lines = [str(row[c]) for c in street if row.get(c)]
    address: dict[str, Any] = {"line": lines} if lines else {}
    for column, element in (("city", "city"), ("state", "state"), (postal, "postalCode")):
        if row.get(column):
            address[element] = str(row[column])
    if row.get("country_code"):
        address["country"] = str(row["country_code"])
    if address and row.get("contact_address_period_start"):
        address["period"] = {"start": utc(row["contact_address_period_start"])}
    return [address] if address else []


def _name(row: Row) -> dict[str, Any]:
    name: dict[str, Any] = {"use": "official", "family": row.get("lname") or ""}
    name["given"] = [str(row[c]) for c in ("fname", "mname") if row.get(c)]
    if row.get("title"):
        name["prefix"] = [str(row["title"])]
    return {k: v for k, v in name.items() if v}


def patient(store: OpenEMRStore, row: Row) -> dict[str, Any]:
    sex = str(row.get("sex") or "")
    identifier = [
        {
            "use": "official",
            "type": concept(V2_0203, "PT"),
            "system": V2_0203,
            "value": str(row.get("pubpid") or ""),
        }
    ]
    if row.get("ss"):
        ss = {"system": "http://hl7.org/fhir/sid/us-ssn", "value": str(row["ss"])}
        identifier.append({"use": "official", "type": concept(V2_0203, "SS"), **ss})
    out: dict[str, Any] = {"id": row["uuid"], "meta": meta(row), "resourceType": "Patient"}
    out["text"] = narrative(row.get("fname"), row.get("lname"))
    birthsex = {"Female": "F", "Male": "M"}.get(sex, "UNK")
    out["extension"] = [
        {"valueCode": birthsex, "url": US_CORE + "us-core-birthsex"},
        _category_extension("us-core-race", str(row.get("race") or ""), RACES),
        _category_extension("us-core-ethnicity", str(row.get("ethnicity") or ""), ETHNICITIES),
    ]
    out["identifier"] = identifier
    out["active"] = True
    out["name"] = [_name(row)]
    if telecom := _telecom(row):
        out["telecom"] = telecom
    out["gender"] = {"Female": "female", "Male": "male"}.get(sex, "unknown")
    if row.get("DOB"):
        out["birthDate"] = str(row["DOB"])[:10]
    if row.get("deceased_date"):
        out["deceasedDateTime"] = utc(row["deceased_date"])
    if address := _address(row, ("street",), "postal_code"):
        out["address"] = address
    language = LANGUAGES.get(str(row.get("language") or "").lower())
    lang = concept("urn:ietf:bcp:47", *language) if language else data_absent()
    out["communication"] = [{"language": lang}]
    if gp := store.user_uuid(row.get("providerID")):
        out["generalPractitioner"] = [ref("Practitioner", gp)]
    return out


def practitioner(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row["uuid"], "meta": meta(row), "resourceType": "Practitioner"}
    out["text"] = narrative(row.get("fname"), row.get("lname"))
    if row.get("npi"):
        out["identifier"] = [{"system": NPI_SYSTEM, "value": str(row["npi"])}]
    out["active"] = str(row.get("active", "1")) == "1"
    out["name"] = [_name(row)]
    phones = (("phone", "work"), ("phonecell", "mobile"))
    telecom = [{"system": "phone", "value": str(row[c]), "use": u} for c, u in phones if row.get(c)]
    if row.get("email"):
        telecom.append({"system": "email", "value": str(row["email"]), "use": "work"})
    if telecom:
        out["telecom"] = telecom
    if address := _address(row, ("street", "streetb"), "zip"):
        out["address"] = address
    return out


def encounter(store: OpenEMRStore, row: Row) -> dict[str, Any] | None:
    puuid = store.puuid(row.get("pid"))
    if puuid is None:
        return None
    klass = str(row.get("class_code") or "AMB")
    start = utc(row.get("date"))
    out: dict[str, Any] = {"id": row["uuid"], "meta": meta(row), "resourceType": "Encounter"}
    out["identifier"] = [{"system": "urn:ietf:rfc:3986", "value": row["uuid"]}]
    out["status"] = "finished"
    out["class"] = coding(
        "http://terminology.hl7.org/CodeSystem/v3-ActCode", klass, ENCOUNTER_CLASSES.get(klass)
    )
    type_code = str(row.get("encounter_type_code") or "185349003")
    type_text = row.get("encounter_type_description") or "Encounter for check up (procedure)"
    out["type"] = [concept("http://snomed.info/sct", type_code, str(type_text))]
    out["subject"] = ref("Patient", puuid)
    if provider := store.user_uuid(row.get("provider_id")):
        role = concept(
            "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "PPRF",
            "Primary Performer",
        )
        participant = {"type": [role], "period": {"start": start}}
        out["participant"] = [{**participant, "individual": ref("Practitioner", provider)}]
    out["period"] = {"start": start}
    if row.get("date_end"):
        out["period"]["end"] = utc(row["date_end"])
    if row.get("reason"):
        out["reasonCode"] = [{"text": str(row["reason"])}]
    return out
