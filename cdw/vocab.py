"""Concept lookup for the ETL: a small shipped vocabulary subset, or a site's Athena export.

Lookups go to the standard `concept`/`concept_relationship` tables (so a full Athena load just
works) with a per-run cache; a source code whose vocabulary is not loaded falls back to the
shipped map (`data/vocabulary.csv`, rows marked V or UNVERIFIED with their source), and
anything else maps to concept 0 and is counted, never guessed.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select

from cdw.schema_ext import concept, concept_relationship

DATA = Path(__file__).parent / "data" / "vocabulary.csv"
SYSTEMS = {
    "http://loinc.org": "LOINC",
    "http://snomed.info/sct": "SNOMED",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD10CM",
    "http://hl7.org/fhir/sid/icd-10": "ICD10",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://unitsofmeasure.org": "UCUM",
    "http://dicom.nema.org/resources/ontology/DCM": "DICOM",
}
_START, _END = date(1970, 1, 1), date(2099, 12, 31)


@dataclass(frozen=True, slots=True)
class Mapped:
    concept_id: int
    source_concept_id: int


UNMAPPED = Mapped(0, 0)


@dataclass(frozen=True, slots=True)
class ShippedRow:
    vocabulary_id: str
    concept_code: str
    concept_id: int | None
    concept_name: str
    domain_id: str
    concept_class_id: str
    standard: bool
    maps_to: int | None
    status: str


@cache
def shipped() -> tuple[ShippedRow, ...]:
    with DATA.open(newline="") as fh:
        return tuple(
            ShippedRow(
                r["vocabulary_id"],
                r["concept_code"],
                int(r["concept_id"]) if r["concept_id"] else None,
                r["concept_name"],
                r["domain_id"],
                r["concept_class_id"],
                r["standard_concept"] == "S",
                int(r["maps_to"]) if r["maps_to"] else None,
                r["status"],
            )
            for r in csv.DictReader(fh)
        )


@cache
def _shipped_map() -> dict[tuple[str, str], Mapped]:
    out: dict[tuple[str, str], Mapped] = {}
    for row in shipped():
        if row.concept_id is not None:
            out[(row.vocabulary_id, row.concept_code)] = Mapped(row.concept_id, row.concept_id)
        elif row.maps_to is not None:
            out[(row.vocabulary_id, row.concept_code)] = Mapped(row.maps_to, 0)
    return out


def ensure_shipped(conn: Connection) -> int:
    """Insert the shipped concepts the `concept` table lacks; returns how many."""
    present = {cid for (cid,) in conn.execute(select(concept.c.concept_id))}
    rows = [
        {
            "concept_id": r.concept_id,
            "concept_name": r.concept_name[:255],
            "domain_id": r.domain_id,
            "vocabulary_id": r.vocabulary_id,
            "concept_class_id": r.concept_class_id[:20],
            "standard_concept": "S" if r.standard else None,
            "concept_code": r.concept_code,
            "valid_start_date": _START,
            "valid_end_date": _END,
            "invalid_reason": None,
        }
        for r in shipped()
        if r.concept_id is not None and r.concept_id not in present
    ]
    if rows:
        conn.execute(insert(concept), rows)
    return len(rows)


class Vocabulary:
    """(vocabulary, code) -> standard concept, via the CDW's vocabulary tables, then the
    shipped map; cached for the run (vocabulary size, not data size). Without a connection
    (inference from a hook's FHIR data), only the shipped map."""

    def __init__(
        self, conn: Connection | None, cache: dict[tuple[str, str], Mapped] | None = None
    ) -> None:
        self._conn = conn
        self._cache: dict[tuple[str, str], Mapped] = {} if cache is None else cache

    def lookup(self, vocabulary_id: str, code: str) -> Mapped:
        key = (vocabulary_id, code)
        found = self._cache.get(key)
        if found is None:
            found = self._resolve(vocabulary_id, code)
            self._cache[key] = found
        return found

    def system(self, system: str | None, code: str | None) -> Mapped:
        vocabulary_id = SYSTEMS.get(system or "")
        if vocabulary_id is None or not code:
            return UNMAPPED
        return self.lookup(vocabulary_id, code)

    def _resolve(self, vocabulary_id: str, code: str) -> Mapped:
        if self._conn is None:
            return _shipped_map().get((vocabulary_id, code), UNMAPPED)
        row = self._conn.execute(
            select(concept.c.concept_id, concept.c.standard_concept).where(
                concept.c.vocabulary_id == vocabulary_id, concept.c.concept_code == code
            )
        ).first()
        if row is not None:
            if row.standard_concept == "S":
                return Mapped(row.concept_id, row.concept_id)
            target = self._conn.execute(
                select(concept_relationship.c.concept_id_2).where(
                    concept_relationship.c.concept_id_1 == row.concept_id,
                    concept_relationship.c.relationship_id == "Maps to",
                    concept_relationship.c.invalid_reason.is_(None),
                )
            ).scalar()
            if target is not None:
                return Mapped(int(target), row.concept_id)
        return _shipped_map().get((vocabulary_id, code), UNMAPPED)


def _athena_rows(path: Path) -> Iterator[dict[str, Any]]:
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            yield {k.lower(): (v if v != "" else None) for k, v in row.items()}


def _athena_date(value: str | None) -> date:
    return datetime.strptime(value or "20991231", "%Y%m%d").date()


def load_athena(engine: Engine, directory: Path, *, batch: int = 5000) -> dict[str, int]:
    """Replace the vocabulary tables with an Athena export (CONCEPT.csv and
    CONCEPT_RELATIONSHIP.csv, tab-separated), streamed in batches; shipped rows that the
    export lacks are added back so the ETL's fixed concepts stay resolvable."""
    counts = {"concept": 0, "concept_relationship": 0}
    rel = directory / "CONCEPT_RELATIONSHIP.csv"
    if not (directory / "CONCEPT.csv").exists():
        raise FileNotFoundError(f"{directory}/CONCEPT.csv not found")
    with engine.begin() as conn:
        conn.execute(delete(concept_relationship))
        conn.execute(delete(concept))
        for name, table, path in (
            ("concept", concept, directory / "CONCEPT.csv"),
            ("concept_relationship", concept_relationship, rel),
        ):
            if not path.exists():
                continue
            pending: list[dict[str, Any]] = []
            for row in _athena_rows(path):
                row["valid_start_date"] = _athena_date(row.get("valid_start_date"))
                row["valid_end_date"] = _athena_date(row.get("valid_end_date"))
                pending.append({c.name: row.get(c.name) for c in table.columns})
                if len(pending) >= batch:
                    conn.execute(insert(table), pending)
                    counts[name] += len(pending)
                    pending.clear()
            if pending:
                conn.execute(insert(table), pending)
                counts[name] += len(pending)
        ensure_shipped(conn)
    return counts
