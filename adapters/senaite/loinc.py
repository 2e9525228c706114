"""The SENAITE keyword -> LOINC table: which LOINC code an analysis result is, given its unit.

SENAITE knows analyses by the lab's own `Keyword`, so the facade needs a table. The shipped one
(`keyword_loinc.csv`, codes from docs/clinical-reference.md section 3) matches the simulator's
keywords; a site points `CDSS_SENAITE_LOINC_TABLE` at its own file with the same columns:

    keyword,loinc,display,ucum,units

`units` lists (`|`-separated UCUM codes) the units a row accepts. A keyword may have several rows
when the property differs by unit (creatinine mg/dL is 2160-0, umol/L is 14682-9): the result's
unit picks the row, and a unit no row accepts yields no LOINC code rather than a wrong one.
Codes are checked (format and LOINC's mod-10 check digit) when the table loads.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

LOINC_SYSTEM = "http://loinc.org"
TABLE_ENV = "CDSS_SENAITE_LOINC_TABLE"
_CODE = re.compile(r"^(\d{1,7})-(\d)$")
_COLUMNS = ("keyword", "loinc", "display", "ucum", "units")


class LoincTableError(ValueError):
    """A table file that cannot be used (missing columns, a malformed LOINC code)."""


@dataclass(frozen=True, slots=True)
class LoincEntry:
    keyword: str
    loinc: str
    display: str
    ucum: str
    units: frozenset[str]


def check_digit(base: str) -> int:
    """LOINC's mod-10 check digit (the Luhn algorithm over the digits before the hyphen)."""
    total = 0
    for i, ch in enumerate(reversed(base)):
        digit = int(ch) * (2 if i % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return (10 - total % 10) % 10


def valid_loinc(code: str) -> bool:
    match = _CODE.match(code)
    return match is not None and check_digit(match.group(1)) == int(match.group(2))


class LoincTable:
    """Keyword (case-insensitive) -> rows; `lookup` picks the row accepting the result's unit."""

    def __init__(self, entries: Iterable[LoincEntry], *, origin: str = "<memory>") -> None:
        self.origin = origin
        self._rows: dict[str, list[LoincEntry]] = {}
        for entry in entries:
            if not valid_loinc(entry.loinc):
                raise LoincTableError(f"{origin}: {entry.keyword}: bad LOINC code {entry.loinc!r}")
            self._rows.setdefault(entry.keyword.casefold(), []).append(entry)

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._rows.values())

    def keywords(self) -> set[str]:
        return {rows[0].keyword for rows in self._rows.values()}

    def rows(self, keyword: str) -> list[LoincEntry]:
        return list(self._rows.get(keyword.casefold(), []))

    def lookup(self, keyword: str, unit: str | None) -> LoincEntry | None:
        """The row for this keyword and UCUM unit; with no unit, only an unambiguous keyword."""
        rows = self.rows(keyword)
        if unit is None:
            return rows[0] if len(rows) == 1 else None
        for row in rows:
            if unit in row.units:
                return row
        return None

    @classmethod
    def from_csv(cls, path: Path) -> LoincTable:
        with path.open(newline="", encoding="utf-8") as handle:
            return cls.from_lines(handle, origin=str(path))

    @classmethod
    def from_lines(cls, lines: Iterable[str], *, origin: str) -> LoincTable:
        reader = csv.DictReader(lines)
        missing = set(_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise LoincTableError(f"{origin}: missing columns {sorted(missing)}")
        entries = []
        for row in reader:
            if not (row.get("keyword") or "").strip():
                continue
            ucum = row["ucum"].strip()
            units = {u.strip() for u in (row.get("units") or "").split("|") if u.strip()}
            entries.append(
                LoincEntry(
                    keyword=row["keyword"].strip(),
                    loinc=row["loinc"].strip(),
                    display=row["display"].strip(),
                    ucum=ucum,
                    units=frozenset(units | {ucum}),
                )
            )
        return cls(entries, origin=origin)


@cache
def _load(path: str | None) -> LoincTable:
    if path:
        return LoincTable.from_csv(Path(path))
    text = resources.files("adapters.senaite").joinpath("keyword_loinc.csv").read_text("utf-8")
    return LoincTable.from_lines(text.splitlines(), origin="adapters/senaite/keyword_loinc.csv")


def load_table(path: Path | str | None = None) -> LoincTable:
    """The given file, else the file named by CDSS_SENAITE_LOINC_TABLE, else the shipped one."""
    chosen = path or os.environ.get(TABLE_ENV) or None
    return _load(str(chosen) if chosen else None)
