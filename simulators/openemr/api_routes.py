"""OpenEMR's standard API (/apis/default/api), the subset the cohort writer and orders use.

Paths, parameter kinds (`:puuid` UUID vs `:pid`/`:eid` numeric ids), whitelists and answers are
those of `apis/routes/_rest_routes_standard.inc.php` and its controllers:
  POST /patient                        -> 201 envelope {pid, uuid}
  GET  /patient, /patient/:puuid       -> envelope rows
  POST /patient/:puuid/encounter       -> 201 envelope {encounter, uuid}
  POST /patient/:puuid/medical_problem -> 201 envelope {id, uuid} (title begdate enddate diagnosis)
  POST /patient/:puuid/allergy         -> 201 envelope {id, uuid} (same whitelist)
  POST /patient/:pid/medication        -> 201 bare {id}
  POST /patient/:pid/encounter/:eid/vital -> 201 bare {vid, fid}
  GET|POST /practitioner               -> envelope rows / 201 envelope {id, uuid}
Every route needs `api:oemr` plus the lowercase scope of its resource (`user/patient.write` ...).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from simulators.openemr import validation, writes
from simulators.openemr.api_common import (
    API_PREFIX,
    as_text,
    bare,
    envelope,
    invalid,
    json_object,
    not_found,
    only,
)
from simulators.openemr.security import Guard
from simulators.openemr.store import OpenEMRStore

PATIENT_SEARCH: tuple[str, ...] = (
    "fname",
    "lname",
    "ss",
    "street",
    "postal_code",
    "city",
    "state",
    "phone_home",
)
PATIENT_SEARCH += ("phone_biz", "phone_cell", "postal_contact", "sex", "country_code", "email")
PATIENT_SEARCH += ("DOB", "pubpid")
PRACTITIONER_SEARCH: tuple[str, ...] = (
    "title",
    "fname",
    "lname",
    "mname",
    "federaltaxid",
    "federaldrugid",
)
PRACTITIONER_SEARCH += ("upin", "facility_id", "facility", "npi", "email", "specialty", "username")
WILDCARD = frozenset({"fname", "mname", "lname", "street", "city", "state", "postal_code"})
ISSUE_FIELDS = ("title", "begdate", "enddate", "diagnosis")
ENCOUNTER_FIELDS: tuple[str, ...] = (
    "date",
    "onset_date",
    "reason",
    "facility",
    "pc_catid",
    "facility_id",
)
ENCOUNTER_FIELDS += ("billing_facility", "sensitivity", "referral_source", "pos_code")
ENCOUNTER_FIELDS += ("external_id", "provider_id", "class_code")


def _filter(
    rows: list[dict[str, Any]], query: dict[str, str], fields: tuple[str, ...]
) -> list[dict[str, Any]]:
    for field in (f for f in fields if f in query):
        wanted = query[field].lower()
        if field in WILDCARD:
            rows = [r for r in rows if wanted in str(r.get(field) or "").lower()]
        else:
            rows = [r for r in rows if str(r.get(field) or "").lower() == wanted]
    return rows


def api_router(store: OpenEMRStore, guard: Guard) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)

    @router.get("/patient")
    def list_patients(request: Request) -> JSONResponse:
        guard.api(request, "patient", write=False)
        rows = _filter(store.rows("patient_data"), dict(request.query_params), PATIENT_SEARCH)
        return envelope([as_text(r) for r in rows])

    @router.post("/patient")
    async def create_patient(request: Request) -> JSONResponse:
        guard.api(request, "patient", write=True)
        data = await json_object(request)
        if problems := validation.patient(data, insert=True):
            return invalid(problems)
        row = writes.insert_patient(store, data)
        return envelope({"pid": row["pid"], "uuid": row["uuid"]}, 201)

    @router.get("/patient/{puuid}")
    def get_patient(puuid: str, request: Request) -> JSONResponse:
        guard.api(request, "patient", write=False)
        row = store.patient_by_uuid(puuid)
        return envelope(as_text(row)) if row else envelope([], 404)

    @router.put("/patient/{puuid}")
    async def update_patient(puuid: str, request: Request) -> JSONResponse:
        guard.api(request, "patient", write=True)
        data = await json_object(request)
        current = store.patient_by_uuid(puuid)
        if current is None:
            return not_found("uuid", puuid)
        if problems := validation.patient(data, insert=False):
            return invalid(problems)
        return envelope(as_text(writes.update_patient(store, current, data)))

    @router.get("/patient/{puuid}/encounter")
    def list_encounters(puuid: str, request: Request) -> JSONResponse:
        guard.api(request, "encounter", write=False)
        patient = store.patient_by_uuid(puuid)
        rows = store.table("form_encounter").where(pid=patient["pid"]) if patient else []
        return envelope([as_text(r) for r in rows]) if rows else envelope([], 404)

    @router.post("/patient/{puuid}/encounter")
    async def create_encounter(puuid: str, request: Request) -> JSONResponse:
        grant = guard.api(request, "encounter", write=True)
        data = only(await json_object(request), ENCOUNTER_FIELDS)
        patient = store.patient_by_uuid(puuid)
        if patient is None:
            return not_found("puuid", puuid)
        if problems := validation.encounter(data):
            return invalid(problems)
        with store.lock:
            number = store.fresh_encounter()
            row = {"date": store.now(), "provider_id": "", **data}
            row.update(pid=patient["pid"], encounter=number, user=grant.user or "")
            enc = store.insert("form_encounter", row)
            form = {"date": enc["date"], "encounter": number, "form_name": "New Patient Encounter"}
            store.insert(
                "forms",
                form | {"form_id": enc["id"], "pid": patient["pid"], "formdir": "newpatient"},
            )
        return envelope({"encounter": number, "uuid": enc["uuid"]}, 201)

    @router.get("/patient/{puuid}/encounter/{euuid}")
    def get_encounter(puuid: str, euuid: str, request: Request) -> JSONResponse:
        guard.api(request, "encounter", write=False)
        patient, row = store.patient_by_uuid(puuid), store.table("form_encounter").by_uuid(euuid)
        if patient is None or row is None or row["pid"] != patient["pid"]:
            return envelope([], 404)
        return envelope(as_text(row))

    def issue_routes(kind: str) -> None:
        @router.get(f"/patient/{{puuid}}/{kind}")
        def list_issues(puuid: str, request: Request) -> JSONResponse:
            guard.api(request, kind, write=False)
            patient = store.patient_by_uuid(puuid)
            rows = store.table("lists").where(pid=patient["pid"], type=kind) if patient else []
            return envelope([as_text(r) for r in rows])

        @router.post(f"/patient/{{puuid}}/{kind}")
        async def create_issue(puuid: str, request: Request) -> JSONResponse:
            guard.api(request, kind, write=True)
            data = only(await json_object(request), ISSUE_FIELDS)
            patient = store.patient_by_uuid(puuid)
            if patient is None:
                return not_found("puuid", puuid)
            if problems := validation.issue(data):
                return invalid(problems)
            row = store.insert("lists", _issue_row(store, data, patient["pid"], kind))
            return envelope({"id": row["id"], "uuid": row["uuid"]}, 201)

    issue_routes("medical_problem")
    issue_routes("allergy")

    @router.get("/patient/{pid}/medication")
    def list_medications(pid: str, request: Request) -> JSONResponse:
        guard.api(request, "medication", write=False)
        rows = store.table("lists").where(type="medication")
        return bare([as_text(r) for r in rows if str(r["pid"]) == pid])

    @router.post("/patient/{pid}/medication")
    async def create_medication(pid: str, request: Request) -> JSONResponse:
        guard.api(request, "medication", write=True)
        data = await json_object(request)
        patient = store.patient_by_pid(pid)
        problems = validation.issue(data)
        if patient is None:
            problems = validation.merge(
                problems, {"pid": {"Record::NOT_FOUND": f"pid {pid} was not found"}}
            )
        if problems:
            return JSONResponse(problems, status_code=400)
        assert patient is not None
        row = store.insert(
            "lists", _issue_row(store, only(data, ISSUE_FIELDS), patient["pid"], "medication")
        )
        return bare({"id": row["id"]}, 201)

    @router.get("/patient/{pid}/encounter/{eid}/vital")
    def list_vitals(pid: str, eid: str, request: Request) -> JSONResponse:
        guard.api(request, "vital", write=False)
        forms = store.table("forms").where(formdir="vitals")
        ids = {f["form_id"] for f in forms if str(f["pid"]) == pid and str(f["encounter"]) == eid}
        rows = [r for r in store.rows("form_vitals") if r["id"] in ids]
        return bare([as_text(r) for r in rows])

    @router.post("/patient/{pid}/encounter/{eid}/vital")
    async def create_vital(pid: str, eid: str, request: Request) -> JSONResponse:
        grant = guard.api(request, "vital", write=True)
        data = await json_object(request)
        encounter = store.encounter_by_number(eid)
        if problems := validation.vital(data):
            return JSONResponse(problems, status_code=400)
        if store.patient_by_pid(pid) is None or encounter is None or str(encounter["pid"]) != pid:
            return JSONResponse(None, status_code=404)
        fields = {
            k: str(data[k]) for k in validation.VITAL_NUMBERS if data.get(k) not in (None, "")
        }
        extra = {k: str(data[k]) for k in ("temp_method", "note") if data.get(k)}
        with store.lock:
            when = str(data.get("date") or encounter["date"])
            row = {"pid": int(pid), "date": when, "user": grant.user or "", "activity": 1}
            vital = store.insert("form_vitals", row | fields | extra)
            form = {"date": store.now(), "encounter": int(eid), "form_name": "Vitals"}
            fid = store.insert(
                "forms", form | {"form_id": vital["id"], "pid": int(pid), "formdir": "vitals"}
            )
        return bare({"vid": vital["id"], "fid": fid["id"]}, 201)

    @router.get("/practitioner")
    def list_practitioners(request: Request) -> JSONResponse:
        guard.api(request, "practitioner", write=False)
        rows = _filter(store.rows("users"), dict(request.query_params), PRACTITIONER_SEARCH)
        return envelope([as_text(r) for r in rows])

    @router.post("/practitioner")
    async def create_practitioner(request: Request) -> JSONResponse:
        guard.api(request, "practitioner", write=True)
        data = await json_object(request)
        if problems := validation.practitioner(data):
            return invalid(problems)
        row = writes.insert_practitioner(store, data)
        return envelope({"id": row["id"], "uuid": row["uuid"]}, 201)

    @router.get("/practitioner/{pruuid}")
    def get_practitioner(pruuid: str, request: Request) -> JSONResponse:
        guard.api(request, "practitioner", write=False)
        row = store.table("users").by_uuid(pruuid)
        return envelope(as_text(row)) if row else envelope([], 404)

    return router


def _issue_row(store: OpenEMRStore, data: dict[str, Any], pid: Any, kind: str) -> dict[str, Any]:
    """`INSERT INTO lists SET date=NOW(), activity=1, type=..., ...` as the services do."""
    return {**data, "pid": pid, "type": kind, "date": store.now(), "activity": 1}
