"""duplicate_imaging: same modality and overlapping body region inside the window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from cds_hooks.clinical.duplicates import duplicate_imaging
from cds_hooks.clinical.fhir_read import CPT, LOINC
from cds_hooks.clinical.imaging_catalog import Orderable, lookup

NOW = datetime.fromisoformat("2025-06-01T12:00:00+00:00")
CT_CHEST = lookup(LOINC, "24628-0")
CT_AP = lookup(LOINC, "36813-4")
MR_BRAIN = lookup(LOINC, "24589-4")
DCM = "http://dicom.nema.org/resources/ontology/DCM"
SCT = "http://snomed.info/sct"


def when(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def study(
    days_ago: float = 10,
    modality: str = "CT",
    body: dict[str, str] | None = None,
    *,
    sid: str = "s1",
    description: str | None = None,
    status: str = "available",
    **extra: Any,
) -> dict[str, Any]:
    series: dict[str, Any] = {
        "uid": "1.2.3.4.1",
        "modality": {"system": DCM, "code": modality},
        "bodySite": body if body is not None else {"system": DCM, "code": "CHEST"},
    }
    s: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": sid,
        "status": status,
        "started": when(days_ago),
        "modality": [{"system": DCM, "code": modality}],
        "identifier": [
            {"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4"},
            {"type": {"coding": [{"code": "ACSN"}]}, "value": "ACC-9"},
        ],
        "series": [series, {"uid": "1.2.3.4.2", "modality": {"code": modality}}],
        **extra,
    }
    if description:
        s["description"] = description
    return s


def order(
    days_ago: float = 5,
    code: tuple[str, str] | None = (LOINC, "29252-4"),
    *,
    oid: str = "sr1",
    status: str = "active",
    text: str | None = None,
) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if code:
        concept["coding"] = [{"system": code[0], "code": code[1]}]
    if text:
        concept["text"] = text
    return {
        "resourceType": "ServiceRequest",
        "id": oid,
        "status": status,
        "code": concept,
        "authoredOn": when(days_ago),
    }


def dups(
    orderable: Orderable | None, studies: Sequence[Any] = (), orders: Sequence[Any] = (), **kw: Any
) -> Any:
    return duplicate_imaging(
        orderable=orderable, studies=list(studies), orders=list(orders), now=NOW, **kw
    )


def test_study_inside_window_gives_uids_for_the_viewer() -> None:
    [f] = dups(CT_CHEST, [study(10)])
    assert (f.kind, f.severity) == ("duplicate-imaging", "warning")
    assert (f.prior_reference, f.study_uid, f.series_uid, f.accession) == (
        "ImagingStudy/s1",
        "1.2.3.4",
        "1.2.3.4.1",
        "ACC-9",
    )
    assert f.prior_date == when(10) and f.data["study_uid"] == "1.2.3.4"
    assert "10 days ago" in f.summary and "not a guideline" in f.citation
    assert f.source_url.startswith("https://dicom.nema.org/")


@pytest.mark.parametrize(
    ("days_ago", "window", "found"),
    [(29.9, 30, True), (30.1, 30, False), (45, 60, True), (-2, 30, True)],  # -2: scheduled ahead
)
def test_window(days_ago: float, window: int, found: bool) -> None:
    assert bool(dups(CT_CHEST, [study(days_ago)], window_days=window)) is found


@pytest.mark.parametrize(
    ("orderable", "prior", "found"),
    [
        (CT_CHEST, study(modality="MR"), False),  # different modality
        (CT_CHEST, study(body={"system": DCM, "code": "ABDOMEN"}), False),  # different region
        (CT_AP, study(body={"code": "ABDOMEN"}), True),  # abdomen overlaps abdomen-pelvis
        (
            CT_AP,
            study(body={"system": SCT, "code": "818982008"}),
            True,
        ),  # SNOMED Abdomen and Pelvis
        (
            CT_CHEST,
            study(body={"system": SCT, "code": "416775004"}),
            True,
        ),  # Chest, Abdomen and Pelvis
        (CT_AP, study(body={"code": "CHESTABDPELVIS"}), True),
        (CT_CHEST, study(body={}, description="CT THORAX W/O CONTRAST"), True),
        (CT_CHEST, study(body={}, description="CT outside films"), False),  # region unknown
        (MR_BRAIN, study(modality="MR", body={"code": "BRAIN"}), True),
        (MR_BRAIN, study(modality="MR", body={"code": "HEAD"}), True),
        (
            CT_CHEST,
            study(body={}, procedureCode=[{"coding": [{"system": LOINC, "code": "29252-4"}]}]),
            True,
        ),
        (CT_CHEST, study(status="cancelled"), False),
        (CT_CHEST, study(status="entered-in-error"), False),
    ],
)
def test_modality_and_region(orderable: Orderable, prior: dict[str, Any], found: bool) -> None:
    assert bool(dups(orderable, [prior])) is found


def test_study_date_falls_back_to_series_then_skips() -> None:
    prior = study()
    del prior["started"]
    assert dups(CT_CHEST, [prior]) == []  # no date at all: cannot place it in the window
    prior["series"][1]["started"] = when(3)
    [f] = dups(CT_CHEST, [prior])
    assert f.prior_date == when(3)


@pytest.mark.parametrize(
    ("prior", "found"),
    [
        (order(5), True),
        (order(5, status="completed"), True),
        (order(5, status="revoked"), False),
        (order(5, status="draft"), False),
        (order(5, (CPT, "71250")), True),
        (order(5, None, text="CT chest without contrast"), True),
        (order(5, None, text="MRI chest"), False),
        (order(5, (LOINC, "36952-0")), False),  # CT A/P: other region
        (order(40), False),
    ],
)
def test_orders(prior: dict[str, Any], found: bool) -> None:
    result = dups(CT_CHEST, orders=[prior])
    assert bool(result) is found
    if found:
        assert result[0].prior_reference == "ServiceRequest/sr1" and result[0].study_uid is None


def test_order_fulfilled_by_a_listed_study_is_reported_once() -> None:
    prior = study(3, basedOn=[{"reference": "ServiceRequest/sr1"}])
    result = dups(CT_CHEST, [prior], [order(6)])
    assert [f.prior_reference for f in result] == ["ImagingStudy/s1"]


def test_newest_first() -> None:
    result = dups(CT_CHEST, [study(20, sid="old"), study(2, sid="new")], [order(8)])
    assert [f.prior_reference for f in result] == [
        "ImagingStudy/new",
        "ServiceRequest/sr1",
        "ImagingStudy/old",
    ]


def test_no_orderable_no_findings() -> None:
    assert dups(None, [study()], [order()]) == []
