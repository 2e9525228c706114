"""SMART App Launch scopes, v1 (`patient/Observation.read`) and v2 (`patient/Observation.rs`),
and the access a verified token gives (SMART App Launch 2.0 §3, "Scopes and Launch Context").

A request is decided per resource type and permission letter (c r u d s):
- `all`: a `user/` or `system/` grant covers it;
- `patient`: only `patient/` grants cover it, so it is confined to the token's patient
  compartment;
- `deny`: nothing covers it.

v2 scopes with a query (`patient/Observation.rs?category=laboratory`) narrow a grant in ways this
server does not evaluate; they grant nothing rather than more than the user consented to.
AuditEvent is never covered by a wildcard: reading it takes a scope naming AuditEvent and the
admin marker (SecuritySettings.admin_scope or an admin subject); no token may write it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

Context = Literal["patient", "user", "system"]
Decision = Literal["all", "patient", "deny"]
AUDIT_TYPE = "AuditEvent"

_SCOPE = re.compile(r"(patient|user|system)/([A-Za-z]+|\*)\.(read|write|\*|c?r?u?d?s?)")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


@dataclass(frozen=True, slots=True)
class Grant:
    context: Context
    resource_type: str  # or "*"
    permissions: frozenset[str]

    def covers(self, resource_type: str, permission: str) -> bool:
        if permission not in self.permissions:
            return False
        if resource_type == AUDIT_TYPE:
            return self.resource_type == AUDIT_TYPE
        return self.resource_type in ("*", resource_type)


def parse_scope(scope: str) -> Grant | None:
    """The grant of one scope string, or None for scopes that grant no FHIR access here."""
    match = _SCOPE.fullmatch(scope)
    if match is None or not match[3]:
        return None
    context, rtype, perms = match[1], match[2], match[3]
    letters = _V1.get(perms, perms)
    return Grant(context, rtype, frozenset(letters))  # type: ignore[arg-type]


def parse_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[Grant, ...]:
    return tuple(g for g in map(parse_scope, scopes) if g is not None)


@dataclass(frozen=True, slots=True)
class Access:
    """What a verified token allows, and who holds it (for the audit)."""

    issuer: str
    subject: str | None
    client_id: str | None
    scopes: tuple[str, ...]
    patient: str | None = None
    fhir_user: str | None = None
    purpose_of_use: tuple[str, ...] = ()
    admin: bool = False
    grants: tuple[Grant, ...] = field(default=())

    def decide(self, resource_type: str, permission: str) -> Decision:
        if resource_type == AUDIT_TYPE and (permission not in "rs" or not self.admin):
            return "deny"
        found: Decision = "deny"
        for grant in self.grants:
            if not grant.covers(resource_type, permission):
                continue
            if grant.context != "patient":
                return "all"
            if self.patient and resource_type != AUDIT_TYPE:
                found = "patient"
        return found

    def may_see(self, resource_type: str) -> Decision:
        """For resources a response carries (search matches, includes, history entries)."""
        read, search = self.decide(resource_type, "r"), self.decide(resource_type, "s")
        if "all" in (read, search):
            return "all"
        return "patient" if "patient" in (read, search) else "deny"


def scopes_of(claims: dict[str, Any]) -> tuple[str, ...]:
    """Scopes from `scope` (RFC 8693/9068: a space-separated string), `scopes` (league's list,
    as OpenEMR issues) or `scp`."""
    for name in ("scope", "scopes", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            return tuple(value.split())
        if isinstance(value, list):
            return tuple(str(v) for v in value)
    return ()
