"""The SENAITE JSON API simulator as a FastAPI app (`create_senaite_app`).

SENAITE itself (Python 2.7, Plone) cannot run here, so the adapter, the cohort and the tests talk
to this stand-in at the same URLs (`/<site>/@@API/senaite/v1/...`), with the same authentication
(HTTP Basic or the `__ac` cookie from `/login`; wrong credentials are anonymous, as Plone's PAS
treats them), answer envelopes and error bodies (`{"success": false, "error", "_runtime"}`).
Routing mirrors senaite.jsonapi's werkzeug rules; there is no `POST /<transition>` route in
SENAITE: transitions go through `update` with `{"uid", "transition"}`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from simulators.senaite import operations as ops
from simulators.senaite.catalog import QueryError
from simulators.senaite.catalogue import seed_setup
from simulators.senaite.content import ApiError
from simulators.senaite.shapes import API_PATH, Context
from simulators.senaite.store import Clock, Store
from simulators.senaite.workflow import WorkflowError

log = logging.getLogger(__name__)

DEFAULT_USERS: Mapping[str, str] = MappingProxyType({"admin": "admin"})
VERSION = {"version": "2.6.0", "date": "2024-10-14"}


@dataclass
class SenaiteState:
    """Everything the app holds: the content, the users and the test knobs."""

    store: Store
    users: Mapping[str, str]
    patient_extension: bool
    auto_specification: bool
    sessions: dict[str, str] = field(default_factory=dict)
    pending_failures: list[int] = field(default_factory=list)

    def inject_failures(self, count: int, status: int = 503) -> None:
        """Answer the next `count` API requests with `status` (a proxy or Zope restart)."""
        self.pending_failures.extend([status] * count)


def create_senaite_app(
    *,
    users: Mapping[str, str] = DEFAULT_USERS,
    site: str = "senaite",
    patient_extension: bool = True,
    auto_specification: bool = True,
    clock: Clock | None = None,
) -> FastAPI:
    """A fresh simulated SENAITE site with its lab set-up seeded (see `catalogue.py`).

    `patient_extension`: the site has senaite.patient (MRN and patient fields on samples).
    `auto_specification`: samples created without a Specification get the seeded adult ranges
    (SENAITE's add form pre-selects one; the JSON API would leave it empty).
    """
    store = Store(site, clock)
    seed_setup(store)
    state = SenaiteState(store, dict(users), patient_extension, auto_specification)
    app = FastAPI(
        title="SENAITE JSON API simulator", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.senaite = state
    base = f"/{site}/{API_PATH}"

    @app.api_route(base + "/{path:path}", methods=["GET", "POST"])
    async def api(request: Request, path: str) -> Response:
        started = time.perf_counter()
        if state.pending_failures:
            return PlainTextResponse("Service Unavailable", state.pending_failures.pop(0))
        records = await _records(request) if request.method == "POST" else []
        try:
            with store.lock:
                status, body, headers = _dispatch(state, request, path, records)
        except ApiError as exc:
            status, body, headers = exc.status, {"success": False, "error": exc.message}, {}
        except (WorkflowError, QueryError) as exc:
            status, body, headers = 200, {"success": False, "error": str(exc)}, {}
        except Exception as exc:  # plone.jsonapi.core's handle_errors: any error, HTTP 200
            log.exception("SENAITE simulator error on %s %s", request.method, path)
            status, body, headers = 200, {"success": False, "error": str(exc)}, {}
        body["_runtime"] = time.perf_counter() - started
        return JSONResponse(body, status_code=status, headers=headers)

    return app


async def _records(request: Request) -> list[dict[str, Any]]:
    """`req.get_request_data`: a JSON object or list, else the form, as a list of records."""
    raw = await request.body()
    if raw.strip():
        try:
            data = await request.json()
        except ValueError:
            form = await request.form()
            return [{k: v for k, v in form.items() if isinstance(v, str)}]
        if isinstance(data, list):
            return [r for r in data if isinstance(r, dict)]
        if isinstance(data, dict):
            return [data]
    return [{}]


def _user(state: SenaiteState, request: Request) -> str | None:
    """Basic credentials or the `__ac` session cookie; anything invalid is anonymous."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if name in state.users and secrets.compare_digest(state.users[name], password):
            return name
        return None
    return state.sessions.get(request.cookies.get("__ac", ""))


Answer = tuple[int, dict[str, Any], dict[str, str]]


def _dispatch(
    state: SenaiteState, request: Request, path: str, records: list[dict[str, Any]]
) -> Answer:
    origin = str(request.base_url).rstrip("/")
    ctx = Context(state.store, origin, state.patient_extension)
    call = ops.Call(
        ctx, request.query_params, request.url, _user(state, request), state.auto_specification
    )
    segs = [s for s in path.split("/") if s]
    if (
        segs[:1] == ["users"]
        and len(segs) <= 2
        and segs[1:] not in (["auth"], ["login"], ["logout"])
    ):
        return 200, ops.users_listing(call, segs[1] if len(segs) > 1 else None, state.users), {}
    if segs[-1:] and segs[-1] in ("auth", "login", "logout") and len(segs) <= 2:
        return _session(state, request, call, segs[-1], records)
    if request.method == "GET":
        return 200, _get(call, segs), {}
    return 200, _post(call, request, segs, records), {}


def _get(call: ops.Call, segs: list[str]) -> dict[str, Any]:
    if segs == ["version"]:
        return {"url": f"{call.ctx.api_base}/version", **VERSION}
    if segs == ["search"]:
        return ops.get_batched(call, None)
    if len(segs) == 1 and ops.is_uid(segs[0]):
        return ops.get_record(call, segs[0])
    if len(segs) in (1, 2) and (len(segs) == 1 or ops.is_uid(segs[1])):
        portal_type = ops.portal_type_of(call, segs[0])
        if portal_type is None:
            raise ApiError(404, "Not Found")
        return ops.get_batched(call, portal_type, segs[1] if len(segs) == 2 else None)
    raise ApiError(404, "Not Found")


def _post(
    call: ops.Call, request: Request, segs: list[str], records: list[dict[str, Any]]
) -> dict[str, Any]:
    resource: str | None = None
    uid: str | None = None
    name: str | None = None
    rest = list(segs)
    if rest and rest[0] not in ops.ACTIONS and not ops.is_uid(rest[0]):
        resource = rest.pop(0)
    if rest and rest[0] in ops.ACTIONS:
        name = rest.pop(0)
    if rest and ops.is_uid(rest[0]):
        uid = rest.pop(0)
    if name is None and uid is not None:
        name = (request.headers.get("x-http-method-override") or "").lower() or None
    if rest or (name is None and uid is None and resource is not None):
        raise ApiError(404, "Not Found")
    if name not in ops.ACTIONS:
        raise ApiError(500, f"API has no member named '{name}_items'")
    portal_type = ops.portal_type_of(call, resource) if resource else None
    return ops.action(call, name, records, portal_type=portal_type, uid=uid)


def _session(
    state: SenaiteState, request: Request, call: ops.Call, verb: str, records: list[dict[str, Any]]
) -> Answer:
    """`/auth` (Basic challenge), `/login` (sets the `__ac` cookie) and `/logout`."""
    if verb == "auth":
        if call.user is None:
            return 401, {}, {"WWW-Authenticate": 'basic realm="JSONAPI AUTH"'}
        return 200, {}, {}
    if verb == "logout":
        state.sessions.pop(request.cookies.get("__ac", ""), None)
        return (
            200,
            {"url": f"{call.ctx.api_base}/users", "authenticated": False, "success": True},
            {"Set-Cookie": "__ac=deleted; Max-Age=0; Path=/"},
        )
    data = {**dict(request.query_params), **(records[0] if records else {})}
    name, password = data.get("__ac_name"), data.get("__ac_password")
    if name is None:
        raise ApiError(400, "__ac_name is missing")
    if password is None:
        raise ApiError(400, "__ac_password is missing")
    if state.users.get(str(name)) != password:
        raise ApiError(401, "Invalid Credentials")
    token = secrets.token_urlsafe(24)
    state.sessions[token] = str(name)
    logged_in = ops.Call(call.ctx, call.params, call.url, str(name), call.auto_spec)
    body = ops.users_listing(logged_in, str(name), state.users)
    return 200, body, {"Set-Cookie": f"__ac={token}; Path=/; HttpOnly"}
