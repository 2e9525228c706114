"""The FHIR REST routes (R4 RESTful API): thin translations from HTTP to the interactions.

Store calls run in the thread pool, so one slow search never stalls the event loop for others.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from fhir_facade import errors
from fhir_facade.api import bundles, http
from fhir_facade.api import interactions as ix
from fhir_facade.api.capability import capability_statement
from fhir_facade.api.context import Context
from fhir_facade.api.state import FacadeState

router = APIRouter()
T = TypeVar("T")


def _state(request: Request) -> FacadeState:
    state: FacadeState = request.app.state.facade
    return state


def _request_base(request: Request) -> str:
    """Scheme, host and mount point of this request: the base a client reached us at."""
    root = request.scope.get("root_path", "").rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}{root}"


def _ctx(request: Request, prefer: http.Prefer | None = None) -> Context:
    state = _state(request)
    base = state.base_url or _request_base(request)
    return Context(base, state.cursor_key, state.limits, strict=bool(prefer and prefer.strict))


async def _in_unit(request: Request, work: Callable[[Any], T], *, reads_only: bool = False) -> T:
    store = _state(request).store

    def run() -> T:
        with store.read_unit() if reads_only else store.unit() as unit:
            return work(unit)

    return await run_in_threadpool(run)


def _http_date(instant: str) -> str:
    return format_datetime(datetime.fromisoformat(instant.replace("Z", "+00:00")), usegmt=True)


def _resource_response(
    result: ix.Result, prefer: http.Prefer, written_at: Context | None = None
) -> Response:
    """The resource with its version headers; `Location` only for writes (`written_at`)."""
    headers: dict[str, str] = {}
    stored = result.resource
    if stored is not None:
        headers["ETag"] = stored.etag
        headers["Last-Modified"] = _http_date(stored.last_updated)
        if written_at is not None:
            headers["Location"] = f"{written_at.base_url}/{stored.location}"
    if prefer.return_ == "minimal":
        return http.fhir_response(None, result.status, headers)
    if prefer.return_ == "OperationOutcome":
        issue = errors.Issue(
            "informational", f"{stored.location if stored else 'done'}", severity="information"
        )
        return http.json_response(errors.operation_outcome([issue]), result.status, headers)
    return http.fhir_response(result.content, result.status, headers)


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    http.check_format(request)
    state = _state(request)
    return http.json_response(capability_statement(_ctx(request).base_url, state))


@router.post("/")
async def transaction_or_batch(request: Request) -> Response:
    http.check_format(request)
    state, prefer = _state(request), http.parse_prefer(request)
    body = await http.read_json_body(request, state.limits_body)
    ctx = _ctx(request, prefer)
    bundle = await run_in_threadpool(
        bundles.process,
        state.store.unit,
        body,
        ctx,
        max_entries=state.max_bundle_entries,
        minimal=prefer.return_ == "minimal",
    )
    return http.json_response(bundle)


@router.get("/_history")
async def history_system(request: Request) -> Response:
    http.check_format(request)
    ctx, pairs = _ctx(request), list(request.query_params.multi_items())
    result = await _in_unit(
        request, lambda u: ix.history(u, None, None, pairs, ctx), reads_only=True
    )
    return http.fhir_response(result.content)


@router.get("/{rtype}/_history")
async def history_type(request: Request, rtype: str) -> Response:
    http.check_format(request)
    ctx, pairs = _ctx(request), list(request.query_params.multi_items())
    result = await _in_unit(
        request, lambda u: ix.history(u, rtype, None, pairs, ctx), reads_only=True
    )
    return http.fhir_response(result.content)


@router.get("/{rtype}/{id}/_history")
async def history_instance(request: Request, rtype: str, id: str) -> Response:
    http.check_format(request)
    ctx, pairs = _ctx(request), list(request.query_params.multi_items())
    result = await _in_unit(
        request, lambda u: ix.history(u, rtype, id, pairs, ctx), reads_only=True
    )
    return http.fhir_response(result.content)


@router.get("/{rtype}/{id}/_history/{vid}")
async def vread(request: Request, rtype: str, id: str, vid: str) -> Response:
    http.check_format(request)
    result = await _in_unit(request, lambda u: ix.vread(u, rtype, id, vid), reads_only=True)
    return _resource_response(result, http.Prefer())


@router.post("/{rtype}/_search")
async def search_post(request: Request, rtype: str) -> Response:
    http.check_format(request)
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        raise errors.OperationOutcomeError(
            415,
            [
                errors.Issue(
                    "not-supported", "_search takes application/x-www-form-urlencoded parameters"
                )
            ],
        )
    pairs = list(request.query_params.multi_items())
    pairs += await http.read_form_body(request, _state(request).limits_body)
    return await _search(request, rtype, pairs)


@router.get("/{rtype}")
async def search_get(request: Request, rtype: str) -> Response:
    http.check_format(request)
    return await _search(request, rtype, list(request.query_params.multi_items()))


async def _search(request: Request, rtype: str, pairs: list[tuple[str, str]]) -> Response:
    ctx = _ctx(request, http.parse_prefer(request))
    result = await _in_unit(request, lambda u: ix.search(u, rtype, pairs, ctx), reads_only=True)
    return http.fhir_response(result.content)


@router.get("/{rtype}/{id}")
async def read(request: Request, rtype: str, id: str) -> Response:
    http.check_format(request)
    ix.require_type(rtype)
    ix.require_id(rtype, id)
    stored = await run_in_threadpool(_state(request).store.read, rtype, id)
    return _resource_response(ix.Result(200, stored), http.Prefer())


@router.post("/{rtype}")
async def create(request: Request, rtype: str) -> Response:
    http.check_format(request)
    ix.require_type(rtype)
    state, prefer = _state(request), http.parse_prefer(request)
    body = http.require_resource(await http.read_json_body(request, state.limits_body), rtype)
    ctx = _ctx(request, prefer)
    body = ix.localize_references(body, ctx.base_url)
    cond = request.headers.get("if-none-exist")
    result = await _in_unit(request, lambda u: ix.create(u, rtype, body, ctx, cond))
    return _resource_response(result, prefer, ctx)


@router.put("/{rtype}/{id}")
async def update(request: Request, rtype: str, id: str) -> Response:
    http.check_format(request)
    ix.require_type(rtype)
    state, prefer = _state(request), http.parse_prefer(request)
    body = http.require_resource(await http.read_json_body(request, state.limits_body), rtype)
    ctx = _ctx(request, prefer)
    body = ix.localize_references(body, ctx.base_url)
    if_match = http.parse_if_match(request)
    result = await _in_unit(request, lambda u: ix.update(u, rtype, id, body, if_match))
    return _resource_response(result, prefer, ctx)


@router.delete("/{rtype}/{id}")
async def delete(request: Request, rtype: str, id: str) -> Response:
    ix.require_type(rtype)
    await _in_unit(request, lambda u: ix.delete(u, rtype, id))
    return http.fhir_response(None, 204)
