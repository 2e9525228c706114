"""Inserting and updating rows as OpenEMR's services do (PatientService::databaseInsert etc.).

Shared by the FHIR writes and the standard API so both leave identical rows: a new patient gets
`pid = MAX(pid)+1`, `pubpid = pid` when none is given, `date`/`regdate` = now; a practitioner
gets a generated username when none is given. Unknown columns are dropped (OpenEMR's insert
builders only bind the table's columns).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from simulators.openemr.store import OpenEMRStore, Row

PATIENT_COLUMNS = frozenset(
    [
        "title",
        "fname",
        "mname",
        "lname",
        "DOB",
        "sex",
        "ss",
        "street",
        "postal_code",
        "city",
        "state",
        "county",
        "country_code",
        "drivers_license",
        "contact_relationship",
        "phone_contact",
        "phone_home",
        "phone_biz",
        "phone_cell",
        "email",
        "race",
        "ethnicity",
        "language",
        "status",
        "pubpid",
        "providerID",
        "deceased_date",
        "contact_address_period_start",
    ]
)
PRACTITIONER_COLUMNS = frozenset(
    [
        "title",
        "fname",
        "mname",
        "lname",
        "federaltaxid",
        "federaldrugid",
        "upin",
        "facility_id",
        "facility",
        "npi",
        "email",
        "specialty",
        "billname",
        "url",
        "assistant",
        "organization",
        "valedictory",
        "street",
        "streetb",
        "city",
        "state",
        "zip",
        "phone",
        "fax",
        "phonew1",
        "phonecell",
        "notes",
        "state_license_number",
        "username",
        "active",
    ]
)


def _keep(data: Mapping[str, Any], columns: frozenset[str]) -> dict[str, Any]:
    return {k: ("" if v is None else v) for k, v in data.items() if k in columns}


def insert_patient(store: OpenEMRStore, data: Mapping[str, Any]) -> Row:
    with store.lock:
        row = _keep(data, PATIENT_COLUMNS)
        pid = store.fresh_pid()
        now = store.now()
        row.update(pid=pid, date=now, regdate=now)
        if not row.get("pubpid"):
            row["pubpid"] = str(pid)
        return store.insert("patient_data", row)


def update_patient(store: OpenEMRStore, current: Row, data: Mapping[str, Any]) -> Row:
    changes = _keep(data, PATIENT_COLUMNS)
    changes["date"] = store.now()
    return store.update("patient_data", int(current["id"]), changes)


def insert_practitioner(store: OpenEMRStore, data: Mapping[str, Any]) -> Row:
    row = _keep(data, PRACTITIONER_COLUMNS)
    if not row.get("username"):
        row["username"] = f"{row.get('lname', '')}{row.get('fname', '')}{uuid.uuid4().hex[:13]}"
    row.setdefault("active", "1")
    row.update(authorized="1")
    return store.insert("users", row)


def update_practitioner(store: OpenEMRStore, current: Row, data: Mapping[str, Any]) -> Row:
    return store.update("users", int(current["id"]), _keep(data, PRACTITIONER_COLUMNS))


def public(row: Row) -> dict[str, Any]:
    """A row as the standard API returns it: internal columns (`_...`) left out."""
    return {k: v for k, v in row.items() if not k.startswith("_")}
