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
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_facade import errors
from fhir_facade.audit import AuditSink
from fhir_facade.security import asgi, bounds
from fhir_facade.security.auditing import FacadeAudit
from fhir_facade.security.compartment import belongs_to, restriction
from fhir_facade.security.filtering import filter_bundle, visible
from fhir_facade.security.operations import Operation, Plan, classify
from fhir_facade.security.scopes import AUDIT_TYPE, Access
from fhir_facade.security.settings import SecuritySettings
from fhir_facade.security.smart import security_statement
from fhir_facade.security.tokens import TokenRejected, TokenVerifier
from fhir_facade.store.base import Store

log = logging.getLogger(__name__)
_METADATA = Operation("capabilities", "", "R")
_NAMES = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


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
        self.store, self.max_body, self.smart = store, max_body, smart
        self.audit = FacadeAudit(sink)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path = scope["path"][len(root) :] if scope["path"].startswith(root) else scope["path"]
        op = classify(scope["method"], path)
        plan = Plan(query=scope.get("query_string", b"").decode("latin-1"))
        status, started = [500], [False]

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0], started[0] = message["status"], True
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
            await asgi.send_outcome(send, exc)
        except asgi.ClientGone:
            status[0] = 499
        except Exception:
            log.exception("the FHIR guard failed on %s %s", scope["method"], op.target)
            if started[0]:
                raise
            issue = errors.Issue("exception", "internal error; the server log has the details")
            await asgi.send_outcome(send, errors.OperationOutcomeError(500, [issue]))
        finally:
            if not op.public and self.settings.audit:
                self.audit.audit(scope, op, plan, status[0])

    # -- steps ----------------------------------------------------------------------------

    async def _public(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """The SMART discovery document here; the CapabilityStatement gets its security."""
        where = path.strip("/")
        if where == ".well-known/smart-configuration":
            if self.smart is None:
                raise errors.not_found("no authorization server is configured (CDSS_FHIR_ISSUERS)")
            await asgi.send_json(send, 200, orjson.dumps(self.smart), b"application/json")
        elif where == "metadata" and self.verifier is not None and self.smart is not None:
            await self._forward(scope, receive, send, _METADATA, Plan(filter=True))
        else:
            await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> Access | None:
        if self.verifier is None:
            return None  # CDSS_FHIR_AUTH=disabled (loopback only)
        header = asgi.header(scope, b"authorization")
        if not header:
            raise asgi.unauthorized("a bearer token is required", None)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise asgi.unauthorized("use Authorization: Bearer <access token>", "invalid_request")
        try:
            return await self.verifier.verify(token.strip())
        except TokenRejected as exc:
            raise asgi.unauthorized(str(exc), "invalid_token") from None

    async def _authorize(
        self, scope: Scope, receive: Receive, op: Operation, plan: Plan
    ) -> tuple[Scope, Receive]:
        access = plan.access
        if op.interaction == "transaction":
            body = await asgi.read_body(
                receive, self.max_body, asgi.header(scope, b"content-length")
            )
            plan.body = body
            await self._check_bundle(body, plan)
            plan.filter = access is not None
            return scope, asgi.replay(body, receive)
        if op.interaction == "search-type":
            pairs = parse_qsl(plan.query, keep_blank_values=True)
            if scope["method"] == "POST":
                body = await asgi.read_body(
                    receive, self.max_body, asgi.header(scope, b"content-length")
                )
                receive = asgi.replay(body, receive)
                pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            bounds.check_search(pairs, self.settings)
            plan.filter = any(k.startswith(("_include", "_revinclude")) for k, _ in pairs)
        if access is None:
            return scope, receive
        if op.resource_type is None:  # system history
            if not access.grants:
                raise asgi.forbidden("the token's scopes grant no FHIR access")
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
            raise asgi.forbidden("AuditEvents are written by the server only")
        decision = access.decide(rtype, permission)
        if decision == "deny":
            what = _NAMES.get(permission, permission)
            if rtype == AUDIT_TYPE:
                raise asgi.forbidden(
                    f"reading AuditEvent takes an AuditEvent scope and {self.settings.admin_scope}"
                )
            if any(g.context == "patient" for g in access.grants) and not access.patient:
                raise asgi.forbidden("the token has patient scopes but no patient in context")
            raise asgi.forbidden(f"the token's scopes do not allow {what} of {rtype}")
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
        if asgi.header(scope, b"if-none-exist") or op.interaction == "patch":
            raise asgi.forbidden("conditional create and patch are not available to patient scopes")
        if op.interaction in ("create", "update"):
            body = await asgi.read_body(
                receive, self.max_body, asgi.header(scope, b"content-length")
            )
            receive = asgi.replay(body, receive)
            try:
                resource = orjson.loads(body)
            except orjson.JSONDecodeError:
                return receive  # the facade answers the malformed body
            if isinstance(resource, dict) and not belongs_to(resource, access.patient):
                raise asgi.forbidden(
                    f"the resource is outside patient {access.patient}'s compartment"
                )
        if op.id is not None:
            await self._check_stored(op.resource_type, op.id, access.patient)
        return receive

    async def _check_stored(self, rtype: str, rid: str, patient: str) -> None:
        try:
            stored = await run_in_threadpool(self.store.read, rtype, rid)
        except errors.OperationOutcomeError:
            return  # absent, deleted or an invalid id: the facade answers (the body was checked)
        if stored.content and not belongs_to(orjson.loads(stored.content), patient):
            raise asgi.forbidden(f"{rtype}/{rid} is outside patient {patient}'s compartment")

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
            raise asgi.forbidden(
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
            raise asgi.forbidden(
                f"entry {index}: patient scopes allow only plain writes in a bundle; "
                "read through the REST API"
            )
        resource = entry.get("resource")
        if isinstance(resource, dict) and not belongs_to(resource, access.patient):
            raise asgi.forbidden(
                f"entry {index}: the resource is outside the patient's compartment"
            )
        if op.id is not None:
            await self._check_stored(op.resource_type, op.id, access.patient)

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, op: Operation, plan: Plan
    ) -> None:
        if not plan.filter or (plan.access is None and op is not _METADATA):
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
                await asgi.send_outcome(send, exc)
                return
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _filtered(self, body: bytes, op: Operation, plan: Plan) -> bytes:
        doc = orjson.loads(body)
        if not isinstance(doc, dict):
            return body
        if op is _METADATA:
            return orjson.dumps(security_statement(doc, self.smart or {}))
        access = plan.access
        assert access is not None
        if doc.get("resourceType") == "Bundle" and op.interaction not in ("read", "vread"):
            if filter_bundle(doc, access, restricted=plan.restricted):
                return orjson.dumps(doc)
            return body
        if not visible(doc, access):
            raise errors.not_found(f"{op.target} is not known")  # outside the compartment
        return body
