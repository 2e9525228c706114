"""The same features from the CDW (SQL, training) and from one patient's FHIR resources
(a hook's prefetch, inference), the imaging AI's findings (feature set v3) included."""

from __future__ import annotations

from datetime import date
from typing import Any

from cdw_cohort import SCT, UCUM, patient_resources, write_cohort

from cdw.etl import Etl
from cdw.features import feature_names, lab_codes, set_fingerprint, to_matrix
from cdw.features_fhir import features_from_fhir
from cdw.features_sql import cohort_features, features_from_cdw
from cdw.pseudonym import Pseudonymizer
from fhir_facade.store.sql_store import SqlStore

AI = "urn:cdss:ai"
# Per patient: (finding id, probability, effective) on its study img-<i> (docs/ai-findings.md).
# Patient 1 has two model versions' findings on one study and one after the 2024 index.
FINDINGS: dict[int, list[tuple[str, float, str]]] = {
    0: [("a", 0.83, "2024-01-15T09:15:00Z")],
    1: [
        ("a", 0.2, "2024-01-15T09:15:00Z"),
        ("b", 0.64, "2024-01-15T09:15:00Z"),
        ("c", 0.99, "2024-09-01T09:15:00Z"),
    ],
    2: [("a", 0.1, "2024-01-15T09:15:00Z")],
}


def _ai_finding(i: int, key: str, probability: float, when: str) -> dict[str, Any]:
    present = ("52101004", "Present") if probability >= 0.5 else ("2667000", "Absent")
    return {
        "resourceType": "Observation", "id": f"ai-{i}-{key}", "status": "final",
        "meta": {"tag": [{"system": AI, "code": "finding"}]},
        "category": [{"coding": [{"code": "imaging"}]}],
        "code": {"coding": [{"system": SCT, "code": "786838002"}]},
        "subject": {"reference": f"Patient/pat-{i}"}, "effectiveDateTime": when,
        "valueCodeableConcept": {"coding": [{"system": SCT, "code": present[0]}]},
        "derivedFrom": [{"reference": f"ImagingStudy/img-{i}"}],
        "component": [
            {"code": {"coding": [{"system": AI, "code": "model"}]},
             "valueString": f"nodule-net@{key}"},
            {"code": {"coding": [{"system": AI, "code": "probability"}]},
             "valueQuantity": {"value": probability, "unit": "1", "system": UCUM, "code": "1"}},
        ],
    }  # fmt: skip


def _with_ai_findings(url: str, cohort: list[list[dict[str, Any]]]) -> None:
    store = SqlStore(url)
    try:
        with store.unit() as unit:
            for i, found in FINDINGS.items():
                for key, probability, when in found:
                    finding = _ai_finding(i, key, probability, when)
                    unit.update(finding)
                    cohort[i].append(finding)
    finally:
        store.close()


def test_cdw_features_equal_both_ways(database_url: str, pz: Pseudonymizer) -> None:
    cohort = write_cohort(database_url, 4)
    _with_ai_findings(database_url, cohort)
    etl = Etl(database_url, database_url, pz)
    try:
        etl.run()
        with etl.cdw.connect() as conn:
            for i, resources in enumerate(cohort):
                for index in (date(2024, 6, 1), date(2023, 6, 1), date(2018, 1, 1)):
                    live = features_from_fhir(resources, index, pz)
                    shifted = pz.shift_date(index, f"pat-{i}")
                    trained = features_from_cdw(conn, pz.person_id(f"pat-{i}"), shifted)
                    assert live.values == trained.values, (i, index)
                    assert live.fingerprint == trained.fingerprint
                    assert live.index_date == trained.index_date == shifted
            rows = cohort_features(
                conn,
                [
                    (pz.person_id(f"pat-{i}"), pz.shift_date(date(2024, 6, 1), f"pat-{i}"))
                    for i in range(4)
                ],
            )
    finally:
        etl.close()
    values = rows[1].values
    assert values["lab_2160-0_n"] == 3
    assert values["lab_2160-0_latest"] == 1.5
    assert (
        values["lab_2160-0_slope_per_year"] is not None and values["lab_2160-0_slope_per_year"] > 0
    )
    assert values["smoking_current"] == 1 and values["sex_male"] == 0
    assert values["imaging_studies"] == 1 and values["prior_t2dm"] == 1
    assert values["age"] in (73, 74)  # 2024 - 1951, give or take the shift
    # AI: the highest probability before the index, Present findings counted, none -> missing
    ai = [(r.values["ai_nodule_probability_max"], r.values["ai_nodule_present_n"]) for r in rows]
    assert ai == [(0.83, 1), (0.64, 1), (0.1, 0), (None, None)]
    names, matrix = to_matrix(rows)
    assert names == feature_names() and matrix.shape == (4, len(names))
    assert len(lab_codes()) >= 20
    assert set_fingerprint(rows) == set_fingerprint(list(reversed(rows)))


def test_cdw_features_ignore_records_after_the_index(pz: Pseudonymizer) -> None:
    early = features_from_fhir(patient_resources(2), date(2018, 1, 1), pz)
    assert early.values["lab_2160-0_n"] == 0
    assert early.values["imaging_studies"] == 0
    assert early.values["prior_t2dm"] == 0
    assert early.values["smoking_current"] is None
    later = [_ai_finding(2, "a", 0.9, "2024-01-15T09:15:00Z")]
    assert (
        features_from_fhir(patient_resources(2) + later, date(2018, 1, 1), pz).values[
            "ai_nodule_probability_max"
        ]
        is None
    )
    now = features_from_fhir(patient_resources(2) + later, date(2024, 6, 1), pz).values
    assert now["ai_nodule_probability_max"] == 0.9 and now["ai_nodule_present_n"] == 1
