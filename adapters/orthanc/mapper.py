"""Pure mapping: the DICOM JSON of one study -> a FHIR R4 ImagingStudy, plus the WADO-RS Endpoint.

Input is what DICOMweb gives (source-systems.md 4.1, clinical-reference.md 1): the study-level
QIDO-RS result, the series-level results and per-instance attributes (QIDO-RS instance results or
WADO-RS metadata, either works). Study and series attributes a server leaves out of QIDO (Orthanc
omits StudyDescription unless asked, and never returns sequences such as ProcedureCodeSequence)
are looked up in the instances, so a full WADO-RS metadata of one instance fills the gaps.

Lenient on read: a missing optional attribute drops only its element, counts fall back to
counting, and each oddity is reported in `StudyMapping.deviations`. Only a study that cannot be
identified (no StudyInstanceUID) or linked to a patient (no PatientID) raises MappingError, which
the source turns into a Rejected record.

The patient is a logical MRN reference (adapters.base); `basedOn` is left to order linking, which
finds the ServiceRequest through the accession identifier carried here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, TypeVar

from adapters.base import SOURCE_TAG_SYSTEM, mrn_reference, source_id
from adapters.orthanc.codes import (
    DCM,
    body_site,
    code_concept,
    laterality,
)
from adapters.orthanc.payloads import (
    DicomJson,
    fhir_datetime,
    integer,
    items,
    parse_offset,
    person_display,
    text,
    texts,
)

SOURCE = "orthanc"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
ENDPOINT_CONNECTION_TYPE = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
SOP_CLASS_SYSTEM = "urn:ietf:rfc:3986"

R = TypeVar("R")
_FHIR_ID = re.compile(r"^[A-Za-z0-9.\-]{1,64}$")


class MappingError(ValueError):
    """The study cannot become an ImagingStudy: no StudyInstanceUID or no PatientID."""


@dataclass(frozen=True, slots=True)
class StudyMapping:
    resource: dict[str, Any]
    deviations: tuple[str, ...] = ()


def endpoint_id(dicomweb_public_url: str) -> str:
    return source_id(SOURCE, "Endpoint", dicomweb_public_url.rstrip("/"))


def _meta(source_url: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"tag": [{"system": SOURCE_TAG_SYSTEM, "code": SOURCE}]}
    if source_url:
        meta["source"] = source_url
    return meta


def map_endpoint(dicomweb_public_url: str, *, source_url: str | None = None) -> dict[str, Any]:
    """The WADO-RS Endpoint every ImagingStudy points at (the facade's own /dicom-web proxy).

    R4: the address is the service base without sub-paths or a trailing slash.
    """
    address = dicomweb_public_url.rstrip("/")
    return {
        "resourceType": "Endpoint",
        "id": endpoint_id(address),
        "meta": _meta(source_url),
        "status": "active",
        "connectionType": {"system": ENDPOINT_CONNECTION_TYPE, "code": "dicom-wado-rs"},
        "name": "DICOMweb WADO-RS",
        "payloadType": [{"text": "DICOM WADO-RS"}],
        "payloadMimeType": ["application/dicom"],
        "address": address,
    }


def map_imaging_study(
    study: DicomJson,
    series: Sequence[DicomJson],
    instances: Sequence[DicomJson],
    *,
    dicomweb_public_url: str,
    source_url: str | None = None,
    tz: tzinfo | None = None,
) -> StudyMapping:
    """One ImagingStudy for a study. `tz` is the PACS's zone, used for StudyTime/SeriesTime when
    TimezoneOffsetFromUTC (0008,0201) is absent; without either only the date is kept, because
    an R4 dateTime with a time must carry a zone and guessing one would shift the time."""
    dev: list[str] = []
    everything = [study, *instances]
    uid = _text("StudyInstanceUID", everything)
    if uid is None:
        raise MappingError("no StudyInstanceUID (0020,000D)")
    mrn = _text("PatientID", everything)
    if mrn is None:
        raise MappingError(f"study {uid}: no PatientID (0010,0020), so no patient to link")
    zone = _zone(_text("TimezoneOffsetFromUTC", everything), tz, dev)
    groups = _group(series, instances)
    series_out = [s for s in (_series(sd, members, zone, dev) for sd, members in groups) if s]
    total = sum(_series_count(sd, members) for sd, members in groups)
    readers = _find(texts, "NameOfPhysiciansReadingStudy", everything) or []
    procedures = _find(items, "ProcedureCodeSequence", everything) or []
    resource: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": source_id(SOURCE, "ImagingStudy", uid),
        "meta": _meta(source_url),
        "identifier": _identifiers(uid, everything),
        "status": "available",
        "modality": [{"system": DCM, "code": m} for m in _modalities(study, series_out)] or None,
        "subject": mrn_reference(mrn, display=person_display(_text("PatientName", everything))),
        "started": _datetime(
            _text("StudyDate", everything), _text("StudyTime", everything), zone, dev
        ),
        "referrer": _display_ref(_text("ReferringPhysicianName", everything)),
        "interpreter": [r for r in map(_display_ref, readers) if r] or None,
        "endpoint": [{"reference": f"Endpoint/{endpoint_id(dicomweb_public_url)}"}],
        "numberOfSeries": _count(study, "NumberOfStudyRelatedSeries", len(groups), dev),
        "numberOfInstances": _count(study, "NumberOfStudyRelatedInstances", total, dev),
        "procedureCode": [c for c in map(code_concept, procedures) if c] or None,
        "description": _text("StudyDescription", everything),
        "series": series_out or None,
    }
    return StudyMapping({k: v for k, v in resource.items() if v is not None}, tuple(dev))


# ------------------------------------------------------------------ study level


def _find(read: Callable[[DicomJson, str], R], key: str, datasets: Sequence[DicomJson]) -> R | None:
    """The first dataset that has the attribute wins: the study (or series) result, then its
    instances."""
    for ds in datasets:
        found = read(ds, key)
        if found:
            return found
    return None


def _text(key: str, datasets: Sequence[DicomJson]) -> str | None:
    return _find(text, key, datasets)


def _unsigned(value: int | None) -> int | None:
    return value if value is not None and value >= 0 else None


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def _identifiers(uid: str, datasets: Sequence[DicomJson]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {"use": "official", "system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}
    ]
    accession = _text("AccessionNumber", datasets)
    if accession:
        acsn: dict[str, Any] = {
            "use": "usual",
            "type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
            "value": accession,
        }
        issuer = next(iter(_find(items, "IssuerOfAccessionNumberSequence", datasets) or []), None)
        namespace = text(issuer, "LocalNamespaceEntityID") if issuer else None
        if namespace:
            acsn["assigner"] = {"display": namespace}
        found.append(acsn)
    return found


def _modalities(study: DicomJson, series_out: Sequence[Mapping[str, Any]]) -> list[str]:
    """ModalitiesInStudy, plus any series modality it forgot (a lenient union, in order)."""
    found: list[str] = []
    for code in [*texts(study, "ModalitiesInStudy"), *(s["modality"]["code"] for s in series_out)]:
        if code not in found:
            found.append(code)
    return found


def _display_ref(name: str | None) -> dict[str, str] | None:
    shown = person_display(name)
    return {"display": shown} if shown else None


def _count(ds: DicomJson, key: str, counted: int, dev: list[str]) -> int | None:
    """The server's count when it gives a sane one, else what we counted ourselves."""
    given = integer(ds, key)
    if given is not None and given >= 0:
        return given
    if given is not None:
        dev.append(f"{key} {given} is negative; counted {counted} instead")
    return counted if counted > 0 else None


# ------------------------------------------------------------------ series and instances


def _group(
    series: Sequence[DicomJson], instances: Sequence[DicomJson]
) -> list[tuple[DicomJson, list[DicomJson]]]:
    """(series dataset, its instances) per SeriesInstanceUID, in SeriesNumber order. A series
    only the instances mention is described by its first instance."""
    members: dict[str, list[DicomJson]] = {}
    for inst in instances:
        members.setdefault(text(inst, "SeriesInstanceUID") or "", []).append(inst)
    described = {text(s, "SeriesInstanceUID") or "": s for s in series}
    for uid, group in members.items():
        described.setdefault(uid, group[0])
    pairs = [(sd, members.get(uid, [])) for uid, sd in described.items()]
    return sorted(pairs, key=lambda p: _order(p[0], "SeriesNumber", "SeriesInstanceUID"))


def _order(ds: DicomJson, number_key: str, uid_key: str) -> tuple[bool, int, str]:
    number = integer(ds, number_key)
    return (number is None, number or 0, text(ds, uid_key) or "")


def _series_count(sd: DicomJson, members: Sequence[DicomJson]) -> int:
    given = _unsigned(integer(sd, "NumberOfSeriesRelatedInstances"))
    return len(members) if given is None else given


def _series(
    sd: DicomJson, members: list[DicomJson], zone: tzinfo | None, dev: list[str]
) -> dict[str, Any] | None:
    uid = text(sd, "SeriesInstanceUID")
    both = [sd, *members]
    modality = _text("Modality", both)
    if uid is None or not _FHIR_ID.match(uid) or modality is None:
        dev.append(f"series {uid!r}: no valid SeriesInstanceUID or no Modality; left out")
        return None
    out: dict[str, Any] = {"uid": uid}
    _put(out, "number", _unsigned(integer(sd, "SeriesNumber")))
    out["modality"] = {"system": DCM, "code": modality}
    _put(out, "description", _text("SeriesDescription", both))
    out["numberOfInstances"] = _series_count(sd, members)
    for element, term, lookup in (
        ("bodySite", _text("BodyPartExamined", both), body_site),
        ("laterality", _text("Laterality", both), laterality),
    ):
        coding, problem = lookup(term)
        _put(out, element, coding)
        if problem:
            dev.append(f"series {uid}: {problem}")
    started = _datetime(_text("SeriesDate", both), _text("SeriesTime", both), zone, dev)
    _put(out, "started", started)
    listed = _instances(members, uid, dev)
    _put(out, "instance", listed or None)
    return out


def _instances(members: list[DicomJson], series_uid: str, dev: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for inst in sorted(members, key=lambda i: _order(i, "InstanceNumber", "SOPInstanceUID")):
        uid, sop_class = text(inst, "SOPInstanceUID"), text(inst, "SOPClassUID")
        if uid is None or not _FHIR_ID.match(uid) or sop_class is None:
            missing = "a valid SOPInstanceUID" if sop_class else "SOPClassUID (0008,0016)"
            dev.append(f"series {series_uid}: instance {uid!r} has no {missing}; not listed")
        elif uid not in seen:
            seen.add(uid)
            entry: dict[str, Any] = {
                "uid": uid,
                "sopClass": {"system": SOP_CLASS_SYSTEM, "code": f"urn:oid:{sop_class}"},
            }
            _put(entry, "number", _unsigned(integer(inst, "InstanceNumber")))
            out.append(entry)
    return out


def _zone(offset: str | None, tz: tzinfo | None, dev: list[str]) -> tzinfo | None:
    if offset is None:
        return tz
    try:
        return parse_offset(offset)
    except ValueError as exc:
        dev.append(f"{exc}; ignored")
        return tz


def _datetime(da: str | None, tm: str | None, zone: tzinfo | None, dev: list[str]) -> str | None:
    if da is None:
        return None
    try:
        value, problem = fhir_datetime(da, tm, zone)
    except ValueError as exc:
        dev.append(f"{exc}; left out")
        return None
    if problem:
        dev.append(problem)
    return value
