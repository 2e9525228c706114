"""Contrast safety before CT/MR: kidney function, metformin, and contrast allergy.

Rules and their sources (docs/clinical-reference.md §5):

* Iodinated contrast and eGFR - ACR–NKF consensus (Davenport MS et al., Radiology 2020;294:660-668;
  Kidney Med 2020;2:85-93), adopted in the ACR Manual on Contrast Media chapter "Post-Contrast Acute
  Kidney Injury and Contrast-Induced Nephropathy in Adults": eGFR < 30 mL/min/1.73 m² (or AKI) ->
  IV normal saline prophylaxis unless on maintenance dialysis, and necessary contrast is not to be
  withheld for CI-AKI risk alone; eGFR 30–44 -> prophylaxis "may be considered" in individual
  high-risk circumstances; stable eGFR >= 45 -> no prophylaxis.
* Gadolinium (GBCA) and eGFR - ACR–NKF consensus (Weinreb JC et al., Radiology 2021;298:28-35) and
  the ACR Manual chapter "Nephrogenic Systemic Fibrosis (NSF)": eGFR < 30 (incl. dialysis) -> use a
  group II agent when indicated; group I agents are contraindicated; no threshold at 30–44.
* When renal function is needed - ACR Manual chapter "Patient Selection and Preparation
  Strategies": age > 60 is one of the risk factors that warrant an eGFR before iodinated contrast;
  patients without risk factors need no baseline creatinine.
* Metformin - ACR Manual chapter "Metformin": with iodinated contrast, patients with AKI or
  eGFR < 30 (category II) stop metformin at the time of the study, withhold it for 48 h and
  restart only after renal function is re-evaluated; eGFR >= 30 needs no change; GBCA at usual
  doses needs no change.
* Contrast allergy - see ``contrast_allergy.py`` (re-exported here).

AKI cannot be seen from a single eGFR; every finding reminds the reader of it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from cds_hooks.clinical.contrast_allergy import contrast_allergy
from cds_hooks.clinical.fhir_read import aware, parse_date
from cds_hooks.clinical.findings import Finding, RenalFinding, Severity
from cds_hooks.clinical.guard import never_raises
from cds_hooks.clinical.imaging_catalog import Agent, Orderable, non_contrast_equivalent
from cds_hooks.clinical.kidney_function import EgfrSearch, EgfrValue, age_on, latest_egfr
from cds_hooks.clinical.metformin import active_metformin

__all__ = [
    "KidneyFunction",
    "contrast_allergy",
    "metformin_advice",
    "renal_risk",
    "renal_risk_of",
]
log = logging.getLogger(__name__)

ACR_MANUAL_URL = "https://www.acr.org/Clinical-Resources/Contrast-Manual"
IODINATED = (
    "ACR–NKF consensus on iodinated contrast in kidney disease (Davenport MS et al., Radiology "
    "2020;294:660-668), prophylaxis statements; ACR Manual on Contrast Media, 'Post-Contrast Acute "
    "Kidney Injury and Contrast-Induced Nephropathy in Adults'"
)
IODINATED_URL = "https://pmc.ncbi.nlm.nih.gov/articles/PMC7525144/"
GBCA = (
    "ACR–NKF consensus on gadolinium-based contrast media in kidney disease (Weinreb JC et al., "
    "Radiology 2021;298:28-35); ACR Manual on Contrast Media, 'Nephrogenic Systemic Fibrosis (NSF)'"
)
GBCA_URL = "https://pmc.ncbi.nlm.nih.gov/articles/PMC7873723/"
SCREENING = (
    "ACR Manual on Contrast Media, 'Patient Selection and Preparation Strategies' (risk factors "
    "warranting renal function assessment before iodinated contrast)"
)
METFORMIN = "ACR Manual on Contrast Media (2021), 'Metformin' (category II patients)"
UNIT = "mL/min/1.73 m²"
AKI_NOTE = "A single eGFR cannot show acute kidney injury; in AKI the eGFR < 30 advice applies."
Band = Literal["below-30", "30-44", "45-plus"]


def _band(egfr: float, comparator: str) -> Band | None:
    """ACR band of an eGFR; None when a reported bound (e.g. '<45') straddles a threshold."""
    if comparator in ("", "<", "<=") and (egfr < 30 or (comparator == "<" and egfr <= 30)):
        return "below-30"
    if comparator in (">", ">="):
        return "45-plus" if egfr >= 45 else "30-44" if egfr >= 30 else None
    if comparator:
        return None
    return "30-44" if egfr < 45 else "45-plus"


def _shown(v: EgfrValue) -> str:
    return f"eGFR {v.comparator}{v.egfr:g} {UNIT}"


def _provenance(v: EgfrValue) -> str:
    src = v.source
    taken = src.date[:10] if src.date else "unknown date"
    if v.computed:
        return (
            f"computed by CKD-EPI 2021 from serum creatinine {src.value:g} {src.unit} of {taken} "
            f"(age {v.basis.get('age_years')}, {v.basis.get('sex')}; Inker LA et al., "
            "N Engl J Med 2021;385:1737-49)"
        )
    return f"reported by the laboratory ({v.basis.get('method')}) on {taken}"


def _alternative(orderable: Orderable) -> str:
    alt = non_contrast_equivalent(orderable)
    return f" A non-contrast alternative is {alt.display} ({alt.code})." if alt else ""


def _data(orderable: Orderable, agent: Agent, v: EgfrValue | None, **extra: Any) -> dict[str, Any]:
    alt = non_contrast_equivalent(orderable)
    data: dict[str, Any] = {
        "orderable": orderable.code,
        "contrast_agent": agent,
        "non_contrast_code": alt.code if alt else None,
        "non_contrast_display": alt.display if alt else None,
    }
    if v is not None:
        data |= {
            "egfr": v.egfr,
            "comparator": v.comparator,
            "computed": v.computed,
            "source": asdict(v.source),
            "basis": dict(v.basis),
        }
    return data | extra


def _renal(
    v: EgfrValue,
    kind: str,
    severity: Severity,
    summary: str,
    body: str,
    cited: tuple[str, str],
    data: dict[str, Any],
) -> RenalFinding:
    return RenalFinding(
        kind=kind,
        severity=severity,
        summary=summary,
        detail=f"**{_shown(v)}**, {_provenance(v)}.\n\n{body} {AKI_NOTE}\n\nSource: {cited[0]}.",
        citation=cited[0],
        source_url=cited[1],
        data=data,
        egfr=v.egfr,
        computed=v.computed,
        source=v.source,
    )


def _egfr_finding(orderable: Orderable, agent: Agent, v: EgfrValue, band: Band) -> RenalFinding:
    data, alt = _data(orderable, agent, v, band=band), _alternative(orderable)
    if band == "below-30" and agent == "iodinated":
        return _renal(
            v,
            "egfr-below-30",
            "warning",
            f"{_shown(v)} (<30) before iodinated contrast: IV saline prophylaxis advised",
            "ACR–NKF: below 30 (or AKI), IV normal saline prophylaxis is indicated unless the "
            "patient is on maintenance dialysis; do not withhold a necessary contrast study for "
            f"CI-AKI risk alone.{alt}",
            (IODINATED, IODINATED_URL),
            data,
        )
    if band == "below-30":
        return _renal(
            v,
            "egfr-below-30",
            "warning",
            f"{_shown(v)} (<30) before gadolinium: group II agent only, group I contraindicated",
            "ACR–NKF: with eGFR below 30 (incl. dialysis) give a group II GBCA when indicated; "
            "group I agents are contraindicated; starting or changing dialysis for the GBCA is "
            f"likely unnecessary.{alt}",
            (GBCA, GBCA_URL),
            data,
        )
    if band == "30-44" and agent == "iodinated":
        return _renal(
            v,
            "egfr-30-44",
            "info",
            f"{_shown(v)} (30–44) before iodinated contrast: prophylaxis may be considered",
            "ACR–NKF: at eGFR 30–44, IV saline prophylaxis may be considered in individual "
            "high-risk circumstances, at the ordering clinician's discretion.",
            (IODINATED, IODINATED_URL),
            data,
        )
    cited = (IODINATED, IODINATED_URL) if agent == "iodinated" else (GBCA, GBCA_URL)
    return _renal(
        v,
        "ok",
        "info",
        f"{_shown(v)}: no kidney-related contrast precaution by ACR–NKF thresholds",
        "No ACR–NKF kidney precaution applies at this eGFR.",
        cited,
        data,
    )


def _missing(
    orderable: Orderable, agent: Agent, patient: Mapping[str, Any], now: datetime, window: int
) -> RenalFinding:
    birth = parse_date(patient.get("birthDate"))
    age = age_on(birth, now.date()) if birth else None
    over_60 = agent == "iodinated" and age is not None and age > 60
    detail = (
        f"No serum creatinine or eGFR in the last {window} days. The ACR lists age > 60, renal "
        "disease (dialysis, transplant, single kidney, renal cancer or surgery), hypertension on "
        "treatment, diabetes and metformin as reasons to check kidney function before iodinated "
        f"contrast; patients without them need no baseline creatinine.\n\nSource: {SCREENING}."
    )
    if agent == "gadolinium":
        detail += f" For GBCA the eGFR < 30 precautions apply ({GBCA})."
    return RenalFinding(
        kind="no-recent-creatinine",
        severity="warning" if over_60 else "info",
        summary=f"No creatinine/eGFR in the last {window} days before {agent} contrast",
        detail=detail,
        citation=SCREENING,
        source_url=ACR_MANUAL_URL,
        data=_data(orderable, agent, None, window_days=window, age_years=age),
    )


def _cannot_assess(orderable: Orderable, agent: Agent, search: EgfrSearch) -> RenalFinding:
    reasons = "; ".join(search.problems) or "the reported value straddles an ACR threshold"
    citation, url = (IODINATED, IODINATED_URL) if agent == "iodinated" else (GBCA, GBCA_URL)
    v = search.value
    return RenalFinding(
        kind="cannot-assess",
        severity="info",
        summary=f"Kidney function before {agent} contrast not assessable from recent results",
        detail=f"Recent results could not be used: {reasons}.\n\nSource: {citation}.",
        citation=citation,
        source_url=url,
        data=_data(orderable, agent, v, problems=list(search.problems)),
        egfr=v.egfr if v else None,
        computed=v.computed if v else None,
        source=v.source if v else None,
    )


class KidneyFunction:
    """The patient's kidney function as of ``now``: the eGFR search over the look-back window,
    done on first use and then shared by every draft order of the call (it depends on the
    patient, the results and the window, never on the order)."""

    def __init__(
        self,
        *,
        patient: Mapping[str, Any] | None,
        observations: Iterable[object],
        now: datetime,
        window_days: int = 90,
    ) -> None:
        self.patient: Mapping[str, Any] = patient if isinstance(patient, Mapping) else {}
        self.observations = list(observations)  # may be read again (see `search`)
        self.now = aware(now)
        self.window_days = window_days
        self._search: EgfrSearch | None = None

    @property
    def search(self) -> EgfrSearch:
        if self._search is None:  # a failure is not remembered: each order retries and logs
            self._search = latest_egfr(
                patient=self.patient,
                observations=self.observations,
                now=self.now,
                window_days=self.window_days,
            )
        return self._search


@never_raises(lambda: None)
def renal_risk(
    *,
    orderable: Orderable | None,
    patient: Mapping[str, Any] | None,
    observations: Iterable[object],
    now: datetime,
    creatinine_window_days: int = 90,
) -> RenalFinding | None:
    """Kidney-function finding for a contrast study; None when no contrast is given."""
    agent = orderable.contrast_agent if orderable else None
    if orderable is None or agent is None:
        return None
    kidney = KidneyFunction(
        patient=patient, observations=observations, now=now, window_days=creatinine_window_days
    )
    return _risk(orderable, agent, kidney)


@never_raises(lambda: None, name="renal_risk")
def renal_risk_of(*, orderable: Orderable | None, kidney: KidneyFunction) -> RenalFinding | None:
    """`renal_risk` on a KidneyFunction shared by the orders of a call (searched once)."""
    agent = orderable.contrast_agent if orderable else None
    if orderable is None or agent is None:
        return None
    return _risk(orderable, agent, kidney)


def _risk(orderable: Orderable, agent: Agent, kidney: KidneyFunction) -> RenalFinding:
    search = kidney.search
    if search.value is None:
        if search.in_window == 0:
            return _missing(orderable, agent, kidney.patient, kidney.now, kidney.window_days)
        return _cannot_assess(orderable, agent, search)
    band = _band(search.value.egfr, search.value.comparator)
    if band is None:
        return _cannot_assess(orderable, agent, search)
    return _egfr_finding(orderable, agent, search.value, band)


@never_raises(lambda: None)
def metformin_advice(
    *,
    orderable: Orderable | None,
    medication_requests: Iterable[object],
    egfr: float | RenalFinding | None,
) -> Finding | None:
    """Hold-metformin advice: active metformin, eGFR < 30 and iodinated contrast (ACR cat. II)."""
    value = egfr.egfr if isinstance(egfr, RenalFinding) else egfr
    if orderable is None or orderable.contrast_agent != "iodinated" or value is None:
        return None
    # A RenalFinding knows whether a bound such as "<30" is below the threshold.
    below = egfr.kind == "egfr-below-30" if isinstance(egfr, RenalFinding) else value < 30
    if not below:
        return None
    requests = active_metformin(medication_requests)
    if not requests:
        return None
    names = ", ".join(sorted({name for _, name in requests}))
    comparator = egfr.data.get("comparator", "") if isinstance(egfr, RenalFinding) else ""
    shown = f"{comparator}{value:g}"
    return Finding(
        kind="hold-metformin",
        severity="warning",
        summary="Hold metformin: eGFR < 30 and iodinated contrast (ACR: stop, withhold 48 h)",
        detail=(
            f"Active metformin ({names}) and **eGFR {shown} {UNIT}** before {orderable.display}."
            "\n\nACR category II (AKI or eGFR < 30): stop metformin at the time of or before the "
            "study, withhold it for 48 hours afterwards, and restart only after renal function has "
            f"been re-evaluated and found normal or stable.\n\nSource: {METFORMIN}."
        ),
        citation=METFORMIN,
        source_url=ACR_MANUAL_URL,
        data={
            "egfr": value,
            "medication_requests": [ref for ref, _ in requests],
            "withhold_hours": 48,
            "orderable": orderable.code,
        },
    )
