"""OpenEMR's validators (Particle rules) for what the simulator writes, with their messages.

OpenEMR validates with particle/validator and returns its messages keyed by field then rule,
e.g. `{"fname": {"Required::NON_EXISTENT_KEY": "fname must be provided, but does not exist"}}`;
the standard API puts them in `validationErrors`, the FHIR API in `{"validationErrors": ...}`.
Rules follow PatientValidator, PractitionerValidator, EncounterValidator, ConditionValidator /
AllergyIntoleranceValidator, ListService::validate and the vitals checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

Messages = dict[str, dict[str, str]]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _present(data: Mapping[str, Any], field: str) -> bool:
    return field in data and data[field] is not None


def required(data: Mapping[str, Any], fields: Iterable[str]) -> Messages:
    out: Messages = {}
    for field in fields:
        if not _present(data, field):
            message = f"{field} must be provided, but does not exist"
            out[field] = {"Required::NON_EXISTENT_KEY": message}
        elif str(data[field]).strip() == "":
            out[field] = {"NotEmpty::EMPTY_VALUE": f"{field} must not be empty"}
    return out


def dates(data: Mapping[str, Any], fields: Iterable[str]) -> Messages:
    """`Y-m-d` dates (a time part is tolerated, as MySQL's DATE cast does)."""
    out: Messages = {}
    for field in fields:
        value = str(data.get(field) or "").strip()
        if not value:
            continue
        try:
            if not _DATE.match(value[:10]):
                raise ValueError(value)
            datetime.strptime(value[:10], "%Y-%m-%d")
        except ValueError:
            out[field] = {"Datetime::INVALID_VALUE": f"{field} must be a valid date"}
    return out


def lengths(data: Mapping[str, Any], bounds: Mapping[str, tuple[int, int]]) -> Messages:
    out: Messages = {}
    for field, (low, high) in bounds.items():
        if not _present(data, field) or str(data[field]) == "":
            continue
        size = len(str(data[field]))
        if size < low:
            message = f"{field} must be {low} characters or longer"
            out[field] = {"Length::TOO_SHORT": message}
        elif size > high:
            message = f"{field} must be {high} characters or shorter"
            out[field] = {"Length::TOO_LONG": message}
    return out


def numbers(data: Mapping[str, Any], fields: Iterable[str]) -> Messages:
    out: Messages = {}
    for field in fields:
        value = data.get(field)
        if value in (None, ""):
            continue
        try:
            float(str(value))
        except ValueError:
            out[field] = {"Numeric::NOT_NUMERIC": f"{field} must be numeric"}
    return out


def merge(*parts: Messages) -> Messages:
    out: Messages = {}
    for part in parts:
        for field, rules in part.items():
            out.setdefault(field, {}).update(rules)
    return out


def patient(data: Mapping[str, Any], *, insert: bool) -> Messages:
    names = {"fname": (1, 255), "lname": (1, 255), "sex": (4, 30)}
    needed = required(data, ("fname", "lname", "DOB", "sex")) if insert else {}
    return merge(needed, lengths(data, names), dates(data, ("DOB",)))


def practitioner(data: Mapping[str, Any]) -> Messages:
    return merge(required(data, ("fname", "lname", "npi")), numbers(data, ("npi",)))


def encounter(data: Mapping[str, Any]) -> Messages:
    return merge(required(data, ("pc_catid", "class_code")), dates(data, ("date", "onset_date")))


def issue(data: Mapping[str, Any]) -> Messages:
    """medical_problem, allergy and medication list entries: title and begdate."""
    needed = required(data, ("title", "begdate"))
    return merge(needed, lengths(data, {"title": (2, 255)}), dates(data, ("begdate", "enddate")))


VITAL_NUMBERS: tuple[str, ...] = (
    "bps",
    "bpd",
    "weight",
    "height",
    "temperature",
    "pulse",
    "respiration",
)
VITAL_NUMBERS += ("BMI", "waist_circ", "head_circ", "oxygen_saturation")


def vital(data: Mapping[str, Any]) -> Messages:
    return numbers(data, VITAL_NUMBERS)
