"""Reading the imaging AI's results back from FHIR, for the CDS services (docs/ai-findings.md).

Pure and light (no torch): readers find AI Observations by tag and components by code, never by
position or display, as the contract requires. `viewer_context` is the SMART app's appContext for
opening the viewer at the finding's series.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

AI = "urn:cdss:ai"
PRESENT_CODE = "52101004"
FINDING_TAG = f"{AI}|finding"


@dataclass(frozen=True, slots=True)
class AiFinding:
    observation: str  # "Observation/<id>"
    imaging_study: str | None  # "ImagingStudy/<id>"
    present: bool
    probability: float | None
    model: str | None  # "<name>@<version>"
    series_uid: str | None
    location_mm: tuple[float, float, float] | None
    issued: str | None


def _tagged(resource: Mapping[str, Any], code: str) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or []
    return any(
        isinstance(t, Mapping) and t.get("system") == AI and t.get("code") == code for t in tags
    )


def _components(obs: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for comp in obs.get("component") or []:
        for coding in (comp.get("code") or {}).get("coding") or []:
            if coding.get("system") == AI and isinstance(coding.get("code"), str):
                out[coding["code"]] = comp
    return out


def _number(comp: Mapping[str, Any] | None) -> float | None:
    value = ((comp or {}).get("valueQuantity") or {}).get("value")
    return float(value) if isinstance(value, (int, float)) else None


def read_finding(obs: Mapping[str, Any]) -> AiFinding | None:
    """The AI finding an Observation holds, or None when it is not one (or is withdrawn)."""
    if obs.get("resourceType") != "Observation" or not _tagged(obs, "finding"):
        return None
    if obs.get("status") in ("entered-in-error", "cancelled"):
        return None
    comps = _components(obs)
    value = obs.get("valueCodeableConcept") or {}
    present = any(c.get("code") == PRESENT_CODE for c in value.get("coding") or [])
    xyz = [_number(comps.get(f"location-{axis}")) for axis in "xyz"]
    location = (xyz[0], xyz[1], xyz[2]) if all(v is not None for v in xyz) else None
    study = next(
        (
            d.get("reference")
            for d in obs.get("derivedFrom") or []
            if str(d.get("reference", "")).startswith("ImagingStudy/")
        ),
        None,
    )
    return AiFinding(
        observation=f"Observation/{obs.get('id')}",
        imaging_study=study,
        present=present,
        probability=_number(comps.get("probability")),
        model=(comps.get("model") or {}).get("valueString"),
        series_uid=(comps.get("series-instance-uid") or {}).get("valueString"),
        location_mm=location,  # type: ignore[arg-type]
        issued=obs.get("issued"),
    )


def findings_by_study(observations: Iterable[Mapping[str, Any]]) -> dict[str, AiFinding]:
    """The latest AI finding per ImagingStudy reference."""
    out: dict[str, AiFinding] = {}
    for obs in observations:
        found = read_finding(obs)
        if found is None or found.imaging_study is None:
            continue
        known = out.get(found.imaging_study)
        if known is None or (found.issued or "") > (known.issued or ""):
            out[found.imaging_study] = found
    return out


def finding_line(f: AiFinding) -> str:
    """One plain sentence: finding, probability, location, model and version."""
    verdict = "pulmonary nodule present" if f.present else "no pulmonary nodule"
    parts = [f"AI finding: {verdict}"]
    if f.probability is not None:
        parts.append(f"probability {f.probability:.2f}")
    if f.present and f.location_mm is not None:
        x, y, z = f.location_mm
        parts.append(f"at ({x:.0f}, {y:.0f}, {z:.0f}) mm (LPS)")
    if f.model:
        name, _, version = f.model.partition("@")
        parts.append(f"model {name} version {version}" if version else f"model {name}")
    return ", ".join(parts)


def viewer_context(f: AiFinding) -> dict[str, str]:
    """The SMART app's appContext for this finding (view, study, series)."""
    context = {"view": "imaging"}
    if f.imaging_study:
        context["imagingStudy"] = f.imaging_study
    if f.series_uid:
        context["series"] = f.series_uid
    return context
