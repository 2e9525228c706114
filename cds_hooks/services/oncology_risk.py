"""oncology-risk: the AI lung-cancer risk score on patient-view and on chest-imaging order-select.

The promoted `oncology-risk` model (models/tabular) is loaded once at app start. On each call the
prefetched record goes through the same feature code the model was trained with
(`cdw.features_fhir`: the ETL's mapper into the pseudonymised CDW frame, then `assemble`), and
the card shows the calibrated 12-month risk, its band, the three features that moved it most
(TreeSHAP via LightGBM `pred_contrib`) with the patient's values, the model version and a link
to its model card. A record with too little data gets an info card saying so and no score; a
model that could not be loaded gets one info card naming the reason (never an error).

Bands (configurable, CDSS_RISK_BAND_INTERMEDIATE / CDSS_RISK_BAND_HIGH): the defaults, 1.5 %
and 5 % over 12 months, follow the thresholds used with PLCOm2012-type six-year risks
(≥ 1.51 % for screening eligibility, Tammemägi et al., NEJM 2013) scaled to the horizon:
they are a starting point for local governance, not a clinical rule.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cds_hooks.cards import Card, Source, absolute_link, card, md_escape
from cds_hooks.clinical.imaging_catalog import orderable_for
from cds_hooks.registry import HookData, Registry, ServiceEntry
from cds_hooks.request import HookRequest
from cds_hooks.services.common import draft_orders, service_requests
from cdw.features_fhir import features_from_fhir
from cdw.pseudonym import Pseudonymizer
from models.api import LoadedModels
from models.tabular import MODEL_NAME
from models.tabular.predictor import RiskModel, Score, missing_data

log = logging.getLogger(__name__)

ID = "oncology-risk"
KIND = "ai-lung-cancer-risk"
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "labs": "Observation?patient={{context.patientId}}&category=laboratory",
    "smoking": "Observation?patient={{context.patientId}}&code=http://loinc.org|72166-2",
    "conditions": "Condition?patient={{context.patientId}}",
    "studies": "ImagingStudy?patient={{context.patientId}}",
    # The imaging AI's findings (docs/ai-findings.md): feature set v3 reads their probability.
    "aiFindings": "Observation?patient={{context.patientId}}&_tag=urn:cdss:ai|finding",
}
_DESCRIPTION = (
    "AI (LightGBM) estimate of the 12-month risk of a lung cancer diagnosis from the recorded "
    "age, sex, smoking status, laboratory results and trends, imaging history, the imaging AI's "
    "nodule findings and conditions, "
    "with its main drivers and a link to the model card."
)
ENTRIES = (
    ServiceEntry(
        id=ID, hook="patient-view", title="Lung cancer risk (AI)", description=_DESCRIPTION,
        prefetch=PREFETCH, required=frozenset({"patient"}),
    ),
    ServiceEntry(
        id=ID, hook="order-select", title="Lung cancer risk (AI) for chest imaging orders",
        description=_DESCRIPTION + " Shown when a chest CT/MR order is selected.",
        prefetch=PREFETCH, required=frozenset({"patient"}),
    ),
)  # fmt: skip
Band = Literal["low", "intermediate", "high"]


class RiskSettings(BaseSettings):
    """Risk bands of the card (12-month probabilities)."""

    model_config = SettingsConfigDict(env_prefix="CDSS_RISK_", env_file=".env", extra="ignore")

    band_intermediate: float = Field(0.015, gt=0, lt=1, description="From here: intermediate")
    band_high: float = Field(0.05, gt=0, lt=1, description="From here: high")


@dataclass
class OncologyRisk:
    """The service with its preloaded model (None with `problem` when it could not load)."""

    model: RiskModel | None
    problem: str | None = None
    pz: Pseudonymizer | None = None
    base_url: str | None = None
    bands: RiskSettings | None = None

    def __post_init__(self) -> None:
        if self.pz is None:
            # The CDW frame needs the hub's key only for pseudonyms that match the CDW's; the
            # features themselves are frame-invariant (shifts preserve intervals), so without
            # a configured key a per-process one gives the same scores.
            self.pz = Pseudonymizer(secrets.token_bytes(32))
        if self.bands is None:
            self.bands = RiskSettings()

    def band(self, risk: float) -> Band:
        assert self.bands is not None
        if risk >= self.bands.band_high:
            return "high"
        return "intermediate" if risk >= self.bands.band_intermediate else "low"

    def card_url(self, data: HookData) -> str | None:
        base = self.base_url
        if base is None and data.options.smart_app_url.endswith("/smart/launch"):
            base = data.options.smart_app_url.removesuffix("/smart/launch")
        if base is None or self.model is None:
            return None
        return f"{base.rstrip('/')}/models/{self.model.name}/{self.model.number}"

    def evaluate(self, request: HookRequest, data: HookData) -> Sequence[Card]:
        if request.hook == "order-select" and not _chest_imaging_selected(request):
            return []
        if self.model is None:
            return [_unavailable(self.problem or "the model is not loaded")]
        resources = _unique(
            r
            for key in PREFETCH
            for r in data.resources(key)
            if key != "patient" or r.get("resourceType") == "Patient"
        )
        if not any(r.get("resourceType") == "Patient" for r in resources):
            return [_too_little(["the Patient resource"], self._source(data))]
        assert self.pz is not None
        row = features_from_fhir(resources, data.now.date(), self.pz)
        missing = missing_data(row)
        if missing:
            return [_too_little(missing, self._source(data))]
        return [self._risk_card(self.model.score(row), data)]

    def _source(self, data: HookData) -> Source:
        label = (
            f"AI model {self.model.name} v{self.model.number} (LightGBM, model card)"
            if self.model is not None
            else f"AI model {MODEL_NAME}"
        )
        return Source(label, self.card_url(data))

    def _risk_card(self, score: Score, data: HookData) -> Card:
        assert self.bands is not None and self.model is not None
        band = self.band(score.risk)
        pct = f"{100 * score.risk:.1f} %"
        drivers = "\n".join(
            f"- {md_escape(d.label)}: **{md_escape(d.shown)}** ({d.direction} the risk)"
            for d in score.drivers
        )
        url = self.card_url(data)
        detail = (
            f"Estimated probability of a lung cancer diagnosis within 12 months: **{pct}** "
            f"(band **{band}**; intermediate from {100 * self.bands.band_intermediate:g} %, "
            f"high from {100 * self.bands.band_high:g} %).\n\n"
            f"Main drivers of this estimate:\n{drivers}\n\n"
            f"AI-generated by model {self.model.name} version {self.model.number}, calibrated "
            "on a held-out split; trained on a synthetic cohort — read the model card for its "
            "data, performance and limits. It supports, and does not replace, clinical judgement."
        )
        return card(
            summary=f"Lung cancer risk (AI, 12 months): {pct} — {band}",
            indicator="warning" if band == "high" else "info",
            source=self._source(data),
            kind=KIND,
            detail=detail,
            links=[absolute_link("Model card", url)] if url else [],
        )


def _unique(resources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each resource once: an Observation may come back under two prefetch keys (an AI finding
    also matches a broad query), and mapping it twice would count it twice."""
    seen: set[tuple[Any, Any]] = set()
    out = []
    for r in resources:
        key = (r.get("resourceType"), r.get("id"))
        if r.get("id") is not None and key in seen:
            continue
        seen.add(key)
        out.append(r)
    return out


