"""Per request: the request id (the client's `X-Request-ID`, or a new one) echoed back in the
response, the latency histogram by route template, and one access log line.

The route label is the matched template (`/fhir/{rtype}/{id}`), never the raw path, so neither
ids nor search values reach the metrics; the access line has the same fields and no query string,
header or body.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, cast

from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cdss.observability import context
from cdss.observability.metrics import REQUEST_SECONDS

access = logging.getLogger("cdss.access")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The template of the route that answered, with its mount prefix; "unmatched" if none."""
    route = scope.get("route") or _plain_route(scope)
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    if isinstance(route, Mount):
        return path + "/{unmatched}"
    root, app_root = scope.get("root_path", ""), scope.get("app_root_path", "")
    prefix = root[len(app_root) :] if root.startswith(app_root) else ""
    return prefix + path


def _plain_route(scope: Scope) -> object | None:
    """A plain Starlette route on the app itself (FastAPI records only its own APIRoutes in
    the scope), looked up in the app's routes and those of its included routers."""
    probe = {**scope, "root_path": ""}

    def find(routes: Iterable[Any]) -> object | None:
        for route in routes:
            inner = getattr(route, "original_router", None)  # FastAPI's include_router wrapper
            if inner is not None:
                found = find(inner.routes)
                if found is not None:
                    return found
            elif not isinstance(route, Mount) and route.matches(probe)[0] is not Match.NONE:
                return cast(object, route)
        return None

    return find(getattr(scope.get("app"), "routes", ()))


class Observability:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        ctx = context.begin(given)
        header = (b"x-request-id", ctx.request_id.encode())
        status = 500  # what the client gets if the app raises before answering
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            ctx.route = route_template(scope)
            REQUEST_SECONDS.labels(method, ctx.route, str(status)).observe(elapsed)
            access.info(
                "%s %s %d",
                method,
                ctx.route,
                status,
                extra={"method": method, "status": status, "duration_ms": round(elapsed * 1e3, 2)},
            )
