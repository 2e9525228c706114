"""Data-quality report of the CDW (`cdss etl report`): row counts, unmapped codes, orphans,
date sanity and the last run's errors. Everything is computed in SQL on the CDW alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, and_, extract, func, select
from sqlalchemy.sql import ColumnElement

from cdw import schema_ext
from cdw.etl import data_tables
from cdw.schema import metadata, person

# The main date column of each event table, for date sanity checks.
DATE_COLUMN = {
    "visit_occurrence": "visit_start_date",
    "condition_occurrence": "condition_start_date",
    "drug_exposure": "drug_exposure_start_date",
    "measurement": "measurement_date",
    "observation": "observation_date",
    "procedure_occurrence": "procedure_date",
    "specimen": "specimen_date",
    "image_occurrence": "image_occurrence_date",
    "death": "death_date",
}
END_COLUMN = {
    "visit_occurrence": ("visit_start_date", "visit_end_date"),
    "condition_occurrence": ("condition_start_date", "condition_end_date"),
    "drug_exposure": ("drug_exposure_start_date", "drug_exposure_end_date"),
}


@dataclass
class Report:
    rows: dict[str, int] = field(default_factory=dict)
    unmapped: list[tuple[str, str, str, int]] = field(default_factory=list)
    orphans: dict[str, int] = field(default_factory=dict)
    before_birth: dict[str, int] = field(default_factory=dict)
    in_future: dict[str, int] = field(default_factory=dict)
    end_before_start: dict[str, int] = field(default_factory=dict)
    last_run: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        problems = (self.orphans, self.before_birth, self.in_future, self.end_before_start)
        return not any(any(d.values()) for d in problems) and not self.last_run.get("errors")

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "unmapped": [
                {"table": t, "vocabulary": v, "code": c, "count": n} for t, v, c, n in self.unmapped
            ],
            "orphans": self.orphans,
            "before_birth": self.before_birth,
            "in_future": self.in_future,
            "end_before_start": self.end_before_start,
            "last_run": self.last_run,
            "ok": self.ok,
        }


def _count(conn: Connection, table: str, where: ColumnElement[bool] | None = None) -> int:
    t = metadata.tables[table]
    query = select(func.count()).select_from(t)
    if where is not None:
        query = query.where(where)
    return int(conn.execute(query).scalar_one())


def build_report(conn: Connection, *, today: date | None = None) -> Report:
    report = Report()
    for name in data_tables():
        report.rows[name] = _count(conn, name)
    un = schema_ext.cdw_unmapped
    report.unmapped = [
        (r.table_name, r.vocabulary, r.code, int(r.n))
        for r in conn.execute(
            select(un.c.table_name, un.c.vocabulary, un.c.code, func.count().label("n"))
            .group_by(un.c.table_name, un.c.vocabulary, un.c.code)
            .order_by(func.count().desc(), un.c.code)
        )
    ]
    # Shifted dates may run past today by the largest shift (at most a year by default).
    horizon = (today or date.today()) + timedelta(days=366)
    for name, column in DATE_COLUMN.items():
        t = metadata.tables[name]
        if name != "death":
            known = select(person.c.person_id)
            report.orphans[name] = _count(conn, name, t.c.person_id.not_in(known))
        born = (
            select(person.c.year_of_birth)
            .where(person.c.person_id == t.c.person_id)
            .scalar_subquery()
        )
        report.before_birth[name] = _count(conn, name, extract("year", t.c[column]) < born)
        report.in_future[name] = _count(conn, name, t.c[column] > horizon)
    for name, (start, end) in END_COLUMN.items():
        t = metadata.tables[name]
        report.end_before_start[name] = _count(
            conn, name, and_(t.c[end].is_not(None), t.c[end] < t.c[start])
        )
    state = schema_ext.cdw_state
    raw = conn.execute(select(state.c.value).where(state.c.key == "last_run")).scalar()
    report.last_run = dict(orjson.loads(raw)) if raw else {}
    return report
