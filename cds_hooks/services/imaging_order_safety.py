"""imaging-order-safety: contrast safety and duplicate checks for draft CT/MR orders.

On order-select (the selected drafts) and order-sign (every draft), each draft ServiceRequest the
imaging catalogue knows is checked on its own (clinical rules in cds_hooks/clinical, each citing
its source in the card):
- kidney function before contrast (ACR–NKF consensus; eGFR by CKD-EPI 2021 when only a creatinine
  is on file): eGFR < 30 -> warning, suggesting the same study without contrast (an update of the
  whole draft with its code swapped); no creatinine/eGFR in the window -> a card suggesting a serum
  creatinine (a create of a draft ServiceRequest, LOINC 2160-0); eGFR 30-44 -> info;
- metformin + eGFR < 30 + iodinated contrast -> hold-metformin advice (ACR Manual, "Metformin");
- an allergy to the contrast class the study gives -> critical (ACR Manual; intolerance: warning);
- a study, or an active/completed order, of the same modality and body region within the
  configured window -> warning with a `smart` link to the prior study in the viewer and a
  suggestion to remove the draft (a delete by resourceId);
- the newest prior study's imaging AI finding (probability, location, model version), once per
  call, as an info card with a `smart` link opening the viewer at the finding's series.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson

from cds_hooks.cards import Card, Source, Suggestion, card, md_escape, smart_link
from cds_hooks.clinical.contrast import KidneyFunction, metformin_advice, renal_risk_of
from cds_hooks.clinical.contrast_allergy import ContrastAllergies, contrast_allergy_of
from cds_hooks.clinical.duplicates import PriorImaging, duplicate_imaging_of
from cds_hooks.clinical.findings import DuplicateFinding, RenalFinding
from cds_hooks.clinical.imaging_catalog import non_contrast_equivalent, orderable_for
from cds_hooks.registry import HookData, ServiceEntry
from cds_hooks.request import HookRequest
from cds_hooks.services import suggestions as make
from cds_hooks.services.common import (
    DraftOrder,
    draft_orders,
    finding_card,
    judge_each,
    service_requests,
    single,
)
from models.imaging.findings import FINDING_TAG, finding_line, findings_by_study, viewer_context

ID = "imaging-order-safety"
RENAL_CODES = ",".join(
    f"http://loinc.org|{c}" for c in ("98979-8", "62238-1", "33914-3", "2160-0", "14682-9")
)
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "renal": f"Observation?patient={{{{context.patientId}}}}&code={RENAL_CODES}&_sort=-date",
    "allergies": "AllergyIntolerance?patient={{context.patientId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}&status=active",
    "studies": "ImagingStudy?patient={{context.patientId}}",
    "orders": "ServiceRequest?patient={{context.patientId}}&status=active,completed",
    "aiFindings": f"Observation?patient={{{{context.patientId}}}}&_tag={FINDING_TAG}",
}
# The model card is served by the app at /models/lung-nodule-ct (and `cdss models show`).
AI_SOURCE = Source("Imaging AI lung-nodule-ct (model card: /models/lung-nodule-ct)")
# Without these the contrast checks would answer "no problem" for want of data: 412 instead.
REQUIRED = frozenset({"patient", "renal", "allergies", "medications"})
_DESCRIPTION = (
    "Checks draft CT and MR orders: kidney function before contrast (ACR–NKF), metformin with "
    "iodinated contrast (ACR), contrast allergy (ACR) and duplicate imaging of the same modality "
    "and body region."
)
ENTRIES = tuple(
    ServiceEntry(
        id=ID,
        hook=hook,
        title="Imaging order safety",
        description=_DESCRIPTION,
        prefetch=PREFETCH,
        required=REQUIRED,
    )
    for hook in ("order-select", "order-sign")
)
# The renal findings that deserve a card; "ok" (eGFR >= 45) says nothing worth interrupting for.
_RENAL_CARD_KINDS = ("egfr-below-30", "egfr-30-44", "no-recent-creatinine", "cannot-assess")


@dataclass(frozen=True, slots=True)
class _Record:
    """The patient's record for one call, shared by every draft order: each part is read on
    first use and once only (kidney function, allergies, prior imaging do not depend on the
    order being judged)."""

    kidney: KidneyFunction
    medications: list[dict[str, Any]]
    allergies: ContrastAllergies
    prior: PriorImaging


def _record(data: HookData) -> _Record:
    return _Record(
        kidney=KidneyFunction(
            patient=single(data.resources("patient", "Patient")),
            observations=data.resources("renal", "Observation"),
            now=data.now,
            window_days=data.options.clinical.creatinine_window_days,
        ),
        medications=data.resources("medications", "MedicationRequest"),
        allergies=ContrastAllergies(data.resources("allergies", "AllergyIntolerance")),
        prior=PriorImaging(
            studies=data.resources("studies", "ImagingStudy"),
            orders=data.resources("orders", "ServiceRequest"),
        ),
    )


def evaluate(request: HookRequest, data: HookData) -> Sequence[Card]:
    orders = service_requests(draft_orders(request))
    shared = cache(lambda: _record(data))  # built for the first order the catalogue knows
    cards = judge_each(orders, lambda order: _judge(order, request, data, shared), service=ID)
    if any(_is_imaging(o.resource) for o in orders):
        cards += _prior_ai_card(data)
    return cards


def _is_imaging(resource: Mapping[str, Any] | None) -> bool:
    """A draft the catalogue cannot judge is not imaging here: its own failure was already
    reported by `judge_each`, and it must not cost the other drafts their cards."""
    if resource is None:
        return False
    try:
        return orderable_for(resource) is not None
    except Exception:
        return False


def _prior_ai_card(data: HookData) -> list[Card]:
    """The newest prior study's imaging AI finding (docs/ai-findings.md), once per call, with a
    `smart` link that opens the viewer at the finding's series: what the AI saw last time is
    worth knowing before ordering the next study."""
    found = findings_by_study(data.resources("aiFindings", "Observation"))
    dated = []
    for study in data.resources("studies", "ImagingStudy"):
        finding = found.get(f"ImagingStudy/{study.get('id')}")
        if finding is not None:
            dated.append((str(study.get("started") or ""), study, finding))
    if not dated:
        return []
    started, study, finding = max(dated, key=lambda item: item[0])
    verdict = "pulmonary nodule" if finding.present else "no pulmonary nodule"
    p = f" (AI probability {finding.probability:.2f})" if finding.probability is not None else ""
    when = f" of {started[:10]}" if started else ""
    title = md_escape(str(study.get("description") or "imaging study"))
    return [
        card(
            summary=f"Prior study{when}: {verdict}{p}",
            indicator="info",
            source=AI_SOURCE,
            kind="prior-ai-finding",
            detail=(
                f"{md_escape(finding_line(finding))}.\n\nPrior study: {title}{when}. "
                "AI output for decision support only (research model trained on synthetic "
                "data); it is not a radiologist's report."
            ),
            links=[
                smart_link(
                    "View the AI finding in the imaging viewer",
                    data.options.smart_app_url,
                    orjson.dumps(viewer_context(finding)).decode(),
                )
            ],
        )
    ]


def _judge(
    order: DraftOrder, request: HookRequest, data: HookData, shared: Callable[[], _Record]
) -> list[Card]:
    assert order.resource is not None  # service_requests() keeps resources only
    orderable = orderable_for(order.resource)
    if orderable is None:
        return []  # not a CT/MR orderable of the catalogue: nothing this service knows about
    record = shared()
    alternative = non_contrast_equivalent(orderable)

    def replace() -> Suggestion | None:  # a fresh suggestion (own uuid) for each card
        return make.replace_with(order, alternative) if alternative else None

    cards: list[Card] = []
    renal = renal_risk_of(orderable=orderable, kidney=record.kidney)
    if renal is not None and renal.kind in _RENAL_CARD_KINDS:
        cards.append(_renal_card(renal, order, request, replace()))
    advice = metformin_advice(
        orderable=orderable, medication_requests=record.medications, egfr=renal
    )
    if advice is not None:
        cards.append(finding_card(advice, order=order))
    allergy = contrast_allergy_of(orderable=orderable, allergies=record.allergies)
    if allergy is not None:
        cards.append(finding_card(allergy, order=order, suggestions=_one(replace())))
    duplicates = duplicate_imaging_of(
        orderable=orderable,
        prior=record.prior,
        now=data.now,
        window_days=data.options.clinical.duplicate_window_days,
        exclude_order_id=order.id,  # the draft itself, when the client lists it among orders
    )
    if duplicates:
        cards.append(_duplicate_card(duplicates, order, data))
    return cards


def _one(suggestion: Suggestion | None) -> tuple[Suggestion, ...]:
    return (suggestion,) if suggestion is not None else ()


def _renal_card(
    renal: RenalFinding, order: DraftOrder, request: HookRequest, replace: Suggestion | None
) -> Card:
    if renal.kind == "egfr-below-30":
        return finding_card(renal, order=order, suggestions=_one(replace))
    if renal.kind == "no-recent-creatinine":
        return finding_card(renal, order=order, suggestions=[make.order_creatinine(request, order)])
    return finding_card(renal, order=order)


def _duplicate_card(found: list[DuplicateFinding], order: DraftOrder, data: HookData) -> Card:
    newest = found[0]
    links = []
    if newest.study_uid or (newest.prior_reference or "").startswith("ImagingStudy/"):
        links.append(
            make.view_study_link(
                data.options.smart_app_url,
                data.patient_id,
                study_uid=newest.study_uid,
                study_ref=newest.prior_reference,
            )
        )
    others = len(found) - 1
    more = f"{others} more prior {'study or order' if others == 1 else 'studies or orders'}"
    more = f"{more} in the window." if others else ""
    return finding_card(
        newest,
        order=order,
        suggestions=_one(make.remove(order, "Remove this draft order (duplicate)")),
        links=links,
        extra_detail=more,
    )
