"""The facade's gate: an ASGI wrapper around the facade app that authenticates every request,
decides it against the token's SMART scopes, confines `patient/` tokens to their compartment,
bounds the request, filters what the answer may carry, and audits the access.

Per interaction (Operation.permission):
- search: the type needs `s`; a patient-confined search gets `patient=Patient/<id>` (`_id` for
  Patient) added, so it selects only the compartment; the Bundle is then filtered, which also
  covers _include/_revinclude, paging cursors and chained parameters;
- read/vread/instance history: `r`; a resource outside the compartment answers 404;
- type/system history: filtered entry by entry;
- create/update/delete: `c`/`u`/`d`; under patient scopes the body and the stored resource must
  both be in the compartment, and conditional forms are refused;
- batch/transaction: every entry is decided as its own interaction before anything runs;
  patient-confined tokens may only write through them (no GET, no conditional entries).
AuditEvent: read by admins only, written by nobody through the API.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_facade import errors
from fhir_facade.audit import Actor, AuditSink, Event, build_event
from fhir_facade.security import bounds
from fhir_facade.security.compartment import belongs_to, restriction
from fhir_facade.security.filtering import filter_bundle, visible
from fhir_facade.security.operations import Operation, classify
from fhir_facade.security.scopes import AUDIT_TYPE, Access
from fhir_facade.security.settings import SecuritySettings
from fhir_facade.security.tokens import TokenRejected, TokenVerifier
from fhir_facade.store.base import Store

log = logging.getLogger(__name__)
REALM = 'Bearer realm="cdss-fhir"'
_NAMES = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


class ClientGone(Exception):
    """The client disconnected while its body was being read."""


@dataclass(slots=True)
class Plan:
    """What the guard decided for one request."""

    access: Access | None = None
    restricted: bool = False  # confined to access.patient
    filter: bool = False  # the answer passes through filtering
    body: bytes | None = None  # the request body, when the guard had to read it
    query: str = ""  # the client's query string, for the audit
    entries: list[tuple[str, str]] = field(default_factory=list)  # (method, url) of a bundle
    bundle_type: str | None = None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _unauthorized(msg: str, error: str | None) -> errors.OperationOutcomeError:
    challenge = REALM
    if error:
        safe = msg.replace('"', "'")
        challenge += f', error="{error}", error_description="{safe}"'
    code = "login" if error is None else "security"
    return errors.OperationOutcomeError(
        401, [errors.Issue(code, msg)], {"WWW-Authenticate": challenge}
    )


def _forbidden(msg: str) -> errors.OperationOutcomeError:
    challenge = f'{REALM}, error="insufficient_scope"'
    return errors.OperationOutcomeError(
        403, [errors.Issue("forbidden", msg)], {"WWW-Authenticate": challenge}
    )


async def _read_body(receive: Receive, limit: int, declared: str | None) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.too_large(f"the body is larger than the {limit}-byte limit")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise errors.too_large(f"the body is larger than the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def send_outcome(send: Send, exc: errors.OperationOutcomeError) -> None:
    body = orjson.dumps(exc.outcome)
    headers = [
        (b"content-type", b"application/fhir+json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in exc.headers.items()),
    ]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FacadeGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: SecuritySettings,
        verifier: TokenVerifier | None,
        store: Store,
        sink: AuditSink,
        max_body: int,
        smart: dict[str, Any] | None,
    ) -> None:
        self.app, self.settings, self.verifier = app, settings, verifier
        self.store, self.sink, self.max_body, self.smart = store, sink, max_body, smart

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path = scope["path"][len(root) :] if scope["path"].startswith(root) else scope["path"]
        op = classify(scope["method"], path)
        plan = Plan(query=scope.get("query_string", b"").decode("latin-1"))
        status = [500]

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            bounds.check_request(scope["headers"], scope.get("query_string", b""), self.settings)
            if op.public:
                await self._public(scope, receive, tracked, path)
                return
            plan.access = await self._authenticate(scope)
            scope, receive = await self._authorize(scope, receive, op, plan)
            await self._forward(scope, receive, tracked, op, plan)
        except errors.OperationOutcomeError as exc:
            status[0] = exc.status
            await send_outcome(send, exc)
        except ClientGone:
            status[0] = 499
        finally:
            if not op.public:
                self._audit(scope, op, plan, status[0])

    # -- steps ----------------------------------------------------------------------------

    async def _public(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        if path.strip("/") != ".well-known/smart-configuration":
            await self.app(scope, receive, send)
            return
        if self.smart is None:
            raise errors.not_found("no authorization server is configured (CDSS_FHIR_ISSUERS)")
        body = orjson.dumps(self.smart)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _authenticate(self, scope: Scope) -> Access | None:
        if self.verifier is None:
            return None  # CDSS_FHIR_AUTH=disabled (loopback only)
        header = _header(scope, b"authorization")
        if not header:
            raise _unauthorized("a bearer token is required", None)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("use Authorization: Bearer <access token>", "invalid_request")
        try:
            return await self.verifier.verify(token.strip())
        except TokenRejected as exc:
            raise _unauthorized(str(exc), "invalid_token") from None

    async def _authorize(
        self, scope: Scope, receive: Receive, op: Operation, plan: Plan
    ) -> tuple[Scope, Receive]:
        access = plan.access
        if op.interaction == "transaction":
            body = await _read_body(receive, self.max_body, _header(scope, b"content-length"))
            plan.body = body
            await self._check_bundle(body, plan)
            plan.filter = access is not None
            return scope, _replay(body, receive)
        if op.interaction == "search-type":
            pairs = parse_qsl(plan.query, keep_blank_values=True)
            if scope["method"] == "POST":
                body = await _read_body(receive, self.max_body, _header(scope, b"content-length"))
                receive = _replay(body, receive)
                pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            bounds.check_search(pairs, self.settings)
            plan.filter = any(k.startswith(("_include", "_revinclude")) for k, _ in pairs)
        if access is None:
            return scope, receive
        if op.resource_type is None:  # system history
            if not access.grants:
                raise _forbidden("the token's scopes grant no FHIR access")
            plan.filter = True
            return scope, receive
        self._check_type(op.resource_type, op.permission, access, plan)
        plan.filter = plan.filter or plan.restricted
        if plan.restricted and op.interaction == "search-type":
            scope = self._confine(scope, op.resource_type, access)
        if plan.restricted and op.permission in "cud":
            receive = await self._check_write(scope, receive, op, access)
        return scope, receive

    def _check_type(self, rtype: str, permission: str, access: Access, plan: Plan) -> None:
        if rtype == AUDIT_TYPE and permission in "cud":
            raise _forbidden("AuditEvents are written by the server only")
        decision = access.decide(rtype, permission)
        if decision == "deny":
            what = _NAMES.get(permission, permission)
            if rtype == AUDIT_TYPE:
                raise _forbidden(
                    f"reading AuditEvent takes an AuditEvent scope and {self.settings.admin_scope}"
                )
            if any(g.context == "patient" for g in access.grants) and not access.patient:
                raise _forbidden("the token has patient scopes but no patient in context")
            raise _forbidden(f"the token's scopes do not allow {what} of {rtype}")
        plan.restricted = plan.restricted or decision == "patient"

    def _confine(self, scope: Scope, rtype: str, access: Access) -> Scope:
        assert access.patient is not None
        extra = restriction(rtype, access.patient)
        if extra is None:
            return scope
        query = scope.get("query_string", b"")
        added = urlencode([extra]).encode()
        return {**scope, "query_string": query + b"&" + added if query else added}

    async def _check_write(
        self, scope: Scope, receive: Receive, op: Operation, access: Access
    ) -> Receive:
        assert access.patient is not None and op.resource_type is not None
        if _header(scope, b"if-none-exist") or op.interaction == "patch":
            raise _forbidden("conditional create and patch are not available to patient scopes")
        if op.interaction in ("create", "update"):
            body = await _read_body(receive, self.max_body, _header(scope, b"content-length"))
            receive = _replay(body, receive)
            try:
                resource = orjson.loads(body)
            except orjson.JSONDecodeError:
                return receive  # the facade answers the malformed body
            if isinstance(resource, dict) and not belongs_to(resource, access.patient):
                raise _forbidden(f"the resource is outside patient {access.patient}'s compartment")
        if op.id is not None:
            await self._check_stored(op.resource_type, op.id, access.patient)
        return receive

    async def _check_stored(self, rtype: str, rid: str, patient: str) -> None:
        try:
            stored = await run_in_threadpool(self.store.read, rtype, rid)
        except errors.OperationOutcomeError:
            return  # nothing there (or deleted): an update creates it, checked above
        except Exception:
            return  # an invalid id: the facade answers it
        if stored.content and not belongs_to(orjson.loads(stored.content), patient):
            raise _forbidden(f"{rtype}/{rid} is outside patient {patient}'s compartment")

    async def _check_bundle(self, body: bytes, plan: Plan) -> None:
        try:
            bundle = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if not isinstance(bundle, dict) or not isinstance(bundle.get("entry"), list):
            return
        plan.bundle_type = bundle.get("type") if isinstance(bundle.get("type"), str) else None
        for index, entry in enumerate(bundle["entry"]):
            request = entry.get("request") if isinstance(entry, dict) else None
            if not isinstance(request, dict):
                continue
            method, url = str(request.get("method", "")), str(request.get("url", ""))
            plan.entries.append((method, url))
            if plan.access is not None:
                await self._check_entry(index, entry, method, url, plan)

    async def _check_entry(
        self, index: int, entry: dict[str, Any], method: str, url: str, plan: Plan
    ) -> None:
        access = plan.access
        assert access is not None
        path, _, query = url.partition("?")
        op = classify(method, "/" + path.split("://")[-1].split("/fhir/")[-1])
        if op.resource_type is None:
            raise _forbidden(
                f"entry {index}: system-level interactions are not allowed in a bundle"
            )
        if query:
            bounds.check_search(parse_qsl(query, keep_blank_values=True), self.settings)
        entry_plan = Plan(access=access)
        try:
            self._check_type(op.resource_type, op.permission, access, entry_plan)
        except errors.OperationOutcomeError as exc:
            exc.issues[0] = errors.Issue("forbidden", f"entry {index}: {exc.issues[0].diagnostics}")
            raise
        if not entry_plan.restricted:
            return
        assert access.patient is not None
        conditional = query or (entry.get("request") or {}).get("ifNoneExist")
        if op.permission in "rs" or conditional:
            raise _forbidden(
                f"entry {index}: patient scopes allow only plain writes in a bundle; "
                "read through the REST API"
            )
        resource = entry.get("resource")
        if isinstance(resource, dict) and not belongs_to(resource, access.patient):
            raise _forbidden(f"entry {index}: the resource is outside the patient's compartment")
        if op.id is not None:
            await self._check_stored(op.resource_type, op.id, access.patient)

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, op: Operation, plan: Plan
    ) -> None:
        if not plan.filter or plan.access is None:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            else:
                await send(message)

        await self.app(scope, receive, capture)
        assert start is not None
        body = b"".join(chunks)
        if start["status"] < 300 and body:
            try:
                body = self._filtered(body, op, plan)
            except errors.OperationOutcomeError as exc:
                await send_outcome(send, exc)
                return
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _filtered(self, body: bytes, op: Operation, plan: Plan) -> bytes:
        access = plan.access
        assert access is not None
        doc = orjson.loads(body)
        if not isinstance(doc, dict):
            return body
        if doc.get("resourceType") == "Bundle" and op.interaction not in ("read", "vread"):
            if filter_bundle(doc, access, restricted=plan.restricted):
                return orjson.dumps(doc)
            return body
        if not visible(doc, access):
            raise errors.not_found(f"{op.target} is not known")  # outside the compartment
        return body

    # -- audit ----------------------------------------------------------------------------

    def _audit(self, scope: Scope, op: Operation, plan: Plan, status: int) -> None:
        if not self.settings.audit:
            return
        try:
            actor = _actor(scope, plan.access)
            patient = plan.access.patient if plan.access and plan.restricted else None
            if patient is None and op.resource_type == "Patient" and op.id:
                patient = op.id
            if op.interaction == "transaction":
                self._audit_bundle(plan, status, actor, patient)
                return
            query = plan.query if op.permission == "s" else None
            event = Event("rest", op.interaction, op.action, status, op.target, query, patient)
            self.sink.submit(build_event(event, actor))
        except Exception:  # the audit never breaks an answer; its loss is logged loudly
            log.exception("could not queue the AuditEvent for %s %s", scope["method"], op.target)

    def _audit_bundle(self, plan: Plan, status: int, actor: Actor, patient: str | None) -> None:
        kind = plan.bundle_type if plan.bundle_type in ("batch", "transaction") else "transaction"
        summary = Event(
            "rest",
            kind,
            "E",
            status,
            None,
            None,
            patient,
            description=f"{kind} of {len(plan.entries)} entries",
        )
        self.sink.submit(build_event(summary, actor))
        for method, url in plan.entries:
            path, _, query = url.partition("?")
            entry_op = classify(method, "/" + path)
            event = Event(
                "rest",
                entry_op.interaction,
                entry_op.action,
                status,
                entry_op.target,
                query if entry_op.permission == "s" else None,
                patient,
            )
            self.sink.submit(build_event(event, actor))


def _actor(scope: Scope, access: Access | None) -> Actor:
    client = scope.get("client")
    address = str(client[0]) if client else None
    if access is None:
        return Actor(address=address)
    return Actor(
        issuer=access.issuer,
        subject=access.subject,
        fhir_user=access.fhir_user,
        client_id=access.client_id,
        address=address,
        purpose_of_use=access.purpose_of_use,
    )
