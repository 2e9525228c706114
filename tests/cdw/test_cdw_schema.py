"""The CDW's own migrations: every OMOP table, its own version table, beside the facade."""

from __future__ import annotations

from sqlalchemy import inspect, text

from cdw.migrations import upgrade
from fhir_facade.store.engine import make_engine
from fhir_facade.store.sql_store import SqlStore

OMOP = {
    "person", "observation_period", "visit_occurrence", "condition_occurrence", "drug_exposure",
    "measurement", "observation", "procedure_occurrence", "specimen", "death", "location",
    "care_site", "provider", "cdm_source", "fact_relationship", "concept",
    "concept_relationship", "image_occurrence", "image_feature",
}  # fmt: skip


def test_cdw_schema_shares_a_database_with_the_facade(database_url: str) -> None:
    SqlStore(database_url).close()  # the facade's schema first
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            before = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        upgrade(engine)
        upgrade(engine)  # idempotent
        names = set(inspect(engine).get_table_names())
        assert names >= OMOP | {"resources", "alembic_version", "cdw_alembic_version"}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM cdw_alembic_version")).scalar()
            after = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert before and after == before
        columns = {c["name"] for c in inspect(engine).get_columns("measurement")}
        assert {"value_as_number", "operator_concept_id", "range_low", "range_high",
                "unit_source_value", "measurement_source_value"} <= columns  # fmt: skip
        person = {c["name"]: c for c in inspect(engine).get_columns("person")}
        assert not person["year_of_birth"]["nullable"]
    finally:
        engine.dispose()
