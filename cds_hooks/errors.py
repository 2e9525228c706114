"""One error type for the CDS Hooks protocol, turned into a response in one place (api.py).

CDS Hooks 2.0 defines no error body; 3.0 (FHIR-50287) says a service SHOULD answer any non-2xx
with a FHIR OperationOutcome. Sending one already is harmless to 2.0 clients (they read the
status) and tells a 3.0 client what went wrong. The exception is 401: the best practices ask for
no detail at all on a failed client authentication, so that a caller learns nothing about why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_facade.errors import printable

#: OperationOutcome issue codes (FHIR IssueType) for the statuses this service answers with.
_ISSUE_CODES = {400: "invalid", 404: "not-found", 412: "processing", 413: "too-costly"}


@dataclass
class CdsError(Exception):
    """A failure a CDS client should see: HTTP status plus a message for the OperationOutcome."""

    status: int
    message: str = ""
    expression: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"

    def outcome(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": "error" if self.status < 500 else "fatal",
            "code": _ISSUE_CODES.get(self.status, "exception" if self.status >= 500 else "invalid"),
            "diagnostics": printable(self.message),
        }
        if self.expression:
            issue["expression"] = [printable(e) for e in self.expression]
        return {"resourceType": "OperationOutcome", "issue": [issue]}


def bad_request(message: str, *expression: str) -> CdsError:
    return CdsError(400, message, expression)


def unauthorized() -> CdsError:
    """No message on purpose: the reason is logged, never sent (best practices)."""
    return CdsError(401, "", headers={"WWW-Authenticate": "Bearer"})


def not_found(message: str) -> CdsError:
    return CdsError(404, message)


def precondition_failed(message: str, *expression: str) -> CdsError:
    return CdsError(412, message, expression)
