"""One resource's mapping state (row ids, shifted dates, concept lookups), shared by the
mapping handlers in `cdw.mapping` and `cdw.mapping_obs`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cdw import fhir
from cdw.vocab import SYSTEMS, UNMAPPED, Mapped

if TYPE_CHECKING:
    from cdw.mapping import Mapper

EHR = 32817
Rows = dict[str, list[dict[str, Any]]]


@dataclass
class MapResult:
    rows: Rows = field(default_factory=dict)
    unmapped: list[tuple[str, str, str]] = field(default_factory=list)
    error: str | None = None


class Run:
    """One resource's mapping: row ids, shifted dates and concept lookups in one place."""

    def __init__(self, m: Mapper, res: dict[str, Any], patient: str, out: MapResult) -> None:
        self.m, self.res, self.patient, self.out = m, res, patient, out
        self.source = f"{res.get('resourceType')}/{res.get('id')}"
        self.person_id = m.pz.person_id(patient)

    def go(self, handler: Callable[[Run], None]) -> None:
        try:
            handler(self)
        except (KeyError, TypeError, ValueError) as exc:
            self.out.rows.clear()
            self.out.error = f"{type(exc).__name__}: {exc}"

    def row_id(self, table: str, n: int) -> int:
        return self.m.pz.integer(table, f"{self.source}#{n}")

    def when(self, *values: Any) -> datetime | None:
        for value in values:
            parsed = fhir.parse_instant(value)
            if parsed is not None:
                return self.m.pz.shift_datetime(parsed, self.patient)
        return None

    def concept(self, table: str, concept: Any) -> tuple[Mapped, str | None]:
        """The first coding that maps, else the first coding (unmapped, counted)."""
        codes = fhir.codings(concept)
        for system, code in codes:
            found = self.m.vocab.system(system, code)
            if found.concept_id:
                return found, code
        if codes:
            system, code = codes[0]
            self.out.unmapped.append((table, SYSTEMS.get(system or "", system or "?"), code))
            return UNMAPPED, code
        return UNMAPPED, None

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.out.rows.setdefault(table, []).append(row)

    def visit_id(self) -> int | None:
        enc = fhir.reference_id(self.res.get("encounter"), "Encounter")
        return self.m.pz.integer("visit_occurrence", f"Encounter/{enc}#0") if enc else None
