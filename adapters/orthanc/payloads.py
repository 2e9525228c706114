"""Tolerant readers of what Orthanc sends: its REST JSON and DICOM JSON (PS3.18 F.2).

Orthanc's REST objects (`/changes`, `/studies/{id}`, `/series/{id}`) become small dataclasses;
anything missing gets a harmless default so one odd record never breaks a pull. DICOM JSON (QIDO-RS
results, WADO-RS metadata, STOW-RS answers) stays a plain dict, read through the helpers below by
keyword or tag, because servers differ in what they send: IS values as numbers (Orthanc) or
strings, PN as {"Alphabetic": ...}, attributes absent or present with no "Value".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import cache
from typing import Any

from pydicom.datadict import tag_for_keyword

logger = logging.getLogger(__name__)

DicomJson = dict[str, Any]
"""One DICOM JSON object: {"0020000D": {"vr": "UI", "Value": [...]}, ...}."""


# ---------------------------------------------------------------- Orthanc REST


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of Orthanc's change log (`GET /changes`)."""

    seq: int
    change_type: str  # NewStudy, StableStudy, ... (ServerEnumerations.cpp)
    resource_type: str  # Patient | Study | Series | Instance
    id: str  # Orthanc id of the resource
    path: str  # REST path, e.g. /studies/<id>
    date: str = ""  # YYYYMMDDTHHMMSS, server local time


@dataclass(frozen=True, slots=True)
class ChangesPage:
    """A page of the change log: `last` is where the next page starts (`since=last`)."""

    changes: list[Change]
    done: bool
    last: int

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ChangesPage:
        changes = []
        for item in raw.get("Changes") or []:
            change = _change(item)
            if change is None:
                logger.warning(
                    "orthanc: change log entry without Seq/ChangeType/ID skipped: %r", item
                )
            else:
                changes.append(change)
        last = _int(raw.get("Last"))
        if last is None:
            last = changes[-1].seq if changes else 0
        return cls(changes=changes, done=bool(raw.get("Done", True)), last=last)


def _change(item: Any) -> Change | None:
    if not isinstance(item, Mapping):
        return None
    seq, kind, rid = _int(item.get("Seq")), item.get("ChangeType"), item.get("ID")
    if seq is None or not isinstance(kind, str) or not isinstance(rid, str):
        return None
    resource_type = str(item.get("ResourceType") or "")
    path = str(item.get("Path") or f"/{resource_type.lower()}s/{rid}")
    return Change(seq, kind, resource_type, rid, path, str(item.get("Date") or ""))


@dataclass(frozen=True, slots=True)
class OrthancStudy:
    """`GET /studies/{id}`: the study's main tags and its series ids."""

    id: str
    main_dicom_tags: dict[str, str] = field(default_factory=dict)
    patient_main_dicom_tags: dict[str, str] = field(default_factory=dict)
    series: list[str] = field(default_factory=list)
    is_stable: bool = False
    last_update: str = ""

    @property
    def study_instance_uid(self) -> str | None:
        return self.main_dicom_tags.get("StudyInstanceUID") or None

    @property
    def patient_id(self) -> str | None:
        return self.patient_main_dicom_tags.get("PatientID") or None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> OrthancStudy:
        return cls(
            id=str(raw.get("ID") or ""),
            main_dicom_tags=_str_dict(raw.get("MainDicomTags")),
            patient_main_dicom_tags=_str_dict(raw.get("PatientMainDicomTags")),
            series=[str(s) for s in raw.get("Series") or []],
            is_stable=bool(raw.get("IsStable", False)),
            last_update=str(raw.get("LastUpdate") or ""),
        )


@dataclass(frozen=True, slots=True)
class OrthancSeries:
    """`GET /series/{id}` (or an item of `/studies/{id}/series`)."""

    id: str
    main_dicom_tags: dict[str, str] = field(default_factory=dict)
    instances: list[str] = field(default_factory=list)
    parent_study: str = ""
    status: str = "Unknown"  # Unknown | Complete | Missing | Inconsistent
    expected_number_of_instances: int | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> OrthancSeries:
        return cls(
            id=str(raw.get("ID") or ""),
            main_dicom_tags=_str_dict(raw.get("MainDicomTags")),
            instances=[str(i) for i in raw.get("Instances") or []],
            parent_study=str(raw.get("ParentStudy") or ""),
            status=str(raw.get("Status") or "Unknown"),
            expected_number_of_instances=_int(raw.get("ExpectedNumberOfInstances")),
        )


