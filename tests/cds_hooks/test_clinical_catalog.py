"""The imaging orderables table (clinical-reference.md §2) and its lookups."""

from __future__ import annotations

from typing import Any

import pytest

from cds_hooks.clinical.fhir_read import CPT, LOINC
from cds_hooks.clinical.imaging_catalog import (
    Orderable,
    catalogue,
    non_contrast_equivalent,
    orderable_for,
    region_parts,
)


def sr(*codings: tuple[str, str], text: str | None = None) -> dict[str, Any]:
    code: dict[str, Any] = {"coding": [{"system": s, "code": c} for s, c in codings]}
    if text:
        code["text"] = text
    return {"resourceType": "ServiceRequest", "id": "draft", "status": "draft", "code": code}


def test_table_loads_with_unique_codes_and_known_status() -> None:
    rows = catalogue()
    assert len(rows) == 29
    assert len({(o.system, o.code) for o in rows}) == len(rows)
    assert {o.status for o in rows} <= {"V", "V*"}  # UNVERIFIED codes are not shipped
    assert {o.system for o in rows} == {LOINC, CPT}


@pytest.mark.parametrize("o", catalogue(), ids=lambda o: f"{o.code}")
def test_non_contrast_equivalent_is_the_same_study_without_contrast(o: Orderable) -> None:
    alt = non_contrast_equivalent(o)
    if o.contrast in ("none", "unspecified"):
        assert o.non_contrast_code is None and alt is None
        return
    if alt is None:  # angiography has no non-contrast substitute
        assert "angiograph" in o.display.lower() or o.display.startswith("CTA")
        return
    assert (alt.system, alt.modality, alt.region, alt.contrast) == (
        o.system,
        o.modality,
        o.region,
        "none",
    )


@pytest.mark.parametrize(
    ("codings", "expected"),
    [
        ([(LOINC, "24628-0")], "24628-0"),  # CT Chest W contrast IV
        ([(CPT, "74177")], "74177"),  # CT A/P with contrast
        ([(LOINC, "99999-9"), (CPT, "70553")], "70553"),  # first known coding wins
        ([(LOINC, " 30657-1 ")], "30657-1"),  # stray whitespace
        ([(LOINC, "71260")], None),  # a CPT code under the LOINC system
        ([("http://snomed.info/sct", "24628-0")], None),
        ([(LOINC, "30745-4")], None),  # "XR Chest Views", mis-used as CT chest in sample apps
        ([], None),
    ],
)
def test_orderable_for(codings: list[tuple[str, str]], expected: str | None) -> None:
    found = orderable_for(sr(*codings))
    assert (found.code if found else None) == expected


@pytest.mark.parametrize(
    "service_request",
    [{}, {"code": "24628-0"}, {"code": {"coding": "24628-0"}}, {"code": {"coding": [None, 5]}}],
)
def test_orderable_for_malformed_is_none(service_request: dict[str, Any]) -> None:
    assert orderable_for(service_request) is None


@pytest.mark.parametrize(
    ("code", "contrast", "agent"),
    [
        ("24628-0", "iodinated", "iodinated"),
        ("29252-4", "none", None),
        ("30598-7", "with-and-without", "iodinated"),
        ("24627-2", "unspecified", None),
        ("24589-4", "gadolinium", "gadolinium"),
        ("24587-8", "with-and-without", "gadolinium"),
    ],
)
def test_contrast_agent_follows_modality(code: str, contrast: str, agent: str | None) -> None:
    o = orderable_for(sr((LOINC, code)))
    assert o is not None and o.contrast == contrast and o.contrast_agent == agent


def test_regions_overlap_by_part() -> None:
    assert region_parts("abdomen-pelvis") == {"abdomen", "pelvis"}
    assert region_parts("chest") & region_parts("abdomen-pelvis") == set()
    o = orderable_for(sr((CPT, "74176")))
    assert o is not None and o.parts == {"abdomen", "pelvis"}
