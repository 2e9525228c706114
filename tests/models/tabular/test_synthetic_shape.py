"""The synthetic FHIR records the model tests train on give the same features as the real data
path: the same generator patients seeded into the OpenEMR and SENAITE simulators through their
APIs, synced by the adapters into the facade, loaded by the ETL into the CDW. (No PACS here: the
records' ImagingStudy, shaped as the Orthanc adapter's, and the imaging AI's finding on it are
left out of the comparison.)"""

from __future__ import annotations

from pathlib import Path

from cdss.sources import SourceSettings, build_sources
from cdw.etl import Etl
from cdw.features_fhir import features_from_fhir
from cdw.mapping_ai import is_finding
from cdw.pseudonym import Pseudonymizer
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.sync.runner import Runner
from models.tabular import cohort
from models.tabular.synthetic import patient_record
from simulators.cohort.model import CohortGenerator
from simulators.cohort.seed import Targets, seed
from simulators.openemr.app import create_openemr_app
from simulators.senaite import create_senaite_app
from tests.support.postgres import free_port
from tests.support.server import serve

N, SEED = 12, 31


def test_synthetic_records_featurise_like_the_synced_sources(
    tmp_path: Path, pz: Pseudonymizer
) -> None:
    port = free_port()
    emr_app = create_openemr_app(public_base=f"http://127.0.0.1:{port}")
    with (
        serve(emr_app, "/apis/default/fhir/metadata", port) as emr,
        serve(create_senaite_app(), "/senaite/@@API/senaite/v1") as lis,
    ):
        targets = Targets(openemr_url=emr, senaite_url=f"{lis}/senaite")
        seed(N, SEED, targets, tmp_path, index_date=cohort.SYNTHETIC_INDEX)
        url = f"sqlite:///{tmp_path / 'cdss.db'}"
        sources = build_sources(
            SourceSettings(data_dir=tmp_path, openemr_url=emr, senaite_url=f"{lis}/senaite")
        )
        Runner(SqlStore(url), sources).run_once()
    cdw = f"sqlite:///{tmp_path / 'cdw.db'}"
    etl = Etl(url, cdw, pz)
    try:
        etl.run()
    finally:
        etl.close()
    data = cohort.build(url, cdw, tmp_path / "ground_truth.csv", pz)
    assert len(data.rows) == N and data.label_disagreements == 0
    gen = CohortGenerator(SEED, cohort.SYNTHETIC_INDEX)
    patients = {p.mrn: p for p in (gen.patient(i + 1) for i in range(N))}
    for member, row in zip(data.members, data.rows, strict=True):
        record = patient_record(patients[member.mrn], member.patient_id)
        no_pacs = [r for r in record if r["resourceType"] != "ImagingStudy" and not is_finding(r)]
        live = features_from_fhir(no_pacs, cohort.SYNTHETIC_INDEX, pz)
        assert (live.values["lab_718-7_n"] or 0) > 0
        assert live.values == row.values, member.mrn