def _str_dict(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


# ---------------------------------------------------------------- DICOM JSON


@cache
def tag(key: str) -> str:
    """The 8-hex-digit DICOM JSON key for a keyword ("StudyInstanceUID") or a tag ("0020000d")."""
    if len(key) == 8 and all(c in "0123456789abcdefABCDEF" for c in key):
        return key.upper()
    number = tag_for_keyword(key)
    if number is None:
        raise KeyError(f"unknown DICOM keyword {key!r}")
    return f"{number:08X}"


def values(ds: Mapping[str, Any], key: str) -> list[Any]:
    """All values of an attribute; [] when absent, empty or malformed."""
    element = ds.get(tag(key))
    if not isinstance(element, Mapping):
        return []
    found = element.get("Value")
    return list(found) if isinstance(found, list) else []


def first(ds: Mapping[str, Any], key: str) -> Any:
    """The first value of an attribute, or None."""
    found = values(ds, key)
    return found[0] if found else None


def _as_text(value: Any) -> str | None:
    if isinstance(value, Mapping):  # PN: {"Alphabetic": "FAMILY^GIVEN", "Ideographic": ...}
        value = value.get("Alphabetic")
    if value is None or isinstance(value, (Mapping, list)):
        return None
    text = str(value).strip()
    return text or None


def text(ds: Mapping[str, Any], key: str) -> str | None:
    """The first value as stripped text (PN: its alphabetic form); None when absent or blank."""
    return _as_text(first(ds, key))


def texts(ds: Mapping[str, Any], key: str) -> list[str]:
    """Every non-blank value as text (multi-valued CS such as ModalitiesInStudy)."""
    out = []
    for value in values(ds, key):
        t = _as_text(value)
        if t is not None:
            out.append(t)
    return out


def integer(ds: Mapping[str, Any], key: str) -> int | None:
    """The first value as an int (IS arrives as a JSON number from Orthanc, a string elsewhere)."""
    return _int(first(ds, key))


def items(ds: Mapping[str, Any], key: str) -> list[DicomJson]:
    """The items of a sequence (SQ) attribute."""
    return [item for item in values(ds, key) if isinstance(item, dict)]


def bulk_data_uri(ds: Mapping[str, Any], key: str) -> str | None:
    """The BulkDataURI of an attribute WADO-RS metadata leaves out (e.g. PixelData)."""
    element = ds.get(tag(key))
    if isinstance(element, Mapping) and isinstance(element.get("BulkDataURI"), str):
        return str(element["BulkDataURI"])
    return None


def person_display(name: str | None) -> str | None:
    """A PN value for humans: "FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX" -> "PREFIX GIVEN MIDDLE FAMILY
    SUFFIX" (the alphabetic group only)."""
    if not name:
        return None
    parts = [p.strip() for p in name.split("=")[0].split("^")] + [""] * 5
    family, given, middle, prefix, suffix = parts[:5]
    shown = " ".join(p for p in (prefix, given, middle, family, suffix) if p)
    return shown or None


# ---------------------------------------------------------------- DA / TM / offsets -> FHIR

_DA = re.compile(r"^(\d{4})\.?(\d{2})\.?(\d{2})$")  # YYYYMMDD (ACR-NEMA: YYYY.MM.DD)
_TM = re.compile(r"^(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d{1,6}))?)?)?$")  # HH[MM[SS[.F]]]
_OFFSET = re.compile(r"^([+-])(\d{2})(\d{2})$")


def parse_offset(offset: str) -> tzinfo:
    """TimezoneOffsetFromUTC (0008,0201) "+HHMM"/"-HHMM" as a fixed zone (ValueError if not)."""
    match = _OFFSET.match(offset)
    if match is None or int(match[2]) > 14 or int(match[3]) > 59:
        raise ValueError(f"TimezoneOffsetFromUTC {offset!r} is not +HHMM/-HHMM")
    sign = -1 if match[1] == "-" else 1
    return timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3])))


def fhir_datetime(da: str, tm: str | None, zone: tzinfo | None) -> tuple[str, str | None]:
    """DICOM DA (+ TM) -> (FHIR dateTime, problem or None); ValueError when DA is malformed.

    With no zone the date comes alone: an R4 dateTime with a time SHALL carry an offset, and
    inventing one would shift the moment. A malformed TM also leaves the date alone.
    """
    day = _DA.match(da)
    try:
        parsed = date(int(day[1]), int(day[2]), int(day[3])) if day else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"date {da!r} is not a DICOM DA")
    if tm is None or zone is None:
        return parsed.isoformat(), None
    clock = _TM.match(tm)
    hour, minute, second = (int(clock[i] or 0) for i in (1, 2, 3)) if clock else (99, 0, 0)
    if clock is None or hour > 23 or minute > 59 or second > 59:
        return parsed.isoformat(), f"time {tm!r} is not a DICOM TM; date kept alone"
    micro = int((clock[4] or "0").ljust(6, "0"))
    moment = datetime.combine(parsed, time(hour, minute, second, micro), tzinfo=zone).isoformat()
    return (moment[:-6] + "Z" if moment.endswith("+00:00") else moment), None
