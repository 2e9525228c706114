"""Duplicate imaging: a recent study or order of the same modality and body region.

Rule: an ImagingStudy, or an active or completed ServiceRequest, of the same modality as the draft
order and an overlapping body region, dated within ``window_days`` before now (or later: a study
already scheduled), is reported with its reference, date and - for a study - its Study Instance
UID and first Series Instance UID, so that the service can link to the viewer.

Source: the window is this project's duplicate-order policy (30 days by default), not a published
guideline; nothing here claims otherwise. Body regions are read from DICOM Body Part Examined
(0018,0015) defined terms (DICOM PS3.16 Table L-1) and SNOMED CT anatomic regions (DICOM CID 4031,
CID 4, CID 4030), see ``data/body_regions.csv``; modality from the DICOM Modality (0008,0060) and
ModalitiesInStudy (0008,0061) codes (R4 ImagingStudy mapping, docs/clinical-reference.md §1.1).
Regions overlap by anatomic part: a prior CT abdomen overlaps a CT abdomen-pelvis order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from cds_hooks.clinical.fhir_read import (
    SNOMED,
    as_list,
    as_mapping,
    aware,
    codings,
    concept_text,
    iso,
    parse_datetime,
    request_time,
    text,
)
from cds_hooks.clinical.findings import DuplicateFinding
from cds_hooks.clinical.guard import never_raises
from cds_hooks.clinical.imaging_catalog import Orderable, orderable_for_concept
from cds_hooks.clinical.tables import read_table, split_terms

log = logging.getLogger(__name__)

CITATION = (
    "Duplicate-order check: same modality and overlapping body region within {days} days "
    "(this project's policy, not a guideline window); body regions per DICOM PS3.16 Table L-1 "
    "and CID 4031"
)
SOURCE_URL = "https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_CID_4031.html"
STUDY_EXCLUDED = ("cancelled", "entered-in-error")
ORDER_STATUSES = ("active", "completed")
_KEEP_ALL = object()  # PriorImaging.priors: no order left out
_MODALITY_WORDS = (
    ("CT", re.compile(r"\bct\b|computed tomograph")),
    ("MR", re.compile(r"\bmri?\b|magnetic resonance")),
)


@dataclass(frozen=True)
class _Prior:
    resource_type: str
    reference: str | None
    when: datetime
    modalities: frozenset[str]
    parts: frozenset[str]
    label: str
    study_uid: str | None = None
    series_uid: str | None = None
    accession: str | None = None
    based_on: frozenset[str] = frozenset()


@cache
def _region_codes() -> dict[tuple[str, str], frozenset[str]]:
    rows = read_table("body_regions.csv")
    return {(r["system"], r["code"]): frozenset(split_terms(r["parts"])) for r in rows if r["code"]}


@cache
def _region_words() -> tuple[tuple[frozenset[str], re.Pattern[str]], ...]:
    rows = [r for r in read_table("body_regions.csv") if r["system"] == "text"]
    return tuple(
        (frozenset(split_terms(r["parts"])), re.compile(r"\b(?:" + r["display"] + r")\b"))
        for r in rows
    )


def _parts_of_coding(concept: object) -> set[str]:
    parts: set[str] = set()
    for system, code, _ in codings(concept):
        key = (SNOMED, code) if system == SNOMED else ("dicom-bpe", code.upper())
        parts |= _region_codes().get(key, frozenset())
    return parts


def _parts_of_text(words: str) -> set[str]:
    return {part for parts, pattern in _region_words() if pattern.search(words) for part in parts}


def _modalities_of_text(words: str) -> set[str]:
    return {modality for modality, pattern in _MODALITY_WORDS if pattern.search(words)}


def _identifiers(study: Mapping[str, Any]) -> tuple[str | None, str | None]:
    uid = accession = None
    for item in as_list(study.get("identifier")):
        ident = as_mapping(item)
        value = text(ident.get("value"))
        if ident.get("system") == "urn:dicom:uid" and value:
            uid = value.removeprefix("urn:oid:")
        elif any(code == "ACSN" for _, code, _ in codings(ident.get("type"))):
            accession = value
    return uid, accession


def _study_prior(study: Mapping[str, Any]) -> _Prior | None:
    series = [as_mapping(s) for s in as_list(study.get("series"))]
    when = parse_datetime(study.get("started")) or min(
        (t for t in (parse_datetime(s.get("started")) for s in series) if t), default=None
    )
    if when is None or study.get("status") in STUDY_EXCLUDED:
        if when is None and study:
            log.warning("skipping ImagingStudy/%s: no readable date", study.get("id"))
        return None
    modalities = {code.upper() for _, code, _ in codings({"coding": study.get("modality")})}
    modalities |= {code.upper() for s in series for _, code, _ in codings(s.get("modality"))}
    words = " ".join(
        [(text(study.get("description")) or "").lower()]
        + [(text(s.get("description")) or "").lower() for s in series]
        + [concept_text(c) for c in as_list(study.get("procedureCode"))]
    )
    parts = _parts_of_text(words) | {p for s in series for p in _parts_of_coding(s.get("bodySite"))}
    for concept in as_list(study.get("procedureCode")):
        known = orderable_for_concept(concept)
        if known is not None:
            parts |= known.parts
            modalities.add(known.modality)
    uid, accession = _identifiers(study)
    sid = text(study.get("id"))
    return _Prior(
        resource_type="ImagingStudy",
        reference=f"ImagingStudy/{sid}" if sid else None,
        when=when,
        modalities=frozenset(modalities),
        parts=frozenset(parts),
        label=text(study.get("description")) or "imaging study",
        study_uid=uid,
        series_uid=text(series[0].get("uid")) if series else None,
        accession=accession,
        based_on=frozenset(
            ref
            for r in as_list(study.get("basedOn"))
            if (ref := text(as_mapping(r).get("reference")))
        ),
    )


def _order_prior(order: Mapping[str, Any]) -> _Prior | None:
    when = request_time(order)
    if order.get("status") not in ORDER_STATUSES:
        return None
    if when is None:
        log.warning("skipping ServiceRequest/%s: no readable date", order.get("id"))
        return None
    known = orderable_for_concept(order.get("code"))
    words = concept_text(order.get("code"))
    oid = text(order.get("id"))
    return _Prior(
        resource_type="ServiceRequest",
        reference=f"ServiceRequest/{oid}" if oid else None,
        when=when,
        modalities=frozenset({known.modality} if known else _modalities_of_text(words)),
        parts=known.parts if known else frozenset(_parts_of_text(words)),
        label=known.display if known else (words or "imaging order"),
    )


def _finding(orderable: Orderable, prior: _Prior, now: datetime, days: int) -> DuplicateFinding:
    ago = max((now - prior.when).days, 0)
    did = "performed" if prior.resource_type == "ImagingStudy" else "ordered"
    when = prior.when.date().isoformat()
    uids = f" Study UID {prior.study_uid}." if prior.study_uid else ""
    citation = CITATION.format(days=days)
    return DuplicateFinding(
        kind="duplicate-imaging",
        severity="warning",
        summary=(
            f"{orderable.modality} {orderable.region} already {did} {ago} days ago ({when}): "
            "possible duplicate"
        ),
        detail=(
            f"**{prior.label}** ({prior.reference or prior.resource_type}, {when}) covers the same "
            f"modality ({orderable.modality}) and body region ({orderable.region}) as "
            f"{orderable.display}.{uids}\n\nSource: {citation}."
        ),
        citation=citation,
        source_url=SOURCE_URL,
        data={
            "prior_type": prior.resource_type,
            "prior_reference": prior.reference,
            "prior_date": iso(prior.when),
            "study_uid": prior.study_uid,
            "series_uid": prior.series_uid,
            "accession": prior.accession,
            "window_days": days,
            "orderable": orderable.code,
        },
        prior_reference=prior.reference,
        prior_date=iso(prior.when),
        study_uid=prior.study_uid,
        series_uid=prior.series_uid,
        accession=prior.accession,
    )


class PriorImaging:
    """The patient's prior studies and orders, each read once, on first use, then shared by
    every draft order of the call (reading them does not depend on the draft; matching does)."""

    def __init__(self, *, studies: Iterable[object], orders: Iterable[object]) -> None:
        self.studies = list(studies)  # both may be read again (see `priors`)
        self.orders = list(orders)
        self._studies: list[_Prior] | None = None
        self._orders: dict[int, _Prior | None] = {}  # by position in `orders`

    def priors(self, *, exclude_order_id: object = _KEEP_ALL) -> list[_Prior]:
        """Studies first, then orders, in input order; without the orders whose ``id`` equals
        ``exclude_order_id`` (the draft itself, when the client also lists it among the orders;
        such an order is not even read). A failure is not remembered: the next draft retries."""
        if self._studies is None:
            self._studies = [p for s in self.studies if (p := _study_prior(as_mapping(s)))]
        found = list(self._studies)
        for i, item in enumerate(self.orders):
            order = as_mapping(item)
            if exclude_order_id is not _KEEP_ALL and order.get("id") == exclude_order_id:
                continue
            if i not in self._orders:
                self._orders[i] = _order_prior(order)
            prior = self._orders[i]
            if prior is not None:
                found.append(prior)
        return found


@never_raises(list)
def duplicate_imaging(
    *,
    orderable: Orderable | None,
    studies: Iterable[object],
    orders: Iterable[object],
    now: datetime,
    window_days: int = 30,
) -> list[DuplicateFinding]:
    """Prior studies/orders duplicating the draft order, newest first."""
    if orderable is None:
        return []
    priors = PriorImaging(studies=studies, orders=orders).priors()
    return _duplicates(orderable, priors, now, window_days)


@never_raises(list, name="duplicate_imaging")
def duplicate_imaging_of(
    *,
    orderable: Orderable | None,
    prior: PriorImaging,
    now: datetime,
    window_days: int = 30,
    exclude_order_id: object = _KEEP_ALL,
) -> list[DuplicateFinding]:
    """`duplicate_imaging` on a PriorImaging shared by the orders of a call (read once),
    leaving out the prior orders whose ``id`` equals ``exclude_order_id`` (None included: an
    order without an id)."""
    if orderable is None:
        return []
    priors = prior.priors(exclude_order_id=exclude_order_id)
    return _duplicates(orderable, priors, now, window_days)


def _duplicates(
    orderable: Orderable, priors: list[_Prior], now: datetime, window_days: int
) -> list[DuplicateFinding]:
    now = aware(now)
    since = now - timedelta(days=window_days)
    hits = [
        p
        for p in priors
        if p.when >= since and orderable.modality in p.modalities and orderable.parts & p.parts
    ]
    shown_orders = {ref for p in hits for ref in p.based_on}
    hits = [p for p in hits if p.reference not in shown_orders]
    hits.sort(key=lambda p: p.when, reverse=True)
    return [_finding(orderable, p, now, window_days) for p in hits]
