"""Imaging pages: the patient's studies with their AI flag, and the viewer with the finding.

AI results are found as docs/ai-findings.md says: DiagnosticReports tagged `urn:cdss:ai|report`
pointing at the ImagingStudy, their `result` Observations tagged `urn:cdss:ai|finding`, whose
components are looked up by code, never by position.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from smart_app import pages
from smart_app.fhir import FhirAccess
from smart_app.oauth import LaunchError
from smart_app.sessions import Session
from smart_app.state import SmartState

AI_SYSTEM = "urn:cdss:ai"
DICOM_UID = "urn:dicom:uid"
NON_IMAGE = frozenset({"SR", "SEG", "KO", "PR", "RTSTRUCT"})  # DICOM modalities without pixels


def tagged(resource: Mapping[str, Any], code: str) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or []
    return any(t.get("system") == AI_SYSTEM and t.get("code") == code for t in tags)


def study_uid(study: Mapping[str, Any]) -> str | None:
    for ident in study.get("identifier", []):
        if ident.get("system") == DICOM_UID and ident.get("value"):
            return str(ident["value"]).removeprefix("urn:oid:")
    return None


def component(obs: Mapping[str, Any], code: str) -> Any:
    for comp in obs.get("component", []):
        codings = (comp.get("code") or {}).get("coding", [])
        if any(c.get("system") == AI_SYSTEM and c.get("code") == code for c in codings):
            for key in ("valueQuantity", "valueString", "valueInteger"):
                if key in comp:
                    value = comp[key]
                    return value.get("value") if isinstance(value, dict) else value
    return None


def finding_view(obs: Mapping[str, Any]) -> dict[str, Any]:
    """What the viewer draws: label, probability, model, and where (series, slice, pixel)."""
    code = obs.get("code") or {}
    label = code.get("text") or next(
        (c.get("display") for c in code.get("coding", []) if c.get("display")), "finding"
    )
    value = obs.get("valueCodeableConcept") or {}
    present = any(c.get("code") == "52101004" for c in value.get("coding", []))
    return {
        "label": label,
        "present": "true" if present else "false",
        "probability": component(obs, "probability"),
        "model": component(obs, "model"),
        "series": component(obs, "series-instance-uid"),
        "sop": component(obs, "sop-instance-uid"),
        "row": component(obs, "pixel-row"),
        "col": component(obs, "pixel-column"),
    }


def _refs(items: Any) -> list[str]:
    return [str(i.get("reference", "")) for i in items or [] if isinstance(i, dict)]


def build_router(state: SmartState) -> APIRouter:
    router = APIRouter()

    def require(request: Request) -> Session:
        session = state.session(request)
        if session is None or not session.authorized:
            raise LaunchError("No SMART session: launch the app from the EHR", 401)
        return session

    async def banner(fhir: FhirAccess) -> str:
        return pages.patient_banner(await fhir.read("Patient", fhir.session.patient or ""))

    @router.get("/imaging")
    async def imaging(request: Request) -> Response:
        fhir = FhirAccess(state, request, require(request))
        studies = await fhir.search("ImagingStudy", [("_sort", "-started")])
        reports = await fhir.search("DiagnosticReport")
        with_ai = {
            ref.removeprefix("ImagingStudy/")
            for r in reports
            if tagged(r, "report") and r.get("status") == "final"
            for ref in _refs(r.get("imagingStudy"))
        }
        return pages.imaging_list(studies, with_ai, await banner(fhir))

    @router.get("/imaging/{study_id}")
    async def viewer(study_id: str, request: Request) -> Response:
        fhir = FhirAccess(state, request, require(request))
        study = await fhir.read("ImagingStudy", study_id)
        uid = study_uid(study)
        if uid is None:
            raise LaunchError("This ImagingStudy has no DICOM Study Instance UID", 422)
        reports = [
            r
            for r in await fhir.search("DiagnosticReport")
            if tagged(r, "report")
            and r.get("status") == "final"
            and f"ImagingStudy/{study_id}" in _refs(r.get("imagingStudy"))
        ]
        reports.sort(key=lambda r: str(r.get("issued", "")), reverse=True)
        finding = None
        report_text = reports[0].get("conclusion") if reports else None
        for ref in _refs(reports[0].get("result")) if reports else []:
            kind, _, oid = ref.partition("/")
            if kind == "Observation":
                obs = await fhir.read("Observation", oid)
                if tagged(obs, "finding"):
                    finding = finding_view(obs)
                    break
        series = request.query_params.get("series") or (finding or {}).get("series")
        if not series:  # the first image series (the AI pipeline adds an SR series, 9901)
            series = next(
                (
                    str(s.get("uid"))
                    for s in study.get("series", [])
                    if s.get("uid") and (s.get("modality") or {}).get("code") not in NON_IMAGE
                ),
                "",
            )
        return pages.viewer(
            study=study,
            study_uid=uid,
            series_uid=str(series),
            finding=finding,
            report=report_text,
            banner=await banner(fhir),
        )

    return router
