"""Contrast allergy: flag an AllergyIntolerance to the class of contrast the order will give.

Source: ACR Manual on Contrast Media, chapters "Allergic-Like and Physiologic Reactions to
Intravascular Iodinated Contrast Media" and "Adverse Reactions to Gadolinium-Based Contrast Media"
(docs/clinical-reference.md §5, V*): "A prior allergic-like or unknown type reaction to the same
class of contrast medium is considered the greatest risk factor"; "There is no cross-reactivity
between different classes of contrast medium" - so a gadolinium allergy does not flag an iodinated
CT and vice versa; a prior physiologic reaction (recorded as ``type: intolerance``) "is not an
indication for corticosteroid premedication"; shellfish or povidone-iodine allergy is not a
contrast allergy.

Which records count: clinicalStatus not inactive/resolved, verificationStatus not refuted or
entered-in-error (confirmed and unconfirmed both count: an unconfirmed contrast allergy is still
a reason to ask). The substance is read from codes (``data/contrast_substances.csv``: SNOMED CT
class and agent concepts) and from text (agent and trade names, "contrast").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, Literal, cast

from cds_hooks.clinical.fhir_read import (
    as_list,
    as_mapping,
    coded_status,
    codings,
    concept_text,
    text,
)
from cds_hooks.clinical.findings import Finding, Severity
from cds_hooks.clinical.guard import never_raises
from cds_hooks.clinical.imaging_catalog import Orderable, non_contrast_equivalent
from cds_hooks.clinical.tables import read_table, split_terms

log = logging.getLogger(__name__)

Klass = Literal["iodinated", "gadolinium", "unspecified", "not-contrast"]
ACR_URL = "https://www.acr.org/Clinical-Resources/Contrast-Manual"
CITATION = {
    "iodinated": (
        "ACR Manual on Contrast Media, 'Allergic-Like and Physiologic Reactions to Intravascular "
        "Iodinated Contrast Media'"
    ),
    "gadolinium": (
        "ACR Manual on Contrast Media, 'Adverse Reactions to Gadolinium-Based Contrast Media'"
    ),
}
_CLASSES = ("iodinated", "gadolinium", "unspecified", "not-contrast")
IGNORED_CLINICAL = ("inactive", "resolved")
IGNORED_VERIFICATION = ("refuted", "entered-in-error")


def _klass(value: str) -> Klass:
    if value not in _CLASSES:
        raise ValueError(f"contrast_substances.csv: unknown class {value!r}")
    return cast(Klass, value)


@cache
def _codes() -> dict[tuple[str, str], Klass]:
    rows = read_table("contrast_substances.csv")
    return {(r["system"], r["code"]): _klass(r["class"]) for r in rows if r["system"] != "text"}


@cache
def _patterns() -> tuple[tuple[Klass, re.Pattern[str]], ...]:
    """One regex per text row, specific classes first so that 'contrast' alone is the fallback."""
    found: list[tuple[Klass, re.Pattern[str]]] = []
    for row in read_table("contrast_substances.csv"):
        if row["system"] != "text":
            continue
        terms = [
            re.escape(t[:-1]) + r"\w*" if t.endswith("*") else re.escape(t).replace(r"\ ", r"\s+")
            for t in split_terms(row["display"])
        ]
        found.append((_klass(row["class"]), re.compile(r"\b(?:" + "|".join(terms) + r")\b")))
    order = {"not-contrast": 0, "iodinated": 1, "gadolinium": 1, "unspecified": 2}
    return tuple(sorted(found, key=lambda item: order[item[0]]))


def substance_classes(allergy: Mapping[str, Any]) -> set[Klass]:
    """Contrast classes an AllergyIntolerance names (empty when it is not about contrast)."""
    concepts = [allergy.get("code")]
    concepts += [as_mapping(r).get("substance") for r in as_list(allergy.get("reaction"))]
    coded = {
        _codes()[(system, code)]
        for concept in concepts
        for system, code, _ in codings(concept)
        if (system, code) in _codes()
    }
    words = " ".join(concept_text(c) for c in concepts)
    worded = {klass for klass, pattern in _patterns() if pattern.search(words)}
    found = (coded | worded) - {"not-contrast"}
    specific = found & {"iodinated", "gadolinium"}
    return set(specific) if specific else found


def _counts(allergy: Mapping[str, Any]) -> bool:
    clinical = coded_status(allergy.get("clinicalStatus"))
    verification = coded_status(allergy.get("verificationStatus"))
    return clinical not in IGNORED_CLINICAL and verification not in IGNORED_VERIFICATION


def _summary_of(allergy: Mapping[str, Any]) -> dict[str, Any]:
    code = as_mapping(allergy.get("code"))
    label = text(code.get("text")) or next((d for _, _, d in codings(code) if d), "") or "contrast"
    manifestations = [
        concept_text(m)
        for r in as_list(allergy.get("reaction"))
        for m in as_list(as_mapping(r).get("manifestation"))
    ]
    rid = text(allergy.get("id"))
    return {
        "reference": f"AllergyIntolerance/{rid}" if rid else None,
        "substance": label,
        "type": text(allergy.get("type")),
        "criticality": text(allergy.get("criticality")),
        "verification": coded_status(allergy.get("verificationStatus")),
        "manifestations": [m for m in manifestations if m],
    }


def _finding(
    orderable: Orderable, agent: str, kind: str, severity: Severity, hits: list[dict[str, Any]]
) -> Finding:
    names = "; ".join(sorted({h["substance"] for h in hits}))
    reactions = "; ".join(sorted({m for h in hits for m in h["manifestations"]})) or "not recorded"
    alt = non_contrast_equivalent(orderable)
    alt_text = f" A non-contrast alternative is {alt.display} ({alt.code})." if alt else ""
    label = "gadolinium-based" if agent == "gadolinium" else "iodinated"
    lead = {
        "contrast-allergy": f"Allergy to {label} contrast recorded ({names})",
        "contrast-intolerance": f"Physiologic reaction to {label} contrast recorded ({names})",
        "contrast-allergy-unspecified": f"Contrast allergy of unrecorded class ({names})",
    }[kind]
    advice = {
        "contrast-allergy": (
            "ACR: a prior allergic-like or unknown-type reaction to the same class of contrast "
            "is the greatest risk factor for another; consider premedication or an alternative "
            "agent or study per local policy."
        ),
        "contrast-intolerance": (
            "ACR: a prior physiologic reaction is not an indication for corticosteroid "
            "premedication."
        ),
        "contrast-allergy-unspecified": (
            f"The record does not say which class of contrast; {label} contrast is ordered. ACR: "
            "there is no cross-reactivity between classes, so clarify the agent before the study."
        ),
    }[kind]
    return Finding(
        kind=kind,
        severity=severity,
        summary=f"{lead}: {orderable.display} gives {label} contrast",
        detail=(
            f"**{lead}**; reactions: {reactions}.\n\n{advice}{alt_text}\n\n"
            f"Source: {CITATION[agent]}."
        ),
        citation=CITATION[agent],
        source_url=ACR_URL,
        data={"contrast_agent": agent, "orderable": orderable.code, "allergies": hits},
    )


class ContrastAllergies:
    """The patient's allergy records that count, each with the contrast classes it names: read
    on first use, then shared by every draft order of the call."""

    def __init__(self, allergies: Iterable[object]) -> None:
        self.allergies = list(allergies)  # may be read again (see `classified`)
        self._read: list[tuple[Mapping[str, Any], set[Klass]]] | None = None

    def classified(self) -> list[tuple[Mapping[str, Any], set[Klass]]]:
        if self._read is None:  # a failure is not remembered: each order retries and logs
            found = []
            for item in self.allergies:
                allergy = as_mapping(item)
                if allergy and _counts(allergy):
                    found.append((allergy, substance_classes(allergy)))
            self._read = found
        return self._read


@never_raises(lambda: None)
def contrast_allergy(*, orderable: Orderable | None, allergies: Iterable[object]) -> Finding | None:
    """A finding when an active allergy names the contrast class this order gives, else None."""
    agent = orderable.contrast_agent if orderable else None
    if orderable is None or agent is None:
        return None
    return _judge(orderable, agent, ContrastAllergies(allergies))


@never_raises(lambda: None, name="contrast_allergy")
def contrast_allergy_of(
    *, orderable: Orderable | None, allergies: ContrastAllergies
) -> Finding | None:
    """`contrast_allergy` on ContrastAllergies shared by the orders of a call (read once)."""
    agent = orderable.contrast_agent if orderable else None
    if orderable is None or agent is None:
        return None
    return _judge(orderable, agent, allergies)


def _judge(orderable: Orderable, agent: str, allergies: ContrastAllergies) -> Finding | None:
    matching: list[dict[str, Any]] = []
    unspecified: list[dict[str, Any]] = []
    for allergy, classes in allergies.classified():
        if agent in classes:
            matching.append(_summary_of(allergy))
        elif "unspecified" in classes:
            unspecified.append(_summary_of(allergy))
    allergic = [h for h in matching if h["type"] != "intolerance"]
    if allergic:
        return _finding(orderable, agent, "contrast-allergy", "critical", allergic)
    if matching:
        return _finding(orderable, agent, "contrast-intolerance", "warning", matching)
    if unspecified:
        return _finding(orderable, agent, "contrast-allergy-unspecified", "warning", unspecified)
    return None
