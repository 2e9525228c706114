"""The CDS Hooks routes: discovery, service calls and feedback, under /cds-services.

Order of work in a call (docs/cds-hooks-and-smart.md §7): CORS preflight passes without a JWT;
the JWT is checked before anything else is read (a failure is a bare 401); then the body, the
(id, hook) routing, the fhirServer allow-list, prefetch fulfilment, the service's pure evaluation
and the cards; the audit (AuditEvent plus the issued cards) is queued for the recorder, which
writes it after the response in batches, so it adds nothing to the clinician's wait. Errors are
turned into responses in one place, `error_response`: an OperationOutcome (the 3.0 style,
harmless to 2.0 clients) with the status, except 401, which says nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cds_hooks import errors
from cds_hooks.audit import audit_event
from cds_hooks.auth import ANONYMOUS, AuthFailed, ClientIdentity
from cds_hooks.cards import Card, response_json
from cds_hooks.errors import CdsError
from cds_hooks.feedback import card_rows, parse_feedback
from cds_hooks.prefetch import fulfil
from cds_hooks.recorder import Record
from cds_hooks.registry import HookData, ServiceOptions
from cds_hooks.request import HookRequest, parse_json, parse_request
from cds_hooks.source_health import missing_source_cards, unavailable
from cds_hooks.sources import RemoteSource
from cds_hooks.state import CdsState
from cdss.observability.context import set_hook_instance
from cdss.observability.metrics import HOOK_SECONDS, SOURCE_MISSING

log = logging.getLogger(__name__)
PREFIX = "/cds-services"
JSON = "application/json"
Handler = Callable[[Request, CdsState], Awaitable[Response]]


def error_response(exc: Exception) -> Response:
    """The one place a failure becomes an HTTP response."""
    if not isinstance(exc, CdsError):
        log.error("unhandled error in the CDS service", exc_info=exc)
        exc = CdsError(500, "internal error; the server log has the details")
    if exc.status == 401:
        return Response(status_code=401, headers=exc.headers)
    return Response(orjson.dumps(exc.outcome()), exc.status, exc.headers, media_type=JSON)


def public_url(request: Request, state: CdsState) -> str:
    """The exact URL the client called, as it should appear in the JWT's `aud`."""
    base = state.config.base_url or f"{request.url.scheme}://{request.url.netloc}"
    return base.rstrip("/") + request.url.path


async def authenticate(request: Request, state: CdsState) -> ClientIdentity:
    if state.authenticator is None:
        log.warning(
            "CDS client authentication is DISABLED (CDSS_CDS_AUTH=disabled): accepting an "
            "unauthenticated %s %s; never run like this with real data",
            request.method,
            request.url.path,
        )
        return ANONYMOUS
    try:
        return await state.authenticator.authenticate(
            request.headers.get("authorization"), public_url(request, state)
        )
    except AuthFailed as exc:
        log.info("CDS client refused on %s: %s", request.url.path, exc)
        raise errors.unauthorized() from None


