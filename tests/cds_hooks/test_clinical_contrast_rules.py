"""metformin_advice and contrast_allergy (ACR Manual on Contrast Media, clinical-reference §5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from cds_hooks.clinical.contrast import contrast_allergy, metformin_advice
from cds_hooks.clinical.fhir_read import CPT, LOINC
from cds_hooks.clinical.findings import RenalFinding
from cds_hooks.clinical.imaging_catalog import Orderable, lookup

CT_WITH = lookup(LOINC, "24628-0")
CT_BOTH = lookup(CPT, "74178")
CT_WITHOUT = lookup(LOINC, "29252-4")
MR_WITH = lookup(LOINC, "24589-4")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SCT = "http://snomed.info/sct"


def med(status: str = "active", **medication: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": "m1", "status": status, **medication}


def rx(code: str, display: str = "") -> dict[str, Any]:
    return {
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code, "display": display}]
        }
    }


METFORMIN_FORMS = {
    "scd 500 mg": rx("861007"),
    "ingredient": rx("6809"),
    "er 750 mg": rx("860981"),
    "text only": {"medicationCodeableConcept": {"text": "Metformin 500mg BID"}},
    "combination by display": rx("9999999", "sitagliptin 50 MG / metformin hydrochloride 1000 MG"),
    "contained Medication": {
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med",
                "code": {"coding": [{"system": RXNORM, "code": "861010"}]},
            }
        ],
        "medicationReference": {"reference": "#med"},
    },
    "reference display": {
        "medicationReference": {"reference": "Medication/x", "display": "METFORMIN HCL 850"}
    },
}


@pytest.mark.parametrize("form", METFORMIN_FORMS.values(), ids=METFORMIN_FORMS.keys())
def test_metformin_recognised(form: dict[str, Any]) -> None:
    f = metformin_advice(orderable=CT_WITH, medication_requests=[med(**form)], egfr=25.0)
    assert f is not None and (f.kind, f.severity) == ("hold-metformin", "warning")
    assert (
        f.data["medication_requests"] == ["MedicationRequest/m1"] and f.data["withhold_hours"] == 48
    )
    assert "'Metformin'" in f.citation and f.citation in f.detail and "48 hours" in f.detail


@pytest.mark.parametrize(
    ("orderable", "requests", "egfr"),
    [
        (CT_WITH, [med(**rx("861007"))], 30.0),  # ACR category I: eGFR >= 30, continue
        (CT_WITH, [med(**rx("861007"))], None),  # no eGFR: renal_risk reports that
        (MR_WITH, [med(**rx("861007"))], 20.0),  # GBCA: no need to stop metformin
        (CT_WITHOUT, [med(**rx("861007"))], 20.0),
        (None, [med(**rx("861007"))], 20.0),
        (CT_WITH, [med("stopped", **rx("861007"))], 20.0),
        (CT_WITH, [med("on-hold", **rx("861007"))], 20.0),
        (CT_WITH, [med(**rx("310534", "glipizide 5 MG Oral Tablet"))], 20.0),
        (CT_WITH, [], 20.0),
        (CT_WITH, [None, "x", 3, {}], 20.0),
    ],
)
def test_metformin_no_advice(
    orderable: Orderable | None, requests: list[Any], egfr: float | None
) -> None:
    assert metformin_advice(orderable=orderable, medication_requests=requests, egfr=egfr) is None


def test_metformin_accepts_a_renal_finding() -> None:
    renal = RenalFinding(
        kind="egfr-below-30",
        severity="warning",
        summary="s",
        detail="d",
        citation="c",
        source_url="u",
        egfr=22.0,
    )
    f = metformin_advice(orderable=CT_BOTH, medication_requests=[med(**rx("861004"))], egfr=renal)
    assert f is not None and f.data["egfr"] == 22.0


def allergy(
    code: tuple[str, str] | None = None,
    text: str | None = None,
    *,
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    kind: str | None = "allergy",
    reaction_substance: tuple[str, str] | None = None,
) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if code:
        concept["coding"] = [{"system": code[0], "code": code[1]}]
    if text:
        concept["text"] = text
    a: dict[str, Any] = {"resourceType": "AllergyIntolerance", "id": "a1", "code": concept}
    if clinical:
        a["clinicalStatus"] = {"coding": [{"code": clinical}]}
    if verification:
        a["verificationStatus"] = {"coding": [{"code": verification}]}
    if kind:
        a["type"] = kind
    reaction: dict[str, Any] = {"manifestation": [{"text": "urticaria"}]}
    if reaction_substance:
        reaction["substance"] = {
            "coding": [{"system": reaction_substance[0], "code": reaction_substance[1]}]
        }
    a["reaction"] = [reaction]
    return a


IODINATED = (SCT, "426722004")
GBCA = (SCT, "1348311005")
CONTRAST_ANY = (SCT, "293637006")


@pytest.mark.parametrize(
    ("orderable", "record", "expected"),
    [
        (CT_WITH, allergy(IODINATED), ("contrast-allergy", "critical")),
        (CT_BOTH, allergy(IODINATED), ("contrast-allergy", "critical")),
        (CT_WITH, allergy(GBCA), None),  # no cross-reactivity between classes
        (MR_WITH, allergy(GBCA), ("contrast-allergy", "critical")),
        (MR_WITH, allergy(IODINATED), None),
        (MR_WITH, allergy(text="Gadolinium contrast"), ("contrast-allergy", "critical")),
        (CT_WITH, allergy(text="Gadolinium contrast"), None),
        (CT_WITH, allergy(text="OMNIPAQUE"), ("contrast-allergy", "critical")),
        (MR_WITH, allergy(text="Gadavist"), ("contrast-allergy", "critical")),
        (MR_WITH, allergy(text="gadoterate meglumine"), ("contrast-allergy", "critical")),
        (CT_WITH, allergy((SCT, "109218004")), ("contrast-allergy", "critical")),  # iohexol
        (
            CT_WITH,
            allergy((RXNORM, "1"), "iohexol 300 MG/ML Injectable Solution"),
            ("contrast-allergy", "critical"),
        ),
        (MR_WITH, allergy(reaction_substance=(SCT, "407976008")), ("contrast-allergy", "critical")),
        (CT_WITH, allergy(IODINATED, verification="unconfirmed"), ("contrast-allergy", "critical")),
        (
            CT_WITH,
            allergy(IODINATED, verification=None, clinical=None),
            ("contrast-allergy", "critical"),
        ),
        (CT_WITH, allergy(IODINATED, verification="refuted"), None),
        (CT_WITH, allergy(IODINATED, verification="entered-in-error"), None),
        (CT_WITH, allergy(IODINATED, clinical="inactive"), None),
        (CT_WITH, allergy(IODINATED, clinical="resolved"), None),
        (CT_WITH, allergy(IODINATED, kind="intolerance"), ("contrast-intolerance", "warning")),
        (CT_WITH, allergy(CONTRAST_ANY), ("contrast-allergy-unspecified", "warning")),
        (MR_WITH, allergy(text="IV contrast dye"), ("contrast-allergy-unspecified", "warning")),
        (
            CT_WITH,
            allergy(CONTRAST_ANY, "Allergy to iodinated contrast"),
            ("contrast-allergy", "critical"),
        ),
        (CT_WITH, allergy(text="Shellfish"), None),  # ACR: not a contrast allergy
        (CT_WITH, allergy(text="Povidone-iodine"), None),
        (CT_WITH, allergy((SCT, "44588005"), "Iodine"), None),
        (CT_WITH, allergy((SCT, "91936005"), "Penicillin"), None),
        (CT_WITHOUT, allergy(IODINATED), None),
        (None, allergy(IODINATED), None),
    ],
)
def test_contrast_allergy(
    orderable: Orderable | None, record: dict[str, Any], expected: tuple[str, str] | None
) -> None:
    f = contrast_allergy(orderable=orderable, allergies=[record])
    assert ((f.kind, f.severity) if f else None) == expected
    if f is not None:
        assert f.data["allergies"][0]["reference"] == "AllergyIntolerance/a1"
        assert f.citation.startswith("ACR Manual on Contrast Media") and f.citation in f.detail


def test_allergy_citation_follows_the_contrast_class() -> None:
    ct = contrast_allergy(orderable=CT_WITH, allergies=[allergy(IODINATED)])
    mr = contrast_allergy(orderable=MR_WITH, allergies=[allergy(GBCA)])
    assert ct is not None and "Iodinated" in ct.citation
    assert mr is not None and "Gadolinium" in mr.citation


def test_specific_allergy_outranks_intolerance_and_unspecified() -> None:
    records = [
        allergy(CONTRAST_ANY),
        allergy(IODINATED, kind="intolerance"),
        {**allergy(IODINATED), "id": "a2"},
    ]
    f = contrast_allergy(orderable=CT_WITH, allergies=records)
    assert f is not None and f.kind == "contrast-allergy"
    assert [a["reference"] for a in f.data["allergies"]] == ["AllergyIntolerance/a2"]
    assert "CT Chest WO contrast" in f.detail  # the non-contrast alternative


def test_metformin_with_a_reported_bound_below_30() -> None:
    from cds_hooks.clinical.contrast import renal_risk

    egfr_lt_30 = {
        "id": "e",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "98979-8"}]},
        "effectiveDateTime": "2025-05-30",
        "valueQuantity": {"value": 30, "comparator": "<", "unit": "mL/min/{1.73_m2}"},
    }
    now = datetime.fromisoformat("2025-06-01T00:00:00+00:00")
    renal = renal_risk(orderable=CT_WITH, patient={}, observations=[egfr_lt_30], now=now)
    assert renal is not None and renal.kind == "egfr-below-30"
    f = metformin_advice(orderable=CT_WITH, medication_requests=[med(**rx("861007"))], egfr=renal)
    assert f is not None and "eGFR <30" in f.detail
