"""FHIR Patient / Practitioner JSON -> OpenEMR rows: what FhirPatientService::parseFhirResource
and FhirPractitionerService::parseFhirResource keep (the only FHIR writes OpenEMR has, §1.6).

Identifiers are read by type code as OpenEMR does (`PT` -> pubpid, `SS` -> ss), whatever their
system; the NPI by its system. Race and ethnicity come back from the US Core extensions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from simulators.openemr.render import ETHNICITIES, NPI_SYSTEM, RACES, US_CORE

GENDER_TO_SEX = {"male": "Male", "female": "Female", "other": "Unknown", "unknown": "Unknown"}
TELECOM_COLUMNS = {("phone", "home"): "phone_home", ("phone", "work"): "phone_biz"}
TELECOM_COLUMNS |= {("phone", "mobile"): "phone_cell", ("email", "home"): "email"}


def _first(items: Any) -> dict[str, Any]:
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}


def _name_columns(resource: Mapping[str, Any]) -> dict[str, Any]:
    name = _first(resource.get("name"))
    given = [str(g) for g in name.get("given") or []]
    row: dict[str, Any] = {}
    if given:
        row["fname"] = given[0]
        row["mname"] = " ".join(given[1:])
    if name.get("family"):
        row["lname"] = str(name["family"])
    if name.get("prefix"):
        row["title"] = str(name["prefix"][0])
    return row


def _address_columns(resource: Mapping[str, Any], postal: str) -> dict[str, Any]:
    address = _first(resource.get("address"))
    row: dict[str, Any] = {}
    if address.get("line"):
        row["street"] = str(address["line"][0])
    for element, column in (("city", "city"), ("state", "state"), ("postalCode", postal)):
        if address.get(element):
            row[column] = str(address[element])
    if address.get("country"):
        row["country_code"] = str(address["country"])
    return row


def _category_option(resource: Mapping[str, Any], url: str, table: Mapping[str, Any]) -> str:
    for extension in resource.get("extension") or []:
        if extension.get("url") != US_CORE + url:
            continue
        for inner in extension.get("extension") or []:
            code = (inner.get("valueCoding") or {}).get("code")
            for option, (option_code, _title) in table.items():
                if code == option_code:
                    return option
            if inner.get("url") == "text" and inner.get("valueString") == "Declined To Specify":
                return "decline_to_specfy"
    return ""


def patient_row(resource: Mapping[str, Any]) -> dict[str, Any]:
    row = _name_columns(resource)
    if resource.get("gender"):
        row["sex"] = GENDER_TO_SEX.get(str(resource["gender"]), "Unknown")
    if resource.get("birthDate"):
        row["DOB"] = str(resource["birthDate"])
    for identifier in resource.get("identifier") or []:
        codes = {c.get("code") for c in (identifier.get("type") or {}).get("coding") or []}
        if "PT" in codes and identifier.get("value"):
            row["pubpid"] = str(identifier["value"])
        if "SS" in codes and identifier.get("value"):
            row["ss"] = str(identifier["value"])
    row |= _address_columns(resource, "postal_code")
    for telecom in resource.get("telecom") or []:
        column = TELECOM_COLUMNS.get((telecom.get("system"), telecom.get("use", "home")))
        if column and telecom.get("value"):
            row[column] = str(telecom["value"])
    if race := _category_option(resource, "us-core-race", RACES):
        row["race"] = race
    if ethnicity := _category_option(resource, "us-core-ethnicity", ETHNICITIES):
        row["ethnicity"] = ethnicity
    return row


def practitioner_row(resource: Mapping[str, Any]) -> dict[str, Any]:
    row = _name_columns(resource)
    row |= _address_columns(resource, "zip")
    for identifier in resource.get("identifier") or []:
        if identifier.get("system") == NPI_SYSTEM and identifier.get("value"):
            row["npi"] = str(identifier["value"])
    if "active" in resource:
        row["active"] = "1" if resource["active"] else "0"
    for telecom in resource.get("telecom") or []:
        if telecom.get("system") == "email" and telecom.get("value"):
            row["email"] = str(telecom["value"])
        elif telecom.get("system") == "phone" and telecom.get("value"):
            row["phonecell" if telecom.get("use") == "mobile" else "phone"] = str(telecom["value"])
    return row