async def read_body(request: Request, state: CdsState) -> Any:
    limit = state.config.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise CdsError(413, f"the body is larger than {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise CdsError(413, f"the body is larger than {limit} bytes")
    return parse_json(body)


def _cors(request: Request, state: CdsState, response: Response) -> Response:
    origin = request.headers.get("origin")
    allowed = state.config.cors_origins
    if origin and ("*" in allowed or origin in allowed):
        response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
        response.headers["Vary"] = "Origin"
    return response


def _preflight(request: Request, state: CdsState) -> Response:
    response = Response(status_code=204)
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
    response.headers["Access-Control-Max-Age"] = "600"
    return _cors(request, state, response)


async def discovery(request: Request, state: CdsState) -> Response:
    await authenticate(request, state)
    return Response(orjson.dumps(state.registry.discovery()), media_type=JSON)


async def call_service(request: Request, state: CdsState) -> Response:
    started = time.perf_counter()
    client = await authenticate(request, state)
    service_id = request.path_params["service_id"]
    hook_request: HookRequest | None = None
    cards: list[Card] = []
    status = 200
    try:
        if not state.registry.known(service_id):
            raise errors.not_found(f"no CDS service {service_id!r}")
        payload = await read_body(request, state)
        hook = payload.get("hook") if isinstance(payload, dict) else None
        reg = state.registry.lookup(service_id, hook if isinstance(hook, str) else None)
        hook_request = parse_request(payload)
        set_hook_instance(hook_request.hook_instance)
        remote = _remote_source(hook_request, client, state)
        fulfilled = await fulfil(
            hook_request,
            reg.templates,
            reg.entry.required,
            remote=remote,
            facade=state.facade,
            policy=state.config.fetch,
        )
        data = HookData(
            prefetch=fulfilled.data,
            now=datetime.now(UTC),
            options=ServiceOptions(_smart_url(request, state), state.config.clinical),
            patient_id=hook_request.patient_id,
        )
        cards = reg.run(hook_request, data)
        missing = unavailable(service_id, state.health)
        for source in missing:
            SOURCE_MISSING.labels(service_id, source).inc()
        cards += missing_source_cards(service_id, missing)
        response = Response(orjson.dumps(response_json(cards)), media_type=JSON)
    except Exception as exc:
        response = error_response(exc)
        status = response.status_code
    address = request.client.host if request.client else None
    _record(state, client, service_id, hook_request, cards, status, address)
    known = state.registry.known(service_id)  # a label never takes a client's free text
    HOOK_SECONDS.labels(
        service_id if known else "unknown",
        hook_request.hook if hook_request and known else "unknown",
        "ok" if status < 400 else str(status),
    ).observe(time.perf_counter() - started)
    return response


def _remote_source(
    request: HookRequest, client: ClientIdentity, state: CdsState
) -> RemoteSource | None:
    """The client's FHIR server, only when it lent a token and the server is on its allow-list."""
    server, auth = request.fhir_server, request.fhir_authorization
    if server is None or auth is None:
        return None
    if client.client is None or not client.client.allows_fhir_server(server):
        log.info("fhirServer %s is not allow-listed for %s: using the facade", server, client.iss)
        return None
    return RemoteSource(state.http, server, auth.access_token, state.config.fetch)


def _smart_url(request: Request, state: CdsState) -> str:
    if state.config.smart_app_url:
        return state.config.smart_app_url
    base = state.config.base_url or f"{request.url.scheme}://{request.url.netloc}"
    return base.rstrip("/") + "/smart/launch"


def _record(
    state: CdsState,
    client: ClientIdentity,
    service_id: str,
    request: HookRequest | None,
    cards: list[Card],
    status: int,
    address: str | None = None,
) -> None:
    """Queue the call's AuditEvent and issued cards for the recorder (written after the
    response, in batches); nothing here waits on the database."""
    rows = []
    if request is not None and cards:
        rows = card_rows(
            service_id=service_id,
            hook=request.hook,
            hook_instance=request.hook_instance,
            patient_id=request.patient_id,
            iss=client.iss,
            cards=cards,
        )
    event = audit_event(
        event="cds-service-call",
        action="E",
        status=status,
        client=client,
        service_id=service_id,
        hook=request.hook if request else None,
        hook_instance=request.hook_instance if request else None,
        patient_id=request.patient_id if request else None,
        user_id=request.user_id if request else None,
        details=[("cards", ",".join(c.uuid for c in cards)), ("status", str(status))],
        address=address,
    )
    state.recorder.submit(Record(event, rows))


async def feedback(request: Request, state: CdsState) -> Response:
    client = await authenticate(request, state)
    service_id = request.path_params["service_id"]
    status, stored = 200, 0
    try:
        if not state.registry.known(service_id):
            raise errors.not_found(f"no CDS service {service_id!r}")
        items = parse_feedback(await read_body(request, state))
        cards = [f.card for f in items]
        known = await run_in_threadpool(state.feedback.suggestions_of, cards)
        if len(known) < len(set(cards)) and state.recorder.pending():
            # a card issued moments ago may still be on its way to the database
            await run_in_threadpool(state.recorder.flush)
            known = await run_in_threadpool(state.feedback.suggestions_of, cards)
        for item in items:
            unknown = set(item.accepted_suggestions) - set(known.get(item.card, ()))
            if item.card in known and unknown:
                raise errors.bad_request(
                    f"card {item.card} has no suggestion {sorted(unknown)[0]}", "feedback"
                )
        stored = await run_in_threadpool(
            lambda: state.feedback.record_feedback(
                service_id=service_id, iss=client.iss, sub=client.sub, items=items
            )
        )
        response = Response(orjson.dumps({"received": len(items), "new": stored}), media_type=JSON)
    except Exception as exc:
        response = error_response(exc)
        status = response.status_code
    event = audit_event(
        event="cds-feedback",
        action="C",
        status=status,
        client=client,
        service_id=service_id,
        details=[("new", str(stored)), ("status", str(status))],
        address=request.client.host if request.client else None,
    )
    state.recorder.submit(Record(event))
    return response


def create_router(state: CdsState) -> APIRouter:
    """Routes for /cds-services; registered on the app with include_router, so that discovery
    answers at exactly /cds-services (a mount would redirect it to /cds-services/)."""
    router = APIRouter()

    def route(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                response = await handler(request, state)
            except Exception as exc:
                response = error_response(exc)
            return _cors(request, state, response)

        return endpoint

    async def preflight(request: Request) -> Response:
        return _preflight(request, state)

    paths: list[tuple[str, str, Handler]] = [
        (PREFIX, "GET", discovery),
        (PREFIX + "/{service_id}", "POST", call_service),
        (PREFIX + "/{service_id}/feedback", "POST", feedback),
    ]
    for path, method, handler in paths:
        if handler is call_service:
            # The hot path as a plain Starlette route: the endpoint takes the Request and nothing
            # else, so FastAPI's per-call dependency handling would only add cost (~0.1 ms).
            router.add_route(path, route(handler), methods=[method], include_in_schema=False)
        else:
            router.add_api_route(path, route(handler), methods=[method], include_in_schema=False)
        router.add_api_route(path, preflight, methods=["OPTIONS"], include_in_schema=False)
    return router
