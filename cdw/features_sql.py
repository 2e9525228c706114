"""Feature inputs from the CDW, aggregated in SQL (the training path of `cdw.features`).

The same aggregates as `cdw.features_fhir` computes in Python: per lab code the count, the
sums for a least-squares slope (x = years from the index date) and the latest value.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Connection, func, literal, select

from cdw.features import (
    DAYS_PER_YEAR,
    SMOKING_LOINC,
    FeatureRow,
    Inputs,
    LabStats,
    assemble,
    lab_codes,
)
from cdw.features_ai import ai_from_cdw
from cdw.schema import condition_occurrence, measurement, observation, person
from cdw.schema_ext import image_occurrence


def _years_from(conn: Connection, column: Any, index_date: date) -> Any:
    """(column - index) in years, in the dialect's own date arithmetic."""
    if conn.dialect.name == "sqlite":
        days = func.julianday(column) - func.julianday(literal(index_date.isoformat()))
    else:
        days = column - literal(index_date)
    return days / DAYS_PER_YEAR


def _labs(conn: Connection, person_id: int, index_date: date) -> dict[str, LabStats]:
    m = measurement.c
    where = (
        m.person_id == person_id,
        m.measurement_date <= index_date,
        m.value_as_number.is_not(None),
        m.measurement_source_value.in_(lab_codes()),
    )
    x = _years_from(conn, m.measurement_date, index_date)
    y = m.value_as_number
    sums = conn.execute(
        select(
            m.measurement_source_value,
            func.count(),
            func.sum(x),
            func.sum(y),
            func.sum(x * y),
            func.sum(x * x),
        )
        .where(*where)
        .group_by(m.measurement_source_value)
    ).all()
    rank = (
        func.row_number()
        .over(
            partition_by=m.measurement_source_value,
            order_by=(
                m.measurement_date.desc(),
                m.measurement_datetime.desc(),
                m.measurement_id.desc(),
            ),
        )
        .label("rank")
    )
    ranked = select(m.measurement_source_value.label("code"), y.label("y"), rank).where(*where)
    sub = ranked.subquery()
    latest = dict(conn.execute(select(sub.c.code, sub.c.y).where(sub.c.rank == 1)).all())
    return {
        code: LabStats(int(n), float(sx), float(sy), float(sxy), float(sxx), latest.get(code))
        for code, n, sx, sy, sxy, sxx in sums
    }


def inputs_from_cdw(conn: Connection, person_id: int, index_date: date) -> Inputs:
    who = conn.execute(
        select(person.c.year_of_birth, person.c.gender_concept_id).where(
            person.c.person_id == person_id
        )
    ).first()
    o = observation.c
    smoking = conn.execute(
        select(o.value_source_value)
        .where(
            o.person_id == person_id,
            o.observation_source_value == SMOKING_LOINC,
            o.observation_date <= index_date,
        )
        .order_by(o.observation_date.desc(), o.observation_datetime.desc(), o.observation_id.desc())
        .limit(1)
    ).scalar()
    i = image_occurrence.c
    studies = conn.execute(
        select(func.count(func.distinct(i.image_study_uid))).where(
            i.person_id == person_id, i.image_occurrence_date <= index_date
        )
    ).scalar_one()
    c = condition_occurrence.c
    concepts = conn.execute(
        select(c.condition_concept_id)
        .distinct()
        .where(c.person_id == person_id, c.condition_start_date <= index_date)
    ).scalars()
    return Inputs(
        who.year_of_birth if who else None,
        who.gender_concept_id if who else None,
        smoking,
        _labs(conn, person_id, index_date),
        int(studies),
        frozenset(int(x) for x in concepts),
        ai_from_cdw(conn, person_id, index_date),
    )


def features_from_cdw(conn: Connection, person_id: int, index_date: date) -> FeatureRow:
    """The feature row of a CDW person at an index date (CDW, i.e. shifted, frame)."""
    return assemble(person_id, index_date, inputs_from_cdw(conn, person_id, index_date))


def cohort_features(conn: Connection, cohort: Iterable[tuple[int, date]]) -> list[FeatureRow]:
    return [features_from_cdw(conn, pid, index) for pid, index in cohort]
