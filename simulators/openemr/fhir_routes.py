"""The FHIR R4 API at /apis/default/fhir with OpenEMR's behaviour (source-systems.md §1.6-§1.8).

Searches answer one unpaged Bundle of type `collection` whose `total` is the number of entries,
with no `search.mode` and only a `self` link (the path, without the query string, as OpenEMR
builds it from REDIRECT_URL). An unknown id is 404 with the body `[]`. The only writes are
POST/PUT of Patient and Practitioner: POST answers 201 with `{"id": .., "uuid": ..}`, PUT 200
with the resource, a validation failure 400 `{"validationErrors": {...}}`. Types OpenEMR routes
but the simulator holds no data for answer empty Bundles, never 404s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from simulators.openemr import catalog, render, validation, writes
from simulators.openemr.capability import FHIR_PREFIX, ROUTED_TYPES, capability
from simulators.openemr.catalog import Kind
from simulators.openemr.fhir_writes import patient_row, practitioner_row
from simulators.openemr.security import ApiError, Guard, failure
from simulators.openemr.store import OpenEMRStore, Row

log = logging.getLogger(__name__)


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def bundle(
    fhir_base: str, type_name: str, resources: list[dict[str, Any]], now: str
) -> dict[str, Any]:
    """OpenEMR's search Bundle; `now` is local time without a zone, as OpenEMR writes it."""
    out: dict[str, Any] = {
        "meta": {"lastUpdated": now.replace(" ", "T")},
        "resourceType": "Bundle",
        "type": "collection",
        "total": len(resources),
        "link": [{"relation": "self", "url": f"{fhir_base}/{type_name}"}],
    }
    if resources:
        out["entry"] = [
            {"fullUrl": f"{fhir_base}/{type_name}/{r['id']}", "resource": r} for r in resources
        ]
    return out


async def _body(request: Request, type_name: str) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, {"validationErrors": {"body": "Invalid JSON"}}) from None
    if not isinstance(body, dict) or body.get("resourceType") != type_name:
        message = f"resourceType must be {type_name}"
        raise ApiError(400, {"validationErrors": {"resourceType": message}})
    return body


class _Writer:
    """POST/PUT for one writable type: parse, validate, store, render."""

    def __init__(
        self,
        parse: Callable[[Mapping[str, Any]], dict[str, Any]],
        validate: Callable[[dict[str, Any], bool], validation.Messages],
        insert: Callable[[OpenEMRStore, Mapping[str, Any]], Row],
        update: Callable[[OpenEMRStore, Row, Mapping[str, Any]], Row],
        table: str,
    ) -> None:
        self.parse, self.validate, self.insert, self.update = parse, validate, insert, update
        self.table = table


WRITERS = {
    "Patient": _Writer(
        patient_row,
        lambda row, insert: validation.patient(row, insert=insert),
        writes.insert_patient,
        writes.update_patient,
        "patient_data",
    ),
    "Practitioner": _Writer(
        practitioner_row,
        lambda row, insert: validation.practitioner(row) if insert else {},
        writes.insert_practitioner,
        writes.update_practitioner,
        "users",
    ),
}


def fhir_router(store: OpenEMRStore, guard: Guard, public_base: str) -> APIRouter:
    router = APIRouter(prefix=FHIR_PREFIX)
    fhir_base = f"{public_base}{FHIR_PREFIX}"

    def kind_of(type_name: str) -> Kind | None:
        if type_name not in ROUTED_TYPES:
            raise failure(404, f"No route for {type_name}")
        return catalog.KINDS.get(type_name)

    @router.get("/metadata")
    def metadata() -> JSONResponse:
        return _json(capability(public_base))

    @router.get("/{type_name}")
    def search(type_name: str, request: Request) -> JSONResponse:
        kind = kind_of(type_name)
        compartment = kind.in_patient_compartment if kind else True
        access = guard.fhir(request, type_name, "search", compartment=compartment)
        if kind is None:
            return _json(bundle(fhir_base, type_name, [], store.now()))
        pids = None
        if access.patient is not None:
            row = store.patient_by_uuid(access.patient)
            pids = {str(row["pid"])} if row else set()
        query = list(request.query_params.multi_items())
        found = catalog.search(store, kind, query, pids)
        if access.patient is not None:
            found = [r for r in found if catalog.patient_of(r) == access.patient]
        log.info("search %s -> %d", type_name, len(found))
        return _json(bundle(fhir_base, type_name, found, store.now()))

    @router.get("/{type_name}/{rid}")
    def read(type_name: str, rid: str, request: Request) -> JSONResponse:
        kind = kind_of(type_name)
        compartment = kind.in_patient_compartment if kind else True
        access = guard.fhir(request, type_name, "read", compartment=compartment)
        found = catalog.find(store, kind, rid) if kind else None
        if found is None:
            return _json([], 404)
        if access.patient is not None and catalog.patient_of(found) != access.patient:
            raise failure(403, "The token's patient context does not cover this resource")
        return _json(found)

    def writer_routes(type_name: str, writer: _Writer) -> None:
        @router.post(f"/{type_name}")
        async def create(request: Request) -> JSONResponse:
            guard.fhir(request, type_name, "write", compartment=False)
            row = writer.parse(await _body(request, type_name))
            if problems := writer.validate(row, True):
                return _json({"validationErrors": problems}, 400)
            stored = writer.insert(store, row)
            key = stored["pid"] if type_name == "Patient" else stored["id"]
            return _json({"id": key, "uuid": stored["uuid"]}, 201)

        @router.put(f"/{type_name}/{{rid}}")
        async def update(rid: str, request: Request) -> JSONResponse:
            guard.fhir(request, type_name, "write", compartment=False)
            current = store.table(writer.table).by_uuid(rid)
            if current is None:
                return _json([], 404)
            row = writer.parse(await _body(request, type_name))
            if problems := writer.validate(row, False):
                return _json({"validationErrors": problems}, 400)
            stored = writer.update(store, current, row)
            rendered = (
                render.patient(store, stored)
                if type_name == "Patient"
                else (render.practitioner(stored))
            )
            return _json(rendered)

    for name, writer in WRITERS.items():
        writer_routes(name, writer)
    return router
