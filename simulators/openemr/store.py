"""In-memory tables holding records the way OpenEMR's MySQL tables hold them.

Rows are plain dicts keyed by OpenEMR's column names, with values as MySQL returns them through
PHP (strings for dates, `"YYYY-MM-DD HH:MM:SS"`), so the standard API can answer with the rows
themselves and the FHIR renderer (`render.py`) works from the same inputs as OpenEMR's services.
The simulator's local time zone is UTC, which is how a server configured with UTC renders them.

Two things OpenEMR keeps elsewhere are columns here: `_last_updated` (the update timestamp the
FHIR `meta.lastUpdated` and `_lastUpdated` search use; OpenEMR spreads it over `date`,
`last_update`, `modifydate` ... per table) and, on `procedure_order`, the first
`procedure_order_code` row (`procedure_code`, `procedure_name`), since OpenEMR renders one
ServiceRequest per order from it. Internal columns start with `_` and never leave through the API.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

Row = dict[str, Any]

SQL_DATETIME = "%Y-%m-%d %H:%M:%S"

TABLES: dict[str, str] = {
    # table name -> primary key column, as in OpenEMR's schema
    "patient_data": "id",
    "users": "id",
    "form_encounter": "id",
    "forms": "id",
    "form_vitals": "id",
    "lists": "id",
    "prescriptions": "id",
    "history_data": "id",
    "procedure_providers": "ppid",
    "procedure_order": "procedure_order_id",
    "procedure_specimen": "procedure_specimen_id",
    "procedure_report": "procedure_report_id",
    "procedure_result": "procedure_result_id",
    "documents": "id",
    "categories": "id",
}

# OpenEMR's default document categories (sql/database.sql), the tree `?path=` walks.
DEFAULT_CATEGORIES: tuple[tuple[int, str, int], ...] = (
    (1, "Categories", 0),
    (2, "Lab Report", 1),
    (3, "Medical Record", 1),
    (4, "Patient Information", 1),
    (5, "Patient ID card", 4),
    (6, "Advance Directive", 1),
    (7, "Patient Photograph", 4),
    (8, "Imaging", 1),
)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def sql_datetime(moment: datetime) -> str:
    """A datetime as MySQL hands it to PHP, in the simulator's (UTC) local time."""
    return moment.astimezone(UTC).strftime(SQL_DATETIME)


UNIQUE = {"patient_data": "pid", "form_encounter": "encounter"}
"""Secondary unique keys looked up on every render (a patient's UUID from its pid, an
encounter's from its number): indexed so a search stays linear in the rows it renders."""


class Table:
    """One table: auto-increment primary key, `uuid` column, insertion order kept."""

    def __init__(self, name: str, pk: str) -> None:
        self.name = name
        self.pk = pk
        self.unique = UNIQUE.get(name)
        self._rows: dict[int, Row] = {}
        self._by_uuid: dict[str, Row] = {}
        self._by_unique: dict[str, Row] = {}
        self._next = 1

    def insert(self, row: Mapping[str, Any], *, stamp: str) -> Row:
        new = dict(row)
        key = int(new.get(self.pk) or self._next)
        if key in self._rows:
            raise ValueError(f"duplicate {self.name}.{self.pk} {key}")
        self._next = max(self._next, key + 1)
        new[self.pk] = key
        new.setdefault("uuid", str(uuid.uuid4()))
        new.setdefault("_last_updated", stamp)
        self._rows[key] = new
        self._by_uuid[str(new["uuid"])] = new
        if self.unique and new.get(self.unique) not in (None, ""):
            self._by_unique[str(new[self.unique])] = new
        return new

    def update(self, key: int, changes: Mapping[str, Any], *, stamp: str) -> Row:
        row = self._rows[key]
        fixed = {self.pk, "uuid", self.unique}
        row.update({k: v for k, v in changes.items() if k not in fixed})
        row["_last_updated"] = stamp
        return row

    def get(self, key: int | str | None) -> Row | None:
        try:
            return self._rows.get(int(key)) if key is not None else None
        except ValueError:
            return None

    def by_uuid(self, value: str) -> Row | None:
        return self._by_uuid.get(value)

    def by_unique(self, value: Any) -> Row | None:
        return self._by_unique.get(str(value)) if value not in (None, "") else None

    def rows(self) -> list[Row]:
        return list(self._rows.values())

    def where(self, **equals: Any) -> list[Row]:
        return [r for r in self.rows() if all(r.get(k) == v for k, v in equals.items())]


