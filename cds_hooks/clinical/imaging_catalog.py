"""The shipped catalogue of CT/MR orderables (``data/imaging_orderables.csv``).

Why a table: the contrast-safety and duplicate rules need to know, for an order's code, the
modality, the body region and whether (and which) contrast is given, and the code of the same
study without contrast (to suggest it). LOINC codes are those of the LOINC/RSNA Radiology Playbook
as listed in docs/clinical-reference.md §2 (source: the Playbook code list in Microsoft's Azure
Health Insights docs, Appendix A; cross-checked with DICOM CID 7000); CPT codes carry the AMA
descriptors quoted there. Codes §2 marks UNVERIFIED are not shipped (see the CSV header).

Contrast agent follows the modality (clinical-reference §2, notes): CT/CTA contrast is iodinated,
MR contrast is a gadolinium-based agent (GBCA).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, cast

from cds_hooks.clinical.fhir_read import CPT, LOINC, as_mapping, codings
from cds_hooks.clinical.tables import read_table

log = logging.getLogger(__name__)

Modality = Literal["CT", "MR"]
Contrast = Literal["none", "iodinated", "gadolinium", "with-and-without", "unspecified"]
Agent = Literal["iodinated", "gadolinium"]
SYSTEMS = (LOINC, CPT)
CATALOGUE_CITATION = (
    "LOINC/RSNA Radiology Playbook (docs/clinical-reference.md §2); CPT descriptors as quoted there"
)
CATALOGUE_URL = (
    "https://github.com/MicrosoftDocs/azure-docs/blob/9e37a183c3047afd2c6d5ebd94f07894e3e0ed67/"
    "articles/azure-health-insights/radiology-insights/radiology-procedure-inference.md"
)

# Body regions as sets of parts, so that "abdomen-pelvis" overlaps "abdomen" and "pelvis".
_REGION_PARTS: dict[str, frozenset[str]] = {
    "chest": frozenset({"chest"}),
    "abdomen": frozenset({"abdomen"}),
    "pelvis": frozenset({"pelvis"}),
    "abdomen-pelvis": frozenset({"abdomen", "pelvis"}),
    "head": frozenset({"head"}),
    "neck": frozenset({"neck"}),
}


def region_parts(region: str) -> frozenset[str]:
    """The anatomic parts a catalogue region covers (``abdomen-pelvis`` = abdomen + pelvis)."""
    return _REGION_PARTS.get(region, frozenset({region}))


@dataclass(frozen=True)
class Orderable:
    """One CT/MR orderable code with what the rules need to know about it."""

    code: str
    system: str
    display: str
    modality: Modality
    region: str
    contrast: Contrast
    non_contrast_code: str | None
    status: str = ""
    source: str = ""

    @property
    def contrast_agent(self) -> Agent | None:
        """The contrast class given (iodinated for CT, GBCA for MR), or None without contrast."""
        if self.contrast in ("iodinated", "gadolinium"):
            return self.contrast
        if self.contrast == "with-and-without":
            return "iodinated" if self.modality == "CT" else "gadolinium"
        return None

    @property
    def parts(self) -> frozenset[str]:
        """The anatomic parts of :attr:`region`."""
        return region_parts(self.region)


def _row_to_orderable(row: Mapping[str, str]) -> Orderable:
    modality, contrast = row["modality"], row["contrast"]
    if modality not in ("CT", "MR"):
        raise ValueError(f"imaging_orderables.csv: bad modality {modality!r} for {row['code']}")
    if contrast not in ("none", "iodinated", "gadolinium", "with-and-without", "unspecified"):
        raise ValueError(f"imaging_orderables.csv: bad contrast {contrast!r} for {row['code']}")
    return Orderable(
        code=row["code"],
        system=row["system"],
        display=row["display"],
        modality=cast(Modality, modality),
        region=row["region"],
        contrast=cast(Contrast, contrast),
        non_contrast_code=row["non_contrast_code"] or None,
        status=row["status"],
        source=row["source"],
    )


@cache
def _index() -> dict[tuple[str, str], Orderable]:
    return {
        (o.system, o.code): o for o in map(_row_to_orderable, read_table("imaging_orderables.csv"))
    }


def catalogue() -> list[Orderable]:
    """Every shipped orderable, in table order."""
    return list(_index().values())


def lookup(system: str, code: str) -> Orderable | None:
    """The orderable for one coding, or None."""
    return _index().get((system, code.strip()))


def orderable_for_concept(concept: object) -> Orderable | None:
    """The first coding of a CodeableConcept that the catalogue knows (LOINC or CPT)."""
    for system, code, _ in codings(concept):
        found = lookup(system, code) if system in SYSTEMS else None
        if found is not None:
            return found
    return None


def orderable_for(service_request: Mapping[str, Any]) -> Orderable | None:
    """The catalogue entry matching any coding of ``ServiceRequest.code``, else None."""
    found = orderable_for_concept(as_mapping(service_request).get("code"))
    if found is None:
        log.debug("no catalogue orderable for ServiceRequest/%s", service_request.get("id"))
    return found


def non_contrast_equivalent(o: Orderable) -> Orderable | None:
    """The same study without contrast, in the same code system, when the table names one."""
    return lookup(o.system, o.non_contrast_code) if o.non_contrast_code else None
