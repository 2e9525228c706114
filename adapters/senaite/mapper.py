"""SENAITE sample + analyses -> FHIR R4 ServiceRequest, Specimen, Observations, DiagnosticReport.

Pure functions, no I/O. One sample (AnalysisRequest) is one lab order: its ServiceRequest and
Specimen always, one Observation per reported analysis (to_be_verified, verified, published, and a
retracted/rejected one that had a result, so an earlier report is withdrawn), and a
DiagnosticReport once the sample is verified (preliminary) or published (final). Ids are
deterministic (`source_id("senaite", <FHIR type>, <SENAITE UID>)`) so a re-sync upserts, and the
resources reference each other directly. The patient is a logical reference by MRN
(`MedicalRecordNumber`, senaite.patient): a sample without one cannot be linked and is Rejected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from adapters.base import Rejected, mrn_reference
from adapters.senaite import terminology as t
from adapters.senaite.loinc import LOINC_SYSTEM, LoincTable
from adapters.senaite.observation import ObservationMapper, analysis_codings
from adapters.senaite.payloads import AnalysisPayload, Deviations, SamplePayload
from adapters.senaite.refs import fhir_datetime, meta, reference, resource_id


@dataclass(slots=True)
class MappedSample:
    """What one sample became: resources to upsert and records that could not be mapped."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def sample_ref(sample: SamplePayload) -> str:
    return f"AnalysisRequest/{sample.id}"


def order_code(
    sample: SamplePayload, analyses: Sequence[AnalysisPayload], table: LoincTable
) -> dict[str, Any]:
    """The order's code: the LOINC (else keyword) coding of each ordered analysis."""
    codings: list[dict[str, Any]] = []
    titles: list[str] = []
    for analysis in analyses:
        if analysis.review_state in ("cancelled", "rejected", "retracted") or not analysis.keyword:
            continue
        loinc, keyword = analysis_codings(analysis, table)
        coding = loinc or keyword
        if coding not in codings:
            codings.append(coding)
            titles.append(analysis.title or analysis.keyword)
    text = sample.TemplateTitle or ", ".join(titles)
    code: dict[str, Any] = {}
    if codings:
        code["coding"] = codings
    if text:
        code["text"] = text
    return code


def _identifiers(sample: SamplePayload) -> list[dict[str, Any]]:
    filler = {
        "coding": [
            {"system": t.IDENTIFIER_TYPE_SYSTEM, "code": "FILL", "display": "Filler Identifier"}
        ]
    }
    ids: list[dict[str, Any]] = [
        {"type": filler, "system": t.SAMPLE_ID_SYSTEM, "value": sample.id},
    ]
    if sample.ClientSampleID:
        placer = {
            "coding": [
                {"system": t.IDENTIFIER_TYPE_SYSTEM, "code": "PLAC", "display": "Placer Identifier"}
            ]
        }
        ids.append(
            {"type": placer, "system": t.CLIENT_SAMPLE_ID_SYSTEM, "value": sample.ClientSampleID}
        )
    ids.append({"system": t.UID_SYSTEM, "value": sample.uid})
    return ids


