"""The order catalogue: which codes the hospital can route, and where.

Lab codes are the LOINC codes of the SENAITE keyword<->LOINC table (reversed: LOINC -> the
SENAITE analysis keyword), imaging codes the shipped CT/MR orderables of the CDS catalogue. An
order whose code is in neither cannot reach any system, so intake rejects it rather than queue it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from adapters.senaite.loinc import LOINC_SYSTEM, load_table
from cds_hooks.clinical.imaging_catalog import Orderable, lookup


@dataclass(frozen=True, slots=True)
class LabOrder:
    keywords: tuple[str, ...]  # SENAITE analysis keywords, in the order's coding order
    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImagingOrder:
    orderable: Orderable


@cache
def lab_keywords() -> dict[str, str]:
    """LOINC code -> SENAITE keyword, from the shipped (or configured) table."""
    table = load_table()
    out: dict[str, str] = {}
    for keyword in sorted(table.keywords()):
        for row in table.rows(keyword):
            out.setdefault(row.loinc, row.keyword)
    return out


def _codings(resource: Mapping[str, Any]) -> list[tuple[str, str]]:
    code = resource.get("code")
    codings = code.get("coding", []) if isinstance(code, dict) else []
    return [
        (str(c.get("system", "")), str(c.get("code", "")).strip())
        for c in codings
        if isinstance(c, dict)
    ]


def classify(resource: Mapping[str, Any]) -> LabOrder | ImagingOrder | None:
    """What the order's code asks for; imaging wins when a coding is in the imaging catalogue."""
    codings = _codings(resource)
    for system, code in codings:
        found = lookup(system, code)
        if found is not None:
            return ImagingOrder(found)
    table = lab_keywords()
    lab = [
        (table[code], code) for system, code in codings if system == LOINC_SYSTEM and code in table
    ]
    if lab:
        keywords = tuple(dict.fromkeys(k for k, _ in lab))
        return LabOrder(keywords, tuple(c for _, c in lab))
    return None
