"""The training cohort from the CDW: truth linked to pseudonymous persons through the facade's
MRNs and the key, outcomes read from the CDW, features equal to the inference path's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cdw.etl import Etl
from cdw.features_fhir import features_from_fhir
from cdw.pseudonym import Pseudonymizer
from fhir_facade.store.sql_store import SqlStore
from models.tabular import ceiling, cohort
from models.tabular.synthetic import patient_record
from simulators.cohort.model import CohortGenerator
from simulators.cohort.truth import write_truth

N = 40


def test_cohort_from_the_cdw_links_truth_and_reads_outcomes(
    tmp_path: Path, pz: Pseudonymizer
) -> None:
    gen = CohortGenerator(21, cohort.SYNTHETIC_INDEX)
    patients = [gen.patient(i + 1) for i in range(N)]
    records = [patient_record(p, f"pt-{i}") for i, p in enumerate(patients)]
    url = f"sqlite:///{tmp_path / 'cdss.db'}"
    store = SqlStore(url)
    try:
        with store.unit() as unit:
            for record in records[:-1]:  # the last patient never reaches the facade
                for resource in record:
                    unit.update(resource)
    finally:
        store.close()
    etl = Etl(url, f"sqlite:///{tmp_path / 'cdw.db'}", pz)
    try:
        etl.run()
    finally:
        etl.close()
    truth = tmp_path / "ground_truth.csv"
    write_truth(truth, patients, 21, cohort.SYNTHETIC_INDEX)

    data = cohort.build(url, f"sqlite:///{tmp_path / 'cdw.db'}", truth, pz)

    assert data.unlinked == 1 and len(data.rows) == N - 1
    assert data.label_disagreements == 0
    assert data.labels.tolist() == [int(p.cancer) for p in patients[:-1]]
    assert sum(data.labels) > 0  # the outcome path is exercised, not only zeros
    for i, (member, row) in enumerate(zip(data.members, data.rows, strict=True)):
        assert member.patient_id == f"pt-{i}" and member.person_id == pz.person_id(f"pt-{i}")
        live = features_from_fhir(records[i], cohort.SYNTHETIC_INDEX, pz)
        assert row.values == live.values and row.index_date == live.index_date


def test_missing_truth_or_empty_facade_say_what_to_do(tmp_path: Path, pz: Pseudonymizer) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    try:
        cohort.build(url, url, tmp_path / "none.csv", pz)
    except cohort.CohortError as exc:
        assert "cdss seed" in str(exc)
    else:
        raise AssertionError("no error")
    gen = CohortGenerator(2, cohort.SYNTHETIC_INDEX)
    write_truth(tmp_path / "t.csv", [gen.patient(1)], 2, cohort.SYNTHETIC_INDEX)
    SqlStore(url).close()
    try:
        cohort.build(url, url, tmp_path / "t.csv", pz)
    except cohort.CohortError as exc:
        assert "cdss sync" in str(exc)
    else:
        raise AssertionError("no error")


def test_observable_ceiling_is_the_posterior_without_imaging_and_pack_years() -> None:
    gen = CohortGenerator(4, cohort.SYNTHETIC_INDEX)
    from simulators.cohort.truth import truth_row

    rows = [
        {k: str(v) for k, v in truth_row(gen.patient(i + 1), 4, cohort.SYNTHETIC_INDEX).items()}
        for i in range(300)
    ]
    full, observable = ceiling.full_scores(rows), ceiling.observable_scores(rows)
    never_no_ct = [i for i, r in enumerate(rows) if r["smoking"] == "never" and not r["study_uid"]]
    # nothing hidden from a never smoker without CT: both posteriors agree
    assert np.allclose(full[never_no_ct], observable[never_no_ct], rtol=1e-4, atol=1e-6)
    with_ct = [i for i, r in enumerate(rows) if r["study_uid"]]
    assert not np.allclose(full[with_ct], observable[with_ct], atol=1e-3)
    # a posterior is calibrated: its mean matches the mean of the full posterior
    assert abs(observable.mean() - full.mean()) < 0.02
