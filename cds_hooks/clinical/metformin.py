"""Is the patient on metformin? (for the ACR metformin-and-contrast rule).

Why a table plus text: orders arrive coded in RxNorm at ingredient (6809) or clinical-drug level,
or only as text ("Metformin 500mg BID", combination products). ``data/metformin_rxnorm.csv`` lists
the ingredient and common single-ingredient SCDs with their sources; any medication whose text or
display contains "metformin" also matches, which covers combinations and unlisted strengths.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from cds_hooks.clinical.fhir_read import RXNORM, as_list, as_mapping, codings, concept_text, text
from cds_hooks.clinical.tables import read_table


@cache
def metformin_rxcuis() -> frozenset[str]:
    """RxCUIs of the shipped metformin table."""
    return frozenset(row["rxcui"] for row in read_table("metformin_rxnorm.csv"))


def _medication_concept(request: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """The medication CodeableConcept (inline or a contained Medication) and reference text."""
    if "medicationCodeableConcept" in request:
        return as_mapping(request["medicationCodeableConcept"]), ""
    ref = as_mapping(request.get("medicationReference"))
    target = text(ref.get("reference")) or ""
    for item in as_list(request.get("contained")):
        med = as_mapping(item)
        if target == f"#{med.get('id')}":
            return as_mapping(med.get("code")), text(ref.get("display")) or ""
    return {}, text(ref.get("display")) or ""


def _is_metformin(request: Mapping[str, Any]) -> str | None:
    """A display name when the request is for a metformin product, else None."""
    concept, ref_display = _medication_concept(request)
    for system, code, display in codings(concept):
        if system == RXNORM and code in metformin_rxcuis():
            return display or text(concept.get("text")) or f"RxNorm {code}"
    words = f"{concept_text(concept)} {ref_display.lower()}"
    if "metformin" in words:
        return text(concept.get("text")) or ref_display or "metformin"
    return None


def active_metformin(medication_requests: Iterable[object]) -> list[tuple[str | None, str]]:
    """``(reference, name)`` of each active MedicationRequest for metformin."""
    found: list[tuple[str | None, str]] = []
    for item in medication_requests:
        request = as_mapping(item)
        if request.get("status") != "active":
            continue
        name = _is_metformin(request)
        if name is not None:
            rid = text(request.get("id"))
            found.append((f"MedicationRequest/{rid}" if rid else None, name))
    return found