class OpenEMRStore:
    """All tables plus OpenEMR's `uuid_mapping` (one UUID per derived FHIR resource)."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.tables = {name: Table(name, pk) for name, pk in TABLES.items()}
        self._mapping: dict[tuple[str, str], str] = {}
        self._mapped_back: dict[str, tuple[str, str]] = {}
        for cid, name, parent in DEFAULT_CATEGORIES:
            self.insert("categories", {"id": cid, "name": name, "parent": parent})

    def table(self, name: str) -> Table:
        return self.tables[name]

    def now(self) -> str:
        return sql_datetime(self.clock())

    def insert(self, table: str, row: Mapping[str, Any]) -> Row:
        with self.lock:
            return self.tables[table].insert(row, stamp=self.now())

    def update(self, table: str, key: int, changes: Mapping[str, Any]) -> Row:
        with self.lock:
            return self.tables[table].update(key, changes, stamp=self.now())

    def rows(self, table: str) -> list[Row]:
        with self.lock:
            return self.tables[table].rows()

    # --- patients -------------------------------------------------------------------------

    def patient_by_pid(self, pid: int | str | None) -> Row | None:
        return self.tables["patient_data"].by_unique(pid)

    def patient_by_uuid(self, puuid: str) -> Row | None:
        return self.tables["patient_data"].by_uuid(puuid)

    def puuid(self, pid: int | str | None) -> str | None:
        row = self.patient_by_pid(pid)
        return str(row["uuid"]) if row else None

    def fresh_pid(self) -> int:
        """`SELECT MAX(pid)+1 FROM patient_data`, as PatientService::getFreshPid does."""
        pids = [int(r["pid"]) for r in self.rows("patient_data")]
        return max(pids, default=0) + 1

    def fresh_encounter(self) -> int:
        """OpenEMR draws encounter numbers from the `sequences` table: one counter for all."""
        numbers = [int(r["encounter"]) for r in self.rows("form_encounter")]
        return max(numbers, default=0) + 1

    def encounter_by_number(self, number: int | str | None) -> Row | None:
        return self.tables["form_encounter"].by_unique(number)

    def user_uuid(self, user_id: int | str | None) -> str | None:
        row = self.tables["users"].get(user_id) if user_id not in (None, "", 0, "0") else None
        return str(row["uuid"]) if row else None

    # --- uuid_mapping ---------------------------------------------------------------------

    def mapped_uuid(self, target_uuid: str, resource_path: str) -> str:
        """The UUID of a resource derived from a row (one vitals row -> many Observations)."""
        key = (target_uuid, resource_path)
        with self.lock:
            found = self._mapping.get(key)
            if found is None:
                found = str(uuid.uuid4())
                self.set_mapped_uuid(target_uuid, resource_path, found)
            return found

    def set_mapped_uuid(self, target_uuid: str, resource_path: str, value: str) -> None:
        with self.lock:
            self._mapping[(target_uuid, resource_path)] = value
            self._mapped_back[value] = (target_uuid, resource_path)

    def unmapped(self, mapped: str) -> tuple[str, str] | None:
        """The (row uuid, resource path) a mapped UUID stands for."""
        return self._mapped_back.get(mapped)

    def seed(self, table: str, rows: Iterable[Mapping[str, Any]]) -> list[Row]:
        return [self.insert(table, row) for row in rows]
