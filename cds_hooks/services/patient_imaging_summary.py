"""patient-imaging-summary: on patient-view, the patient's recent imaging and its findings.

One info card listing the studies of the configured look-back window (newest first), each with the
DiagnosticReports and Observations that point at it (DiagnosticReport.imagingStudy,
Observation.derivedFrom / partOf): that is where the imaging AI pipeline writes its results
(ARCHITECTURE §3.7), so they appear here as soon as they exist, with no change to this service.
A `smart` link opens the SMART app's imaging view. The imaging AI's finding (docs/ai-findings.md)
is shown as one line (probability, location, model version) and, for the newest study that has
one, a second `smart` link opens the viewer at that finding's series. No studies in the window:
no card.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import orjson

from cds_hooks.cards import Card, Link, Source, card, md_escape, smart_link
from cds_hooks.clinical.fhir_read import as_list, as_mapping, codings, concept_text, parse_datetime
from cds_hooks.registry import HookData, ServiceEntry
from cds_hooks.request import HookRequest
from cds_hooks.services.suggestions import open_app_link
from models.imaging.findings import (
    AiFinding,
    finding_line,
    findings_by_study,
    read_finding,
    viewer_context,
)

ID = "patient-imaging-summary"
IMAGING = "http://terminology.hl7.org/CodeSystem/observation-category|imaging"
PREFETCH = {
    "studies": "ImagingStudy?patient={{context.patientId}}&_sort=-started",
    "reports": "DiagnosticReport?patient={{context.patientId}}",
    "findings": f"Observation?patient={{{{context.patientId}}}}&category={IMAGING}",
}
ENTRIES = (
    ServiceEntry(
        id=ID,
        hook="patient-view",
        title="Recent imaging and findings",
        description=(
            "Summarises the patient's recent CT/MR studies with the reports and (AI) findings "
            "linked to them, and opens the imaging viewer."
        ),
        prefetch=PREFETCH,
        required=frozenset({"studies"}),
    ),
)
SOURCE = Source(
    "Imaging record (FHIR ImagingStudy, DiagnosticReport)",
    "https://hl7.org/fhir/R4/imagingstudy.html",
)
MAX_LISTED = 10


def evaluate(request: HookRequest, data: HookData) -> Sequence[Card]:  # noqa: ARG001
    since = data.now - timedelta(days=data.options.clinical.imaging_summary_days)
    studies = []
    for study in data.resources("studies", "ImagingStudy"):
        when = parse_datetime(study.get("started"))
        if when is not None and when >= since and study.get("status") != "entered-in-error":
            studies.append((when, study))
    if not studies:
        return []
    studies.sort(key=lambda s: s[0], reverse=True)
    linked = _linked(data.resources("reports", "DiagnosticReport"), "imagingStudy")
    for name in ("derivedFrom", "partOf"):
        for ref, items in _linked(data.resources("findings", "Observation"), name).items():
            linked.setdefault(ref, []).extend(items)
    ai = findings_by_study(data.resources("findings", "Observation"))
    lines = [
        _line(when, study, linked.get(f"ImagingStudy/{study.get('id')}", []))
        for when, study in studies[:MAX_LISTED]
    ]
    refs = [f"ImagingStudy/{s.get('id')}" for _, s in studies]
    newest_ai = next((ai[ref] for ref in refs if ref in ai), None)
    n_findings = sum(len(linked.get(f"ImagingStudy/{s.get('id')}", [])) for _, s in studies)
    latest = _title(studies[0][1])
    summary = (
        f"{len(studies)} imaging {'study' if len(studies) == 1 else 'studies'} in "
        f"{data.options.clinical.imaging_summary_days} days; latest {latest} "
        f"({studies[0][0].date().isoformat()})"
        + (f"; {n_findings} linked finding{'s' if n_findings != 1 else ''}" if n_findings else "")
    )
    return [
        card(
            summary=summary,
            indicator="info",
            source=SOURCE,
            kind="imaging-summary",
            detail="\n".join(lines),
            links=[
                open_app_link(
                    data.options.smart_app_url,
                    data.patient_id,
                    "Open the imaging viewer",
                    "imaging",
                ),
                *_ai_links(data.options.smart_app_url, newest_ai),
            ],
        )
    ]


def _linked(
    resources: Iterable[Mapping[str, Any]], element: str
) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for res in resources:
        if res.get("status") in ("entered-in-error", "cancelled"):
            continue
        for ref in as_list(res.get(element)):
            target = as_mapping(ref).get("reference")
            if isinstance(target, str) and "ImagingStudy/" in target:
                key = "ImagingStudy/" + target.rsplit("ImagingStudy/", 1)[1]
                out.setdefault(key, []).append(res)
    return out


def _title(study: Mapping[str, Any]) -> str:
    if isinstance(study.get("description"), str) and study["description"].strip():
        return " ".join(study["description"].split())
    modalities = sorted({c for _, c, _ in codings({"coding": study.get("modality")})})
    return " ".join(modalities) + " study" if modalities else "imaging study"


def _line(when: Any, study: Mapping[str, Any], findings: list[Mapping[str, Any]]) -> str:
    line = f"- **{when.date().isoformat()}** {md_escape(_title(study))}"
    for res in findings:
        if read_finding(res) is None and _ai_tagged(res):
            continue  # the AI's report: its finding's own line below says it all
        line += f"\n  - {md_escape(_finding_text(res))}"
    return line


def _ai_tagged(res: Mapping[str, Any]) -> bool:
    tags = as_list(as_mapping(res.get("meta")).get("tag"))
    return any(as_mapping(t).get("system") == "urn:cdss:ai" for t in tags)


def _ai_links(smart_url: str, finding: AiFinding | None) -> list[Link]:
    """A `smart` link that opens the viewer at the newest AI finding's series."""
    if finding is None:
        return []
    context = orjson.dumps(viewer_context(finding)).decode()
    return [smart_link("View the AI finding in the imaging viewer", smart_url, context)]


def _name(concept: Any) -> str:
    concept = as_mapping(concept)
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        return str(concept["text"])
    return next((d for _, _, d in codings(concept) if d), "") or concept_text(concept)


def _finding_text(res: Mapping[str, Any]) -> str:
    ai = read_finding(res)
    if ai is not None:  # the imaging AI's result (docs/ai-findings.md)
        return finding_line(ai)
    name = _name(res.get("code")) or res.get("resourceType", "finding")
    if res.get("resourceType") == "DiagnosticReport":
        conclusion = res.get("conclusion")
        return f"Report: {name}" + (f": {conclusion}" if isinstance(conclusion, str) else "")
    qty = as_mapping(res.get("valueQuantity"))
    if "value" in qty:
        return f"{name}: {qty['value']} {qty.get('unit') or qty.get('code') or ''}".strip()
    value = res.get("valueString") or _name(res.get("valueCodeableConcept"))
    return f"{name}: {value}" if value else str(name)
