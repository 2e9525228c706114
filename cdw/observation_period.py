"""observation_period rebuilt from the event tables after each ETL run: one period per
person from the first to the last dated record (OMOP's rule for EHR data without enrolment),
type 32882 "Standard algorithm from EHR". A set-based rebuild in SQL: cheap next to the ETL."""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, insert, literal, select, union_all

from cdw.schema import (
    condition_occurrence,
    drug_exposure,
    measurement,
    metadata,
    observation,
    observation_period,
    procedure_occurrence,
    visit_occurrence,
)

PERIOD_TYPE = 32882


def rebuild_observation_periods(conn: Connection) -> None:
    events = union_all(
        select(visit_occurrence.c.person_id, visit_occurrence.c.visit_start_date.label("d")),
        select(visit_occurrence.c.person_id, visit_occurrence.c.visit_end_date),
        select(condition_occurrence.c.person_id, condition_occurrence.c.condition_start_date),
        select(drug_exposure.c.person_id, drug_exposure.c.drug_exposure_start_date),
        select(measurement.c.person_id, measurement.c.measurement_date),
        select(observation.c.person_id, observation.c.observation_date),
        select(procedure_occurrence.c.person_id, procedure_occurrence.c.procedure_date),
    ).subquery()
    person = metadata.tables["person"]
    spans = (
        select(
            events.c.person_id,
            events.c.person_id,
            func.min(events.c.d),
            func.max(events.c.d),
            literal(PERIOD_TYPE),
        )
        .where(events.c.person_id.in_(select(person.c.person_id)))
        .group_by(events.c.person_id)
    )
    conn.execute(delete(observation_period))
    conn.execute(
        insert(observation_period).from_select(
            [
                "observation_period_id",
                "person_id",
                "observation_period_start_date",
                "observation_period_end_date",
                "period_type_concept_id",
            ],
            spans,
        )
    )
