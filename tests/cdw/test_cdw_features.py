"""The same features from the CDW (SQL, training) and from one patient's FHIR resources
(a hook's prefetch, inference)."""

from __future__ import annotations

from datetime import date

from cdw_cohort import patient_resources, write_cohort

from cdw.etl import Etl
from cdw.features import feature_names, lab_codes, set_fingerprint, to_matrix
from cdw.features_fhir import features_from_fhir
from cdw.features_sql import cohort_features, features_from_cdw
from cdw.pseudonym import Pseudonymizer


def test_cdw_features_equal_both_ways(database_url: str, pz: Pseudonymizer) -> None:
    cohort = write_cohort(database_url, 4)
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