def service_request(
    sample: SamplePayload, code: Mapping[str, Any], subject: dict[str, Any], source_url: str
) -> dict[str, Any]:
    """The lab order (vendor map: AnalysisRequest <-> ServiceRequest)."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": resource_id("ServiceRequest", sample.uid),
        "meta": meta(source_url),
        "identifier": _identifiers(sample),
        "status": t.SERVICE_REQUEST_STATUS.get(sample.review_state or "", "active"),
        "intent": "order",
        "category": [
            {
                "coding": [
                    {
                        "system": t.SNOMED_SYSTEM,
                        "code": "108252007",
                        "display": "Laboratory procedure",
                    }
                ]
            }
        ],
        "subject": subject,
        "specimen": [reference("Specimen", sample.uid)],
    }
    if sample.Priority in t.PRIORITY:
        resource["priority"] = t.PRIORITY[sample.Priority]
    if code:
        resource["code"] = dict(code)
    if sample.created is not None:
        resource["authoredOn"] = fhir_datetime(sample.created)
    if sample.requester:
        resource["requester"] = {"display": sample.requester}
    return resource


def specimen(sample: SamplePayload, subject: dict[str, Any], source_url: str) -> dict[str, Any]:
    """The sample as a specimen: accession = sample id, type from the SampleType."""
    resource: dict[str, Any] = {
        "resourceType": "Specimen",
        "id": resource_id("Specimen", sample.uid),
        "meta": meta(source_url),
        "identifier": [{"system": t.UID_SYSTEM, "value": sample.uid}],
        "accessionIdentifier": {"system": t.SAMPLE_ID_SYSTEM, "value": sample.id},
        "subject": subject,
        "request": [reference("ServiceRequest", sample.uid)],
    }
    status = t.SPECIMEN_STATUS.get(sample.review_state or "")
    if status:
        resource["status"] = status
    if sample.sample_type:
        specimen_type: dict[str, Any] = {"text": sample.sample_type}
        snomed = t.SPECIMEN_TYPES.get(sample.sample_type.strip().casefold())
        if snomed:
            specimen_type["coding"] = [
                {"system": t.SNOMED_SYSTEM, "code": snomed[0], "display": snomed[1]}
            ]
        resource["type"] = specimen_type
    if sample.DateReceived is not None:
        resource["receivedTime"] = fhir_datetime(sample.DateReceived)
    if sample.DateSampled is not None:
        resource["collection"] = {"collectedDateTime": fhir_datetime(sample.DateSampled)}
    return resource


def diagnostic_report(
    sample: SamplePayload,
    code: Mapping[str, Any],
    subject: dict[str, Any],
    results: Sequence[dict[str, Any]],
    source_url: str,
) -> dict[str, Any] | None:
    """The sample's report once verified (preliminary) or published (final); else None."""
    status = t.DIAGNOSTIC_REPORT_STATUS.get(sample.review_state or "")
    if status is None:
        return None
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": resource_id("DiagnosticReport", sample.uid),
        "meta": meta(source_url),
        "identifier": [{"system": t.SAMPLE_ID_SYSTEM, "value": sample.id}],
        "basedOn": [reference("ServiceRequest", sample.uid)],
        "status": status,
        "category": [
            {
                "coding": [
                    {"system": t.REPORT_CATEGORY_SYSTEM, "code": "LAB", "display": "Laboratory"}
                ]
            }
        ],
        "code": dict(code) or {"text": "Laboratory report"},
        "subject": subject,
        "specimen": [reference("Specimen", sample.uid)],
    }
    if sample.DateSampled is not None:
        resource["effectiveDateTime"] = fhir_datetime(sample.DateSampled)
    issued = sample.DatePublished or sample.getDateVerified or sample.modified
    if issued is not None:
        resource["issued"] = fhir_datetime(issued)
    refs = [
        {"reference": f"Observation/{o['id']}"}
        for o in results
        if o["status"] not in ("entered-in-error", "cancelled")
    ]
    if refs:
        resource["result"] = refs
    return resource


def map_sample(
    sample: SamplePayload,
    analyses: Sequence[AnalysisPayload],
    *,
    table: LoincTable,
    source_url: str,
    deviations: Deviations | None = None,
) -> MappedSample:
    """All FHIR resources of one sample, or a Rejected entry when it cannot be linked."""
    out = MappedSample()
    mrn = sample.mrn
    if mrn is None:
        out.rejected.append(
            Rejected(sample_ref(sample), "no MedicalRecordNumber: the patient cannot be linked")
        )
        return out
    subject = mrn_reference(mrn, sample.patient_name)
    code = order_code(sample, analyses, table)
    out.resources.append(service_request(sample, code, subject, source_url))
    out.resources.append(specimen(sample, subject, source_url))
    observations = ObservationMapper(
        sample, subject, table=table, source_url=source_url, deviations=deviations or Deviations()
    )
    for analysis in analyses:
        mapped = observations.map(analysis)
        if isinstance(mapped, Rejected):
            out.rejected.append(mapped)
        elif mapped is not None:
            out.resources.append(mapped)
    results = [r for r in out.resources if r["resourceType"] == "Observation"]
    report = diagnostic_report(sample, code, subject, results, source_url)
    if report is not None:
        out.resources.append(report)
    return out


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "payload"
    return f"{where}: {err.get('msg', 'invalid')}"


def map_raw_sample(
    raw_sample: Mapping[str, Any],
    raw_analyses: Sequence[Mapping[str, Any]],
    *,
    table: LoincTable,
    source_url: str,
    deviations: Deviations | None = None,
) -> MappedSample:
    """`map_sample` on raw JSON items; malformed ones become Rejected entries, not errors."""
    deviations = deviations or Deviations()
    context = {"deviations": deviations}
    try:
        sample = SamplePayload.model_validate(raw_sample, context=context)
    except ValidationError as exc:
        name = raw_sample.get("id") or raw_sample.get("uid") or "?"
        return MappedSample(
            rejected=[Rejected(f"AnalysisRequest/{name}", f"malformed sample: {_first_error(exc)}")]
        )
    analyses: list[AnalysisPayload] = []
    bad: list[Rejected] = []
    for raw in raw_analyses:
        try:
            analyses.append(AnalysisPayload.model_validate(raw, context=context))
        except ValidationError as exc:
            name = raw.get("uid") or raw.get("id") or "?"
            bad.append(
                Rejected(
                    f"Analysis/{name}", f"malformed analysis of {sample.id}: {_first_error(exc)}"
                )
            )
    mapped = map_sample(sample, analyses, table=table, source_url=source_url, deviations=deviations)
    mapped.rejected[:0] = bad
    return mapped


__all__ = [
    "LOINC_SYSTEM",
    "MappedSample",
    "diagnostic_report",
    "fhir_datetime",
    "map_raw_sample",
    "map_sample",
    "order_code",
    "service_request",
    "specimen",
]
