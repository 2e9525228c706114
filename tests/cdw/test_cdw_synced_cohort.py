"""The ETL on real synced data: a small cohort seeded through the sources' own APIs (OpenEMR
and SENAITE simulators on loopback, the real Orthanc), `cdss sync` into the facade, then the
ETL. Row counts per OMOP table are checked against the generator's source data, and no direct
identifier of the synced records (names, MRN, phone, address, exact birth date, sample ids,
DICOM UIDs, facade ids) survives in any CDW column."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, select

from cdw.etl import Etl
from cdw.pseudonym import Pseudonymizer
from cdw.schema import metadata
from fhir_facade.store.tables import resources
from simulators.cohort.model import generate
from simulators.cohort.seed import SeedSummary, Targets, seed
from simulators.openemr.app import create_openemr_app
from simulators.senaite import create_senaite_app
from tests.support import orthanc as orthanc_support
from tests.support.postgres import free_port
from tests.support.server import serve

N, SEED, INDEX = 6, 33, date(2025, 6, 1)  # seed 33: diabetes, a cancer and CTs among 6
KEY = b"test-cdw-synced-cohort-key-0123456789"


def _seed_and_sync(tmp: Path) -> tuple[str, SeedSummary]:
    reason = orthanc_support.available()
    if reason:
        pytest.fail(f"Orthanc is required: {reason}")
    port = free_port()
    emr_app = create_openemr_app(public_base=f"http://127.0.0.1:{port}")
    with (
        serve(emr_app, ready_path="/apis/default/fhir/metadata", port=port) as emr,
        serve(create_senaite_app(), ready_path="/senaite/@@API/senaite/v1/version") as lis,
        orthanc_support.orthanc(dicom_server=False) as pacs,
    ):
        targets = Targets(emr, senaite_url=f"{lis}/senaite", orthanc_url=pacs.url,
                          orthanc_auth=pacs.auth)  # fmt: skip
        summary = seed(N, SEED, targets, tmp / "cohort", index_date=INDEX)
        if summary.ct_studies:
            orthanc_support.wait_for_changes(
                pacs, "StableStudy", count=summary.ct_studies, since=0, timeout=60
            )
        db_url = f"sqlite:///{tmp / 'facade.db'}"
        env = {
            **os.environ,
            "CDSS_DATA_DIR": str(tmp / "var"),
            "CDSS_DATABASE_URL": db_url,
            "CDSS_OPENEMR_URL": emr,
            "CDSS_SENAITE_URL": f"{lis}/senaite",
            "CDSS_ORTHANC_URL": pacs.url,
            "CDSS_ORTHANC_USER": pacs.auth[0],
            "CDSS_ORTHANC_PASSWORD": pacs.auth[1],
        }
        done = subprocess.run(
            [sys.executable, "-m", "cdss.cli", "sync"],
            env=env, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    return db_url, summary


def _facade(db_url: str, rtype: str) -> list[dict[str, Any]]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(resources.c.content).where(
                resources.c.res_type == rtype, resources.c.deleted.is_(False)
            )
        ).scalars()
        found = [orjson.loads(c) for c in rows]
    engine.dispose()
    return found


def _identifiers(db_url: str) -> set[str]:
    """Direct identifiers as the facade holds them after sync (the source data)."""
    out: set[str] = set()
    for p in _facade(db_url, "Patient"):
        out.add(p["id"])
        out.add(p["birthDate"])
        for name in p.get("name") or []:
            out.update(n for n in [name.get("family"), *(name.get("given") or [])] if n)
        out.update(i["value"] for i in p.get("identifier") or [] if i.get("value"))
        out.update(t["value"] for t in p.get("telecom") or [] if t.get("value"))
        for a in p.get("address") or []:
            out.update(v for v in [*(a.get("line") or []), a.get("postalCode")] if v)
    for s in _facade(db_url, "Specimen"):
        out.add((s.get("accessionIdentifier") or {}).get("value", ""))
    for study in _facade(db_url, "ImagingStudy"):
        out.update(i["value"].removeprefix("urn:oid:") for i in study["identifier"])
        out.update(s["uid"] for s in study.get("series") or [])
    return {s for s in out if s and len(s) >= 4}


def test_cdw_etl_on_a_seeded_and_synced_cohort(tmp_path: Path) -> None:
    db_url, summary = _seed_and_sync(tmp_path)
    patients = generate(N, SEED, INDEX)
    cdw_url = f"sqlite:///{tmp_path / 'cdw.db'}"
    etl = Etl(db_url, cdw_url, Pseudonymizer(KEY))
    try:
        run = etl.run()
        assert not run.errors, run.errors
        with etl.cdw.connect() as conn:
            tables = {
                name: [r._mapping for r in conn.execute(select(table))]
                for name, table in metadata.tables.items()
                if name not in {"concept", "concept_relationship"}
            }
    finally:
        etl.close()
    counts = {name: len(rows) for name, rows in tables.items()}
    expected = {
        "person": N,
        "condition_occurrence": sum(
            len(p.conditions) + int(p.cancer and p.diagnosis_date is not None) for p in patients
        ),
        "drug_exposure": sum("diabetes" in p.conditions for p in patients),
        "visit_occurrence": sum(bool(p.labs) for p in patients),
        "observation": N,  # smoking status
        "measurement": summary.lab_results,
        "specimen": summary.samples,
        "procedure_occurrence": summary.samples + summary.ct_studies,
        "image_occurrence": sum(p.ct is not None for p in patients),
        "observation_period": N,
    }
    assert summary.samples > 0 and summary.lab_results > summary.samples
    assert expected["drug_exposure"] and expected["image_occurrence"] and summary.cancers
    assert {k: counts[k] for k in expected} == expected

    secrets = _identifiers(db_url)
    assert len(secrets) > 4 * N
    real_births = {p.birth_date for p in patients}
    for name, rows in tables.items():
        for row in rows:
            for column, value in row.items():
                text = str(value)
                assert KEY.decode() not in text
                leaked = [s for s in secrets if s in text]
                assert not leaked, (name, column, leaked)
                if name == "person" and isinstance(value, date | datetime):
                    day = value.date() if isinstance(value, datetime) else value
                    assert day not in real_births, (name, column)
    for row in tables["person"]:
        assert row["month_of_birth"] is None and row["day_of_birth"] is None
