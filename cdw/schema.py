"""OMOP CDM 5.4 tables (plus the MI-CDM imaging extension) as SQLAlchemy Core models.

Names and columns are the standard ones (OHDSI `OMOPCDM_postgresql_5.4_ddl.sql`), so OHDSI
tools (Achilles, DQD, ATLAS) can read the CDW as is. Two deliberate deviations, both
compatible with those tools: every `*_id` key is BIGINT (ids are derived from keyed hashes of
the source keys, so re-runs reproduce the same ids without a lookup table), and NUMERIC
columns are floats (SQLite has no exact decimal). Foreign keys are not declared: the OHDSI DDL
adds them in a separate, optional script, and the delete-then-insert ETL would fight them.

The `cdw_*` tables are the ETL's own bookkeeping (watermark, which rows came from which
source resource, unmapped codes); they are not part of OMOP and hold no identifiers.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = BigInteger


def _id(name: str, *, pk: bool = False, nullable: bool = True) -> Column[int]:
    return Column(name, ID, primary_key=pk, nullable=nullable and not pk, autoincrement=False)


def _concept(name: str, *, nullable: bool = True) -> Column[int]:
    return Column(name, Integer, nullable=nullable)


def _src(name: str, length: int = 50) -> Column[str]:
    return Column(name, String(length), nullable=True)


person = Table(
    "person",
    metadata,
    _id("person_id", pk=True),
    _concept("gender_concept_id", nullable=False),
    Column("year_of_birth", Integer, nullable=False),
    Column("month_of_birth", Integer),
    Column("day_of_birth", Integer),
    Column("birth_datetime", DateTime),
    _concept("race_concept_id", nullable=False),
    _concept("ethnicity_concept_id", nullable=False),
    _id("location_id"),
    _id("provider_id"),
    _id("care_site_id"),
    _src("person_source_value"),
    _src("gender_source_value"),
    _concept("gender_source_concept_id"),
    _src("race_source_value"),
    _concept("race_source_concept_id"),
    _src("ethnicity_source_value"),
    _concept("ethnicity_source_concept_id"),
)

observation_period = Table(
    "observation_period",
    metadata,
    _id("observation_period_id", pk=True),
    _id("person_id", nullable=False),
    Column("observation_period_start_date", Date, nullable=False),
    Column("observation_period_end_date", Date, nullable=False),
    _concept("period_type_concept_id", nullable=False),
    Index(None, "person_id"),
)

visit_occurrence = Table(
    "visit_occurrence",
    metadata,
    _id("visit_occurrence_id", pk=True),
    _id("person_id", nullable=False),
    _concept("visit_concept_id", nullable=False),
    Column("visit_start_date", Date, nullable=False),
    Column("visit_start_datetime", DateTime),
    Column("visit_end_date", Date, nullable=False),
    Column("visit_end_datetime", DateTime),
    _concept("visit_type_concept_id", nullable=False),
    _id("provider_id"),
    _id("care_site_id"),
    _src("visit_source_value"),
    _concept("visit_source_concept_id"),
    _concept("admitted_from_concept_id"),
    _src("admitted_from_source_value"),
    _concept("discharged_to_concept_id"),
    _src("discharged_to_source_value"),
    _id("preceding_visit_occurrence_id"),
    Index(None, "person_id"),
)

condition_occurrence = Table(
    "condition_occurrence",
    metadata,
    _id("condition_occurrence_id", pk=True),
    _id("person_id", nullable=False),
    _concept("condition_concept_id", nullable=False),
    Column("condition_start_date", Date, nullable=False),
    Column("condition_start_datetime", DateTime),
    Column("condition_end_date", Date),
    Column("condition_end_datetime", DateTime),
    _concept("condition_type_concept_id", nullable=False),
    _concept("condition_status_concept_id"),
    Column("stop_reason", String(20)),
    _id("provider_id"),
    _id("visit_occurrence_id"),
    _id("visit_detail_id"),
    _src("condition_source_value"),
    _concept("condition_source_concept_id"),
    _src("condition_status_source_value"),
    Index(None, "person_id"),
)

drug_exposure = Table(
    "drug_exposure",
    metadata,
    _id("drug_exposure_id", pk=True),
    _id("person_id", nullable=False),
    _concept("drug_concept_id", nullable=False),
    Column("drug_exposure_start_date", Date, nullable=False),
    Column("drug_exposure_start_datetime", DateTime),
    Column("drug_exposure_end_date", Date, nullable=False),
    Column("drug_exposure_end_datetime", DateTime),
    Column("verbatim_end_date", Date),
    _concept("drug_type_concept_id", nullable=False),
    Column("stop_reason", String(20)),
    Column("refills", Integer),
    Column("quantity", Float),
    Column("days_supply", Integer),
    Column("sig", Text),
    _concept("route_concept_id"),
    Column("lot_number", String(50)),
    _id("provider_id"),
    _id("visit_occurrence_id"),
    _id("visit_detail_id"),
    _src("drug_source_value"),
    _concept("drug_source_concept_id"),
    _src("route_source_value"),
    _src("dose_unit_source_value"),
    Index(None, "person_id"),
)

measurement = Table(
    "measurement",
    metadata,
    _id("measurement_id", pk=True),
    _id("person_id", nullable=False),
    _concept("measurement_concept_id", nullable=False),
    Column("measurement_date", Date, nullable=False),
    Column("measurement_datetime", DateTime),
    Column("measurement_time", String(10)),
    _concept("measurement_type_concept_id", nullable=False),
    _concept("operator_concept_id"),
    Column("value_as_number", Float),
    _concept("value_as_concept_id"),
    _concept("unit_concept_id"),
    Column("range_low", Float),
    Column("range_high", Float),
    _id("provider_id"),
    _id("visit_occurrence_id"),
    _id("visit_detail_id"),
    _src("measurement_source_value"),
    _concept("measurement_source_concept_id"),
    _src("unit_source_value"),
    _concept("unit_source_concept_id"),
    _src("value_source_value"),
    _id("measurement_event_id"),
    _concept("meas_event_field_concept_id"),
    Index(None, "person_id", "measurement_concept_id", "measurement_date"),
)

observation = Table(
    "observation",
    metadata,
    _id("observation_id", pk=True),
    _id("person_id", nullable=False),
    _concept("observation_concept_id", nullable=False),
    Column("observation_date", Date, nullable=False),
    Column("observation_datetime", DateTime),
    _concept("observation_type_concept_id", nullable=False),
    Column("value_as_number", Float),
    Column("value_as_string", String(60)),
    _concept("value_as_concept_id"),
    _concept("qualifier_concept_id"),
    _concept("unit_concept_id"),
    _id("provider_id"),
    _id("visit_occurrence_id"),
    _id("visit_detail_id"),
    _src("observation_source_value"),
    _concept("observation_source_concept_id"),
    _src("unit_source_value"),
    _src("qualifier_source_value"),
    _src("value_source_value"),
    _id("observation_event_id"),
    _concept("obs_event_field_concept_id"),
    Index(None, "person_id", "observation_concept_id"),
)

procedure_occurrence = Table(
    "procedure_occurrence",
    metadata,
    _id("procedure_occurrence_id", pk=True),
    _id("person_id", nullable=False),
    _concept("procedure_concept_id", nullable=False),
    Column("procedure_date", Date, nullable=False),
    Column("procedure_datetime", DateTime),
    Column("procedure_end_date", Date),
    Column("procedure_end_datetime", DateTime),
    _concept("procedure_type_concept_id", nullable=False),
    _concept("modifier_concept_id"),
    Column("quantity", Integer),
    _id("provider_id"),
    _id("visit_occurrence_id"),
    _id("visit_detail_id"),
    _src("procedure_source_value"),
    _concept("procedure_source_concept_id"),
    _src("modifier_source_value"),
    Index(None, "person_id"),
)

specimen = Table(
    "specimen",
    metadata,
    _id("specimen_id", pk=True),
    _id("person_id", nullable=False),
    _concept("specimen_concept_id", nullable=False),
    _concept("specimen_type_concept_id", nullable=False),
    Column("specimen_date", Date, nullable=False),
    Column("specimen_datetime", DateTime),
    Column("quantity", Float),
    _concept("unit_concept_id"),
    _concept("anatomic_site_concept_id"),
    _concept("disease_status_concept_id"),
    _src("specimen_source_id"),
    _src("specimen_source_value"),
    _src("unit_source_value"),
    _src("anatomic_site_source_value"),
    _src("disease_status_source_value"),
    Index(None, "person_id"),
)

death = Table(
    "death",
    metadata,
    _id("person_id", pk=True),
    Column("death_date", Date, nullable=False),
    Column("death_datetime", DateTime),
    _concept("death_type_concept_id"),
    _concept("cause_concept_id"),
    _src("cause_source_value"),
    _concept("cause_source_concept_id"),
)
