"""Bearer-token and scope checks in front of every FHIR and standard-API route.

OpenEMR's order (BearerTokenAuthorizationStrategy, then the route's ACL check): no or bad token
-> 401; a token whose scopes do not permit the request -> 403; a token that only patient/ scopes
permit is confined to its patient (reads of another patient's data -> 403, searches only ever see
that patient). Errors leave with the JSON shape of OpenEMR's ExceptionHandlerListener (§1.8).
Tokens are never logged.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from fastapi import Request

from simulators.openemr.oauth import AccessGrant, allows, allows_api

log = logging.getLogger(__name__)

Interaction = Literal["read", "search", "write"]


class ApiError(Exception):
    """An error answer: status, JSON body (OpenEMR's shapes vary per route), headers."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def failure(status: int, message: str) -> ApiError:
    """The `{"error", "message", "code"}` body OpenEMR uses for auth/ACL/route errors."""
    body = {"error": "An error occurred", "message": message, "code": status}
    headers = {"WWW-Authenticate": 'Bearer realm="OpenEMR"'} if status == 401 else None
    return ApiError(status, body, headers)


class Verifier(Protocol):
    def verify(self, bearer_token: str) -> AccessGrant | None: ...


@dataclass(frozen=True, slots=True)
class Access:
    """A permitted FHIR request: the grant, and the patient UUID it is confined to (or None)."""

    grant: AccessGrant
    patient: str | None


class Guard:
    """Turns a request's Authorization header into an AccessGrant, or refuses it."""

    def __init__(self, verifier: Verifier) -> None:
        self._verifier = verifier

    def bearer(self, request: Request) -> AccessGrant:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            log.info("401 %s %s: no bearer token", request.method, request.url.path)
            raise failure(401, "Missing or invalid Authorization header")
        grant = self._verifier.verify(token.strip())
        if grant is None:
            log.info("401 %s %s: token invalid or expired", request.method, request.url.path)
            raise failure(401, "The access token is invalid, expired or revoked")
        return grant

    def fhir(
        self, request: Request, resource_type: str, interaction: Interaction, *, compartment: bool
    ) -> Access:
        grant = self.bearer(request)
        if not allows(grant, resource_type, interaction):
            log.info("403 %s %s: scopes do not permit it", request.method, request.url.path)
            raise failure(403, f"Scope does not permit {interaction} of {resource_type}")
        if not compartment or not _patient_only(grant, resource_type, interaction):
            return Access(grant, None)
        if grant.patient is None:
            raise failure(403, "patient/ scopes need a patient in the token's context")
        return Access(grant, grant.patient)

    def api(self, request: Request, resource: str, *, write: bool) -> AccessGrant:
        grant = self.bearer(request)
        if not allows_api(grant, resource, write):
            what = "write" if write else "read"
            log.info("403 %s %s: needs api:oemr and %s", request.method, request.url.path, what)
            raise failure(403, f"Scope does not permit {what} of {resource} (api:oemr required)")
        return grant


def _patient_only(grant: AccessGrant, resource_type: str, interaction: Interaction) -> bool:
    """True when no user/ or system/ scope permits the request: only patient/ scopes do."""
    wide = frozenset(s for s in grant.scopes if not s.startswith("patient/"))
    return not allows(dataclasses.replace(grant, scopes=wide), resource_type, interaction)
