"""Which eGFR to use before contrast: the newest reported eGFR or one computed from creatinine.

Why: the ACR contrast rules are stated in eGFR (docs/clinical-reference.md §5), but a laboratory
may send only a serum creatinine. This module picks the most recent usable kidney-function result
inside the look-back window and, for a creatinine, computes eGFR with the CKD-EPI 2021 equation
(``renal.py``; Inker LA et al., N Engl J Med 2021;385:1737-49) using the patient's age at the
time of the sample and sex from Patient.gender.

Codes (clinical-reference §3, V): reported eGFR LOINC 98979-8 (CKD-EPI 2021), 62238-1 (CKD-EPI
2009, §7) and 33914-3 (MDRD, older); serum creatinine 2160-0 (mass) and 14682-9 (moles).

Choice: newest first; a reported eGFR and a creatinine taken at the same instant (one sample)
prefer the reported value. A computed eGFR is rounded to 0.1 mL/min/1.73 m², the precision it is
displayed with, so that the card and the threshold agree (29.96 is shown and classed as 30.0).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from cds_hooks.clinical import renal
from cds_hooks.clinical.fhir_read import (
    LOINC,
    as_mapping,
    codings,
    effective_time,
    iso,
    parse_date,
    quantity,
    reference,
    text,
)
from cds_hooks.clinical.findings import ObservationRef

log = logging.getLogger(__name__)

REPORTED_EGFR = {"98979-8": "CKD-EPI 2021", "62238-1": "CKD-EPI 2009", "33914-3": "MDRD"}
CREATININE = ("2160-0", "14682-9")
USABLE_STATUS = ("final", "amended", "corrected")
CLOCK_SKEW = timedelta(days=1)
_CREATININE_UNITS = {
    "mg/dl": "mg/dL",
    "umol/l": "umol/L",
    "micromol/l": "umol/L",
    "mmol/l": "mmol/L",
}


@dataclass(frozen=True)
class EgfrValue:
    """A usable eGFR with its provenance."""

    egfr: float
    comparator: str
    computed: bool
    source: ObservationRef
    taken: datetime
    basis: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EgfrSearch:
    """The eGFR chosen (if any), and why in-window results could not be used."""

    value: EgfrValue | None
    in_window: int
    problems: tuple[str, ...]


@dataclass(frozen=True)
class _Candidate:
    obs: Mapping[str, Any]
    code: str
    taken: datetime

    @property
    def reported(self) -> bool:
        return self.code in REPORTED_EGFR


_WANTED = frozenset((*REPORTED_EGFR, *CREATININE))


def _loinc(obs: Mapping[str, Any]) -> str | None:
    for system, code, _ in codings(obs.get("code")):
        if system == LOINC and code in _WANTED:
            return code
    return None


def _candidates(
    observations: Iterable[object], now: datetime, window_days: int
) -> list[_Candidate]:
    since, until = now - timedelta(days=window_days), now + CLOCK_SKEW
    found = []
    for item in observations:
        obs = as_mapping(item)
        code = _loinc(obs)
        if code is None:
            continue
        if obs.get("status") not in USABLE_STATUS:
            log.debug("skipping Observation/%s: status %r", obs.get("id"), obs.get("status"))
            continue
        taken = effective_time(obs)
        if taken is None:
            log.warning("skipping Observation/%s (%s): no readable date", obs.get("id"), code)
            continue
        if since <= taken <= until:
            found.append(_Candidate(obs, code, taken))
    # Newest first; at the same instant the reported eGFR before the creatinine.
    found.sort(key=lambda c: (c.taken, c.reported), reverse=True)
    return found


def age_on(birth: date, day: date) -> int:
    """Completed years of age on ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _ref(c: _Candidate, value: float, unit: str) -> ObservationRef:
    return ObservationRef(
        reference=reference({**c.obs, "resourceType": "Observation"}),
        code=c.code,
        value=value,
        unit=unit,
        date=iso(c.taken),
    )


def _reported(c: _Candidate) -> EgfrValue | str:
    qty = quantity(c.obs)
    if qty is None or qty[0] <= 0:
        return f"Observation/{c.obs.get('id')}: eGFR without a positive numeric value"
    value, unit, comparator = qty
    if "ml/min" not in unit.lower():
        return f"Observation/{c.obs.get('id')}: eGFR in unsupported unit {unit!r}"
    basis = {"method": REPORTED_EGFR[c.code]}
    return EgfrValue(value, comparator, False, _ref(c, value, unit), c.taken, basis)


def _computed(c: _Candidate, patient: Mapping[str, Any]) -> EgfrValue | str:
    oid = f"Observation/{c.obs.get('id')}"
    qty = quantity(c.obs)
    if qty is None or qty[0] <= 0 or qty[2]:
        return f"{oid}: creatinine without an exact positive value"
    value, unit, _ = qty
    ucum = _CREATININE_UNITS.get(unit.replace("µ", "u").replace("μ", "u").replace(" ", "").lower())
    birth = parse_date(patient.get("birthDate"))
    sex = text(patient.get("gender"))
    if ucum is None:
        return f"{oid}: creatinine in unsupported unit {unit!r}"
    if birth is None or sex not in ("female", "male"):
        return f"{oid}: Patient.birthDate and gender (male/female) are needed for CKD-EPI 2021"
    age = age_on(birth, c.taken.date())
    scr = renal.creatinine_to_mg_dl(value, ucum)
    try:
        egfr = round(renal.egfr_ckd_epi_2021(scr, age, "female" if sex == "female" else "male"), 1)
    except ValueError as exc:
        return f"{oid}: CKD-EPI 2021 not applicable ({exc})"
    basis = {
        "method": "CKD-EPI 2021 (computed)",
        "creatinine_mg_dl": round(scr, 3),
        "age_years": age,
        "sex": sex,
        "equation": renal.CITATION,
    }
    return EgfrValue(egfr, "", True, _ref(c, value, unit), c.taken, basis)


def latest_egfr(
    *,
    patient: Mapping[str, Any] | None,
    observations: Iterable[object],
    now: datetime,
    window_days: int,
) -> EgfrSearch:
    """The newest usable eGFR within ``window_days`` before ``now`` (see the module docstring)."""
    candidates = _candidates(observations, now, window_days)
    problems: list[str] = []
    for c in candidates:
        result = _reported(c) if c.reported else _computed(c, as_mapping(patient))
        if isinstance(result, EgfrValue):
            return EgfrSearch(result, len(candidates), tuple(problems))
        log.warning("cannot use %s", result)
        problems.append(result)
    return EgfrSearch(None, len(candidates), tuple(problems))
