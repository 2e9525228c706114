"""SENAITE Analysis -> FHIR R4 Observation (pure).

Coded with LOINC (from the keyword table, chosen by the result's unit) plus the lab's own keyword,
so a result is findable both ways and an unmapped keyword still arrives (with only the local
code, and a deviation counted). Numeric results become `valueQuantity` in UCUM with the detection
limit operand as comparator; text and select results become `valueString`. The reference range
and the N/L/H/LL/HH flag come from the analysis's ResultsRange.
"""

from __future__ import annotations

from typing import Any

from adapters.base import Rejected
from adapters.senaite import terminology as t
from adapters.senaite.loinc import LOINC_SYSTEM, LoincTable
from adapters.senaite.payloads import AnalysisPayload, Deviations, SamplePayload
from adapters.senaite.refs import fhir_datetime, meta, reference, resource_id
from adapters.senaite.results import Range, interpretation, parse_range, parse_result

_ABSENT = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
            "code": "unknown",
            "display": "Unknown",
        }
    ]
}


def analysis_codings(
    analysis: AnalysisPayload, table: LoincTable
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(LOINC coding or None, SENAITE keyword coding) for an analysis with a keyword."""
    keyword = analysis.keyword or ""
    local: dict[str, Any] = {"system": t.KEYWORD_SYSTEM, "code": keyword}
    if analysis.title:
        local["display"] = analysis.title
    unit = t.ucum_unit(analysis.Unit)
    if analysis.Unit and unit is None:
        return None, local
    entry = table.lookup(keyword, unit)
    if entry is None:
        return None, local
    return {"system": LOINC_SYSTEM, "code": entry.loinc, "display": entry.display}, local


def quantity(value: float, unit: str | None) -> dict[str, Any]:
    """A Quantity in UCUM when the unit is recognised, else with the unit as text only."""
    out: dict[str, Any] = {"value": value}
    code = t.ucum_unit(unit)
    if code is not None:
        out |= {"unit": code, "system": t.UCUM_SYSTEM, "code": code}
    elif unit and unit.strip():
        out["unit"] = unit.strip()
    return out


def reference_range(rng: Range, unit: str | None) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {}
    if rng.low is not None:
        entry["low"] = quantity(rng.low, unit)
    if rng.high is not None:
        entry["high"] = quantity(rng.high, unit)
    if rng.comment:
        entry["text"] = rng.comment
    return [entry] if entry else []


class ObservationMapper:
    """Maps the analyses of one sample; the sample supplies subject, dates and references."""

    def __init__(
        self,
        sample: SamplePayload,
        subject: dict[str, Any],
        *,
        table: LoincTable,
        source_url: str,
        deviations: Deviations,
    ) -> None:
        self.sample = sample
        self.subject = subject
        self.table = table
        self.source_url = source_url
        self.deviations = deviations

    def map(self, analysis: AnalysisPayload) -> dict[str, Any] | Rejected | None:
        """The Observation, a Rejected entry, or None for an analysis with nothing to report."""
        name = f"Analysis/{analysis.uid} ({self.sample.id}/{analysis.id or analysis.keyword})"
        state = analysis.review_state
        if state is None:
            return Rejected(name, "no review_state: cannot tell whether the result is reported")
        if not analysis.keyword:
            return Rejected(name, "no Keyword: the result cannot be coded")
        has_result = bool((analysis.Result or "").strip())
        if state not in t.REPORTED_ANALYSIS_STATES and not (
            state in t.WITHDRAWN_ANALYSIS_STATES and has_result
        ):
            return None
        return self._observation(analysis, state)

    def _observation(self, analysis: AnalysisPayload, state: str) -> dict[str, Any]:
        sample = self.sample
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "id": resource_id("Observation", analysis.uid),
            "meta": meta(self.source_url),
            "identifier": [{"system": t.UID_SYSTEM, "value": analysis.uid}],
            "basedOn": [reference("ServiceRequest", sample.uid)],
            "status": self._status(state),
            "category": [
                {
                    "coding": [
                        {
                            "system": t.OBSERVATION_CATEGORY_SYSTEM,
                            "code": "laboratory",
                            "display": "Laboratory",
                        }
                    ]
                }
            ],
            "code": self._code(analysis),
            "subject": self.subject,
            "specimen": reference("Specimen", sample.uid),
        }
        if sample.DateSampled is not None:
            resource["effectiveDateTime"] = fhir_datetime(sample.DateSampled)
        issued = self._issued(analysis, state)
        if issued is not None:
            resource["issued"] = issued
        resource |= self._value(analysis)
        return resource

    def _status(self, state: str) -> str:
        """The vendor map, except that results of an invalidated sample are withdrawn too:
        SENAITE leaves them `published` on the invalid sample, but they must not be used."""
        if self.sample.review_state == "invalid":
            return "entered-in-error"
        return t.OBSERVATION_STATUS.get(state, "registered")

    def _code(self, analysis: AnalysisPayload) -> dict[str, Any]:
        loinc, local = analysis_codings(analysis, self.table)
        if loinc is None:
            known = bool(self.table.rows(analysis.keyword or ""))
            kind = "unit-not-in-loinc-table" if known else "keyword-not-in-loinc-table"
            self.deviations.note(kind, f"{analysis.keyword} [{analysis.Unit}]")
        return {
            "coding": [c for c in (loinc, local) if c],
            "text": analysis.title or analysis.keyword,
        }

    def _issued(self, analysis: AnalysisPayload, state: str) -> str | None:
        sample = self.sample
        when = analysis.ResultCaptureDate
        if state == "published":
            when = sample.DatePublished or when
        elif state == "verified":
            when = sample.getDateVerified or when
        return fhir_datetime(when or analysis.modified)

    def _value(self, analysis: AnalysisPayload) -> dict[str, Any]:
        parsed = parse_result(
            analysis.Result,
            analysis.DetectionLimitOperand,
            string_result=bool(analysis.StringResult),
            options=analysis.ResultOptions,
        )
        if parsed.deviation:
            self.deviations.note("result-format", f"{analysis.uid}: {parsed.deviation}")
        if parsed.text is not None:
            return {"valueString": parsed.text}
        if parsed.value is None:
            self.deviations.note("empty-result", f"{analysis.uid} in {analysis.review_state}")
            return {"dataAbsentReason": _ABSENT}
        if analysis.Unit and t.ucum_unit(analysis.Unit) is None:
            self.deviations.note("non-ucum-unit", repr(analysis.Unit))
        out: dict[str, Any] = {"valueQuantity": quantity(parsed.value, analysis.Unit)}
        if parsed.comparator:
            out["valueQuantity"]["comparator"] = parsed.comparator
        rng = parse_range(analysis.ResultsRange)
        ranges = reference_range(rng, analysis.Unit)
        if ranges:
            out["referenceRange"] = ranges
        flag = interpretation(parsed.value, parsed.comparator, rng)
        if flag is not None:
            out["interpretation"] = [
                {
                    "coding": [
                        {
                            "system": t.INTERPRETATION_SYSTEM,
                            "code": flag,
                            "display": t.INTERPRETATION_DISPLAY[flag],
                        }
                    ]
                }
            ]
        return out
