"""Vocabulary: shipped concept ids, source codes mapped to standard ones, unmapped -> 0 and
counted, and an Athena export loaded by `cdss etl load-vocab`."""

from __future__ import annotations

from pathlib import Path

from cdw_cohort import write_cohort
from sqlalchemy import func, select
from typer.testing import CliRunner

from cdss.cli import app
from cdw.etl import Etl
from cdw.pseudonym import Pseudonymizer
from cdw.schema import condition_occurrence, drug_exposure, measurement
from cdw.schema_ext import cdw_unmapped, concept
from cdw.vocab import UNMAPPED, Mapped, Vocabulary, shipped


def test_cdw_shipped_vocabulary_matches_the_reference() -> None:
    rows = {(r.vocabulary_id, r.concept_code): r for r in shipped()}
    # clinical-reference.md §7, verified rows
    assert rows[("LOINC", "2160-0")].concept_id == 3016723
    assert rows[("LOINC", "718-7")].concept_id == 3000963
    assert rows[("LOINC", "4548-4")].concept_id == 3004410
    assert rows[("SNOMED", "44054006")].concept_id == 201826
    assert rows[("RxNorm", "860975")].concept_id == 40163924
    assert rows[("Gender", "F")].concept_id == 8532
    assert rows[("ICD10CM", "E11.9")].maps_to == 201826
    assert {r.status for r in shipped()} <= {"V", "V-name", "V-target", "UNVERIFIED"}
    ids = [r.concept_id for r in shipped() if r.concept_id is not None]
    assert len(ids) == len(set(ids))


def test_cdw_etl_maps_and_counts_unmapped(database_url: str, pz: Pseudonymizer) -> None:
    write_cohort(database_url, 2)
    etl = Etl(database_url, database_url, pz)
    try:
        etl.run()
        with etl.cdw.connect() as conn:
            crea = conn.execute(
                select(measurement.c.measurement_concept_id, measurement.c.unit_concept_id)
                .where(measurement.c.measurement_source_value == "2160-0")
            ).all()  # fmt: skip
            assert set(crea) == {(3016723, 8840)}
            conds = dict(
                conn.execute(
                    select(
                        condition_occurrence.c.condition_source_value,
                        condition_occurrence.c.condition_concept_id,
                    )
                ).all()
            )
            assert conds == {"E11.9": 201826, "Z99.99": 0}
            assert conn.execute(select(drug_exposure.c.drug_concept_id)).scalars().all() == [
                40163924, 40163924
            ]  # fmt: skip
            unmapped = conn.execute(
                select(func.count())
                .select_from(cdw_unmapped)
                .where(cdw_unmapped.c.code == "Z99.99")
            ).scalar_one()
            assert unmapped == 2
            assert Vocabulary(conn).lookup("LOINC", "nope") == UNMAPPED
    finally:
        etl.close()


def _tsv(*rows: tuple[str, ...]) -> str:
    return "".join("\t".join(row) + "\n" for row in rows)


def _athena(tmp: Path) -> Path:
    tmp.mkdir()
    concept_columns = (
        "concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id",
        "standard_concept", "concept_code", "valid_start_date", "valid_end_date", "invalid_reason",
    )  # fmt: skip
    (tmp / "CONCEPT.csv").write_text(
        _tsv(
            concept_columns,
            ("45576876", "Type 2 diabetes mellitus without complications", "Condition",
             "ICD10CM", "4-char billing code", "", "E11.9", "20070101", "20991231", ""),
            ("201826", "Type 2 diabetes mellitus", "Condition", "SNOMED", "Clinical Finding",
             "S", "44054006", "19700101", "20991231", ""),
        )
    )  # fmt: skip
    (tmp / "CONCEPT_RELATIONSHIP.csv").write_text(
        _tsv(
            ("concept_id_1", "concept_id_2", "relationship_id", "valid_start_date",
             "valid_end_date", "invalid_reason"),
            ("45576876", "201826", "Maps to", "20070101", "20991231", ""),
        )
    )  # fmt: skip
    return tmp


def test_cdw_load_vocab_from_athena(database_url: str, tmp_path: Path) -> None:
    directory = _athena(tmp_path / "athena")
    env = {
        "CDSS_DATA_DIR": str(tmp_path / "var"),
        "CDSS_CDW_DATABASE_URL": database_url,
    }
    result = CliRunner().invoke(app, ["etl", "load-vocab", str(directory)], env=env)
    assert result.exit_code == 0, result.output
    etl = Etl(database_url, database_url, Pseudonymizer(b"k" * 32))
    try:
        with etl.cdw.connect() as conn:
            vocab = Vocabulary(conn)
            assert vocab.lookup("ICD10CM", "E11.9") == Mapped(201826, 45576876)
            assert vocab.lookup("LOINC", "2160-0").concept_id == 3016723  # shipped, added back
            total = conn.execute(select(func.count()).select_from(concept)).scalar_one()
            assert total >= 2
    finally:
        etl.close()
