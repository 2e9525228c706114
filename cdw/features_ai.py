"""The imaging AI's findings as feature inputs, both ways side by side (feature set v3).

The pipeline's finding Observations (docs/ai-findings.md) land in the CDW as `measurement` rows
(cdw.mapping_ai): SNOMED CT 786838002 |Nodule of lung| as the source value, type concept 32882
(derived by an algorithm), the calibrated probability as `value_as_number` and Present /
Absent as `value_source_value`. Training aggregates them in SQL, inference over the rows the
ETL's mapper makes from a hook's prefetch; the two functions below select the same rows
(finding code, algorithm type, on or before the index date, a probability) and the same
aggregates, so `cdw.features.assemble` sees equal `AiStats` either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Connection, case, func, select

from cdw.features import AI_FINDING_CODE, AI_PRESENT_CODE, AI_TYPE_CONCEPT, AiStats
from cdw.schema import measurement


def ai_from_cdw(conn: Connection, person_id: int, index_date: date) -> AiStats:
    """AI nodule findings of a CDW person on or before the index date (CDW frame)."""
    m = measurement.c
    present = case((m.value_source_value == AI_PRESENT_CODE, 1), else_=0)
    n, hits, top = conn.execute(
        select(func.count(), func.sum(present), func.max(m.value_as_number)).where(
            m.person_id == person_id,
            m.measurement_source_value == AI_FINDING_CODE,
            m.measurement_type_concept_id == AI_TYPE_CONCEPT,
            m.measurement_date <= index_date,
            m.value_as_number.is_not(None),
        )
    ).one()
    if not n:
        return AiStats()
    return AiStats(int(n), int(hits or 0), float(top))


def ai_from_rows(rows: Iterable[dict[str, Any]], index_date: date) -> AiStats:
    """The same aggregates over one patient's mapped `measurement` rows (inference)."""
    found = [
        r
        for r in rows
        if r.get("measurement_source_value") == AI_FINDING_CODE
        and r.get("measurement_type_concept_id") == AI_TYPE_CONCEPT
        and r["measurement_date"] <= index_date
        and r.get("value_as_number") is not None
    ]
    if not found:
        return AiStats()
    return AiStats(
        len(found),
        sum(1 for r in found if r.get("value_source_value") == AI_PRESENT_CODE),
        max(float(r["value_as_number"]) for r in found),
    )
