"""Simulator-only seeding routes under /apis/default/api/_sim (OpenEMR has no such routes).

OpenEMR's standard API has no write route for social history (tobacco) and none for procedure
orders, reports, results, specimens or prescriptions: those are entered in the UI or arrive by
HL7v2 lab interfaces. The synthetic cohort still needs them, so the simulator adds, and only it:

  POST /_sim/patient/:puuid/history   {"smoking_status": "4", "note": "...", "date": "..."}
       or {"tobacco": "<note>|<restype>|<date>|<smoking_status option>"}  -> 201 envelope {id, uuid}
  POST /_sim/:table                   a row of prescriptions, procedure_providers,
       procedure_order, procedure_specimen, procedure_report or procedure_result
                                      -> 201 envelope {id, uuid}
  PUT  /_sim/:table/:id               changed columns -> 200 envelope row

They take the same token as the rest of the API: `api:oemr` and `user/patient.write`.
`smoking_status` is an option of OpenEMR's `smoking_status` list (1 current every day, 2 current
some day, 3 former, 4 never, 5 current status unknown, 9 unknown if ever, 15 heavy, 16 light).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from simulators.openemr.api_common import API_PREFIX, as_text, envelope, invalid, json_object
from simulators.openemr.render_clinical import SMOKING_STATUS
from simulators.openemr.security import Guard
from simulators.openemr.store import OpenEMRStore

SEEDABLE = {
    # table -> (column that must point at an existing row, the table it points at, its column)
    "prescriptions": ("patient_id", "patient_data", "pid"),
    "procedure_providers": None,
    "procedure_order": ("patient_id", "patient_data", "pid"),
    "procedure_specimen": ("procedure_order_id", "procedure_order", "procedure_order_id"),
    "procedure_report": ("procedure_order_id", "procedure_order", "procedure_order_id"),
    "procedure_result": ("procedure_report_id", "procedure_report", "procedure_report_id"),
}
RESTYPE = {"3": "quittobacco", "4": "nevertobacco", "9": "not_applicabletobacco"}


def tobacco_value(status: str, note: str = "", when: str = "") -> str:
    """history_data.tobacco as OpenEMR's smoking-status field (data type 32) stores it."""
    option = next((k for k, (code, _t) in SMOKING_STATUS.items() if code == status), status)
    return f"{note}|{RESTYPE.get(option, 'currenttobacco')}|{when}|{option}"


def _dangling(store: OpenEMRStore, table: str, row: dict[str, Any]) -> str | None:
    link = SEEDABLE[table]
    if link is None:
        return None
    column, target, key = link
    exists = any(str(r.get(key)) == str(row.get(column)) for r in store.rows(target))
    return None if exists else column


def sim_router(store: OpenEMRStore, guard: Guard) -> APIRouter:
    router = APIRouter(prefix=f"{API_PREFIX}/_sim")

    @router.post("/patient/{puuid}/history")
    async def history(puuid: str, request: Request) -> JSONResponse:
        guard.api(request, "patient", write=True)
        data = await json_object(request)
        patient = store.patient_by_uuid(puuid)
        if patient is None:
            return invalid({"puuid": {"Record::NOT_FOUND": f"puuid {puuid} was not found"}})
        status = str(data.get("smoking_status") or "")
        tobacco = data.get("tobacco") or (
            tobacco_value(status, str(data.get("note") or "")) if status else ""
        )
        if not tobacco:
            message = "tobacco or smoking_status must be provided, but does not exist"
            return invalid({"tobacco": {"Required::NON_EXISTENT_KEY": message}})
        changes = {"tobacco": str(tobacco), "date": str(data.get("date") or store.now())}
        with store.lock:
            current = store.table("history_data").where(pid=patient["pid"])
            if current:
                row = store.update("history_data", int(current[0]["id"]), changes)
                return envelope({"id": row["id"], "uuid": row["uuid"]}, 200)
            row = store.insert("history_data", changes | {"pid": patient["pid"]})
        return envelope({"id": row["id"], "uuid": row["uuid"]}, 201)

    @router.post("/{table}")
    async def seed(table: str, request: Request) -> JSONResponse:
        guard.api(request, "patient", write=True)
        data = await json_object(request)
        if table not in SEEDABLE:
            return invalid({"table": {"InArray::NOT_IN_ARRAY": f"{table} cannot be seeded"}})
        if column := _dangling(store, table, data):
            return invalid(
                {column: {"Record::NOT_FOUND": f"{column} {data.get(column)} was not found"}}
            )
        row = store.insert(table, {k: v for k, v in data.items() if not k.startswith("_")})
        return envelope({"id": row[store.table(table).pk], "uuid": row["uuid"]}, 201)

    @router.put("/{table}/{key}")
    async def change(table: str, key: int, request: Request) -> JSONResponse:
        guard.api(request, "patient", write=True)
        data = await json_object(request)
        if table not in SEEDABLE or store.table(table).get(key) is None:
            return envelope([], 404)
        changes = {k: v for k, v in data.items() if not k.startswith("_")}
        return envelope(as_text(store.update(table, key, changes)))

    return router
