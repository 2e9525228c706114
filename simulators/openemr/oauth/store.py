"""In-memory state of the authorization server, safe to share between threads.

The FHIR routes call verify() from FastAPI's thread pool while /token runs in another thread, so
every read-modify-write here happens under one lock. Expired entries are dropped lazily.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from simulators.openemr.oauth.models import (
    Client,
    CodeRecord,
    IssuedToken,
    PendingAuthorization,
    RefreshRecord,
)


class OAuthStore:
    """Clients, codes, refresh tokens, issued access tokens and seen assertion ids."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._clients: dict[str, Client] = {}
        self._codes: dict[str, CodeRecord] = {}
        self._spent_codes: dict[str, float] = {}  # code -> when it may be forgotten
        self._refresh: dict[str, RefreshRecord] = {}
        self._access: dict[str, IssuedToken] = {}
        self._assertion_ids: dict[tuple[str, str], float] = {}
        self._pending: dict[str, PendingAuthorization] = {}

    # clients -------------------------------------------------------------------------------
    def add_client(self, client: Client) -> None:
        with self._lock:
            self._clients[client.client_id] = client

    def client(self, client_id: str) -> Client | None:
        with self._lock:
            return self._clients.get(client_id)

    def clients(self) -> list[Client]:
        with self._lock:
            return list(self._clients.values())

    def client_by_registration_path(self, path: str) -> Client | None:
        with self._lock:
            return next((c for c in self._clients.values() if c.registration_path == path), None)

    # authorization codes -------------------------------------------------------------------
    def add_code(self, record: CodeRecord) -> None:
        with self._lock:
            self._codes[record.code] = record

    def code(self, code: str) -> CodeRecord | None:
        """A live code, or None (unknown, expired or already exchanged)."""
        with self._lock:
            record = self._codes.get(code)
            if record is not None and record.expires_at <= self._clock():
                del self._codes[code]
                return None
            return record

    def spend_code(self, code: str) -> None:
        """Mark a code used: a second exchange is refused and revokes what the first issued."""
        with self._lock:
            record = self._codes.pop(code, None)
            if record is not None:
                self._spent_codes[code] = record.expires_at + 3600

    def was_spent(self, code: str) -> bool:
        with self._lock:
            now = self._clock()
            self._spent_codes = {c: t for c, t in self._spent_codes.items() if t > now}
            return code in self._spent_codes

    # refresh tokens ------------------------------------------------------------------------
    def add_refresh(self, record: RefreshRecord) -> None:
        with self._lock:
            self._refresh[record.token] = record

    def refresh(self, token: str) -> RefreshRecord | None:
        with self._lock:
            record = self._refresh.get(token)
            if record is not None and record.expires_at <= self._clock():
                del self._refresh[token]
                return None
            return record

    def drop_refresh(self, token: str) -> None:
        with self._lock:
            self._refresh.pop(token, None)

    # access tokens -------------------------------------------------------------------------
    def add_access(self, token: IssuedToken) -> None:
        with self._lock:
            now = self._clock()
            self._access = {j: t for j, t in self._access.items() if t.grant.expires_at > now}
            self._access[token.jti] = token

    def access(self, jti: str) -> IssuedToken | None:
        with self._lock:
            return self._access.get(jti)

    def revoke_access(self, jti: str) -> bool:
        with self._lock:
            return self._access.pop(jti, None) is not None

    def revoke_origin(self, origin: str) -> None:
        """Revoke every token descended from one authorization code (RFC 6749 §4.1.2)."""
        with self._lock:
            self._access = {j: t for j, t in self._access.items() if t.origin != origin}
            self._refresh = {k: r for k, r in self._refresh.items() if r.context.origin != origin}

    # client assertions ---------------------------------------------------------------------
    def claim_assertion_id(self, client_id: str, jti: str, until: float) -> bool:
        """Record a jti; False when it was already used (a replay)."""
        with self._lock:
            now = self._clock()
            self._assertion_ids = {k: t for k, t in self._assertion_ids.items() if t > now}
            if (client_id, jti) in self._assertion_ids:
                return False
            self._assertion_ids[(client_id, jti)] = max(until, now + 60)
            return True

    # pending consent pages -----------------------------------------------------------------
    def add_pending(self, pending: PendingAuthorization) -> None:
        with self._lock:
            now = self._clock()
            self._pending = {k: p for k, p in self._pending.items() if p.expires_at > now}
            self._pending[pending.request_id] = pending

    def pending(self, request_id: str) -> PendingAuthorization | None:
        with self._lock:
            pending = self._pending.get(request_id)
            if pending is None or pending.expires_at <= self._clock():
                return None
            return pending

    def drop_pending(self, request_id: str) -> None:
        with self._lock:
            self._pending.pop(request_id, None)
