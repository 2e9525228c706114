"""The request being served, as seen by every log line written while serving it.

One mutable holder per request lives in a context variable: the middleware creates it, the CDS
route adds the `hookInstance` once it has parsed the body, and log records read it. A holder
(rather than one variable per field) survives the context copies made for thread-pool work, so a
field set deep inside a handler is still seen by the access log line written afterwards.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


@dataclass(slots=True)
class RequestContext:
    request_id: str
    route: str | None = None
    hook_instance: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("cdss_request", default=None)


def current() -> RequestContext | None:
    return _current.get()


def begin(request_id: str | None) -> RequestContext:
    """Start a request's context; a client's id is kept only if it is short and plain (it ends
    up in logs and headers, so it must not carry anything a client could inject)."""
    rid = request_id if request_id and _SAFE_ID.match(request_id) else uuid.uuid4().hex
    ctx = RequestContext(rid)
    _current.set(ctx)
    return ctx


def set_hook_instance(value: object) -> None:
    """Record the CDS call's hookInstance (a UUID by the spec; anything else is not kept)."""
    ctx = _current.get()
    if ctx is not None and isinstance(value, str) and _SAFE_ID.match(value):
        ctx.hook_instance = value
