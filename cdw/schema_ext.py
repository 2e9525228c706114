"""OMOP CDM 5.4 health-system, metadata and vocabulary tables, the MI-CDM imaging extension
and the ETL's bookkeeping tables (split from `cdw.schema` to keep modules short)."""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, Float, Index, Integer, String, Table, Text

from cdw.schema import _concept, _id, _src, metadata

location = Table(
    "location",
    metadata,
    _id("location_id", pk=True),
    Column("address_1", String(50)),
    Column("address_2", String(50)),
    Column("city", String(50)),
    Column("state", String(2)),
    Column("zip", String(9)),
    Column("county", String(20)),
    _src("location_source_value"),
    _concept("country_concept_id"),
    Column("country_source_value", String(80)),
    Column("latitude", Float),
    Column("longitude", Float),
)

care_site = Table(
    "care_site",
    metadata,
    _id("care_site_id", pk=True),
    Column("care_site_name", String(255)),
    _concept("place_of_service_concept_id"),
    _id("location_id"),
    _src("care_site_source_value"),
    _src("place_of_service_source_value"),
)

provider = Table(
    "provider",
    metadata,
    _id("provider_id", pk=True),
    Column("provider_name", String(255)),
    Column("npi", String(20)),
    Column("dea", String(20)),
    _concept("specialty_concept_id"),
    _id("care_site_id"),
    Column("year_of_birth", Integer),
    _concept("gender_concept_id"),
    _src("provider_source_value"),
    _src("specialty_source_value"),
    _concept("specialty_source_concept_id"),
    _src("gender_source_value"),
    _concept("gender_source_concept_id"),
)

cdm_source = Table(
    "cdm_source",
    metadata,
    Column("cdm_source_name", String(255), primary_key=True),
    Column("cdm_source_abbreviation", String(25), nullable=False),
    Column("cdm_holder", String(255), nullable=False),
    Column("source_description", Text),
    Column("source_documentation_reference", String(255)),
    Column("cdm_etl_reference", String(255)),
    Column("source_release_date", Date, nullable=False),
    Column("cdm_release_date", Date, nullable=False),
    Column("cdm_version", String(10)),
    _concept("cdm_version_concept_id", nullable=False),
    Column("vocabulary_version", String(20), nullable=False),
)

fact_relationship = Table(
    "fact_relationship",
    metadata,
    _concept("domain_concept_id_1", nullable=False),
    _id("fact_id_1", nullable=False),
    _concept("domain_concept_id_2", nullable=False),
    _id("fact_id_2", nullable=False),
    _concept("relationship_concept_id", nullable=False),
    Index(None, "fact_id_1"),
)

concept = Table(
    "concept",
    metadata,
    Column("concept_id", Integer, primary_key=True, autoincrement=False),
    Column("concept_name", String(255), nullable=False),
    Column("domain_id", String(20), nullable=False),
    Column("vocabulary_id", String(20), nullable=False),
    Column("concept_class_id", String(20), nullable=False),
    Column("standard_concept", String(1)),
    Column("concept_code", String(50), nullable=False),
    Column("valid_start_date", Date, nullable=False),
    Column("valid_end_date", Date, nullable=False),
    Column("invalid_reason", String(1)),
    Index(None, "vocabulary_id", "concept_code"),
)

concept_relationship = Table(
    "concept_relationship",
    metadata,
    Column("concept_id_1", Integer, nullable=False),
    Column("concept_id_2", Integer, nullable=False),
    Column("relationship_id", String(20), nullable=False),
    Column("valid_start_date", Date, nullable=False),
    Column("valid_end_date", Date, nullable=False),
    Column("invalid_reason", String(1)),
    Index(None, "concept_id_1", "relationship_id"),
)

image_occurrence = Table(
    "image_occurrence",
    metadata,
    _id("image_occurrence_id", pk=True),
    _id("person_id", nullable=False),
    _id("procedure_occurrence_id", nullable=False),
    _id("visit_occurrence_id"),
    _concept("anatomic_site_concept_id"),
    Column("wadors_uri", String(255)),
    Column("local_path", String(255)),
    Column("image_occurrence_date", Date, nullable=False),
    Column("image_study_uid", String(250), nullable=False),
    Column("image_series_uid", String(250), nullable=False),
    _concept("modality_concept_id", nullable=False),
    Index(None, "person_id"),
)

image_feature = Table(
    "image_feature",
    metadata,
    _id("image_feature_id", pk=True),
    _id("person_id", nullable=False),
    _id("image_occurrence_id", nullable=False),
    _concept("image_feature_event_field_concept_id"),
    _id("image_feature_event_id"),
    _concept("image_feature_concept_id", nullable=False),
    _concept("image_feature_type_concept_id", nullable=False),
    _concept("image_finding_concept_id"),
    _id("image_finding_id"),
    _concept("anatomic_site_concept_id"),
    Column("alg_system", String(255)),
    Column("alg_datetime", DateTime),
)

cdw_state = Table(
    "cdw_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
"""The ETL watermark and run summaries (JSON), written in the same transaction as the rows."""

cdw_source_row = Table(
    "cdw_source_row",
    metadata,
    Column("source_key", String(64), nullable=False),
    Column("table_name", String(32), nullable=False),
    _id("row_id", nullable=False),
    Index(None, "source_key"),
)
"""Which CDW rows each source resource produced (keyed by a pseudonymised source key), so an
update or delete in the facade removes exactly those rows before re-inserting."""

cdw_unmapped = Table(
    "cdw_unmapped",
    metadata,
    Column("source_key", String(64), nullable=False),
    Column("table_name", String(32), nullable=False),
    Column("vocabulary", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Index(None, "source_key"),
)
"""Codes that mapped to concept 0, per source resource (so re-runs replace, not add)."""
