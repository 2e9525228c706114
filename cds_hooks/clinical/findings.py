"""Findings: what the clinical rules conclude, before anyone turns them into CDS Hooks cards.

Why a separate type: the rules stay pure (no HTTP, no card objects) and the service glue owns the
card format. Every finding carries the guideline (or equation) it applies in ``citation`` and a
``source_url``, because the project's standard is that clinical logic is cited, in code and in
what it returns (ARCHITECTURE.md §3.6: "a source with the guideline or model it comes from").

``summary`` is plain text of at most 139 characters: the CDS Hooks card summary must be under 140
characters (cds-hooks-and-smart.md, Card attributes; Inferno's CRD kit fails ``len >= 140``). It
is clipped here so that no input text can break that rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["info", "warning", "critical"]
SUMMARY_MAX = 139
_SEVERITIES = ("info", "warning", "critical")


def clip(summary: str, limit: int = SUMMARY_MAX) -> str:
    """One line of at most ``limit`` characters, ending in an ellipsis when shortened."""
    line = " ".join(summary.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """A cited conclusion of one rule about one draft order."""

    kind: str
    severity: Severity
    summary: str
    detail: str
    citation: str
    source_url: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in _SEVERITIES:
            raise ValueError(f"severity must be one of {_SEVERITIES}, not {self.severity!r}")
        object.__setattr__(self, "summary", clip(self.summary))


@dataclass(frozen=True, kw_only=True)
class ObservationRef:
    """The result a finding rests on: which Observation, its value and when it was taken."""

    reference: str | None
    code: str
    value: float | None
    unit: str
    date: str | None


@dataclass(frozen=True, kw_only=True)
class RenalFinding(Finding):
    """Kidney function before contrast: the eGFR used, where it came from, and the verdict.

    ``computed`` is True when the eGFR was calculated here by CKD-EPI 2021 from a serum creatinine
    (then ``source`` is that creatinine), False when a laboratory-reported eGFR was used, and
    None when no usable value was found.
    """

    egfr: float | None = None
    computed: bool | None = None
    source: ObservationRef | None = None


@dataclass(frozen=True, kw_only=True)
class DuplicateFinding(Finding):
    """A prior study or order of the same modality and body region inside the window.

    ``study_uid`` and ``series_uid`` (DICOM Study/Series Instance UIDs, no ``urn:oid:`` prefix)
    let the glue build a viewer link; they are None for a prior ServiceRequest.
    """

    prior_reference: str | None = None
    prior_date: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    accession: str | None = None


@dataclass(frozen=True, kw_only=True)
class RetestFinding(Finding):
    """A lab test ordered again inside its minimum retest interval.

    Either ``last_result`` (the result inside the interval) or ``pending_order`` (an active order
    for the same test) is set.
    """

    loinc: str = ""
    interval: str = ""
    last_result: ObservationRef | None = None
    pending_order: str | None = None
    pending_date: str | None = None