def _chest_imaging_selected(request: HookRequest) -> bool:
    for order in service_requests(draft_orders(request)):
        assert order.resource is not None
        orderable = orderable_for(order.resource)
        if orderable is not None and "chest" in orderable.parts:
            return True
    return False


def _too_little(missing: list[str], source: Source) -> Card:
    return card(
        summary="Lung cancer risk (AI): not scored — too little data on record",
        indicator="info",
        source=source,
        kind=KIND + "-no-score",
        detail=(
            "The risk model scores only records like those it was trained on. Missing: "
            + ", ".join(md_escape(m) for m in missing)
            + "."
        ),
    )


def _unavailable(problem: str) -> Card:
    return card(
        summary="Lung cancer risk (AI) is unavailable: the model is not loaded",
        indicator="info",
        source=Source(f"AI model {MODEL_NAME}"),
        kind=KIND + "-unavailable",
        detail=f"The service could not load its model at start: {md_escape(problem)}",
    )


def register(registry: Registry, service: OncologyRisk) -> None:
    """Route both hooks of `oncology-risk` to the service (called by the app at start)."""
    for entry in ENTRIES:
        registry.register(entry, service.evaluate)


def load(models: LoadedModels, base_url: str | None = None) -> OncologyRisk:
    """The service with the promoted model (or the reason it is not served) and the hub's
    pseudonym key when one is configured."""
    from cdw.config import CdwConfigError, CdwSettings

    model = models.load(MODEL_NAME, RiskModel)
    status = models.status.get(MODEL_NAME)
    cdw = CdwSettings()
    try:
        pz: Pseudonymizer | None = Pseudonymizer(
            cdw.pseudonym_key(), max_shift_days=cdw.cdw_max_shift_days
        )
    except CdwConfigError:
        pz = None
    return OncologyRisk(model, status.problem if status else None, pz, base_url)
