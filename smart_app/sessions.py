"""Server-side sessions of the backend-for-frontend: the browser holds only an opaque id.

Tokens never leave the server (SMART App Launch 2.2 app security: bearer tokens are not stored in
cookies). The cookie carries 256 random bits; the session it names holds the launch's `state`
and PKCE verifier until the callback, then the tokens and the launch context. It is
`HttpOnly; Secure; SameSite=None` so it survives OpenEMR's iframe (client-js #115).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

COOKIE = "cdss_smart"


@dataclass(slots=True)
class Tokens:
    access_token: str
    expires_at: float
    refresh_token: str | None
    scope: str
    id_token: str | None = None


@dataclass(slots=True)
class Session:
    """One browser's SMART session: pending launch first, then its authorization."""

    id: str
    created: float
    touched: float
    iss: str | None = None
    state: str | None = None
    code_verifier: str | None = None
    token_endpoint: str | None = None
    jwks_uri: str | None = None
    launch_kind: str | None = None  # "ehr" | "standalone"
    tokens: Tokens | None = None
    patient: str | None = None
    encounter: str | None = None
    user: str | None = None
    app_context: dict[str, Any] | None = None
    facade_token: tuple[str, float] | None = None  # the app's patient-bound token, expiry
    mrns: tuple[str, ...] = ()  # the patient's MRNs (DICOM PatientID), cached for the proxy
    studies: dict[str, bool] = field(default_factory=dict)  # StudyInstanceUID -> allowed
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)  # draft ServiceRequests
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # last cards, by uuid
    signed: list[str] = field(default_factory=list)  # ServiceRequest ids signed here

    @property
    def authorized(self) -> bool:
        return self.tokens is not None and self.patient is not None


class SessionStore:
    """Sessions in memory, expired after `ttl_s` without use. One process; a restart logs out."""

    def __init__(self, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[str, Session] = {}

    def new(self) -> Session:
        now = self._clock()
        session = Session(id=secrets.token_urlsafe(32), created=now, touched=now)
        with self._lock:
            self._sweep(now)
            self._items[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            session = self._items.get(session_id)
            if session is None or now - session.touched > self._ttl:
                self._items.pop(session_id, None)
                return None
            session.touched = now
            return session

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._items.pop(session_id, None)

    def _sweep(self, now: float) -> None:
        stale = [k for k, s in self._items.items() if now - s.touched > self._ttl]
        for key in stale:
            del self._items[key]
