"""One error type for the FHIR protocol, carrying its OperationOutcome and HTTP status.

Every failure of the facade, from a malformed body to a version conflict, is raised as an
OperationOutcomeError and turned into a response in one place (fhir_facade/api/app.py), so a
client always gets a FHIR OperationOutcome with a status that says what went wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["fatal", "error", "warning", "information"]
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def printable(text: str) -> str:
    """`text` with the control characters an R4 string may not hold written as \\xNN: messages
    quote what the client sent (e.g. `_format=\\x01`), and must still be valid FHIR."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome.issue: code from the IssueType value set, where as FHIRPath."""

    code: str
    diagnostics: str
    severity: Severity = "error"
    expression: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": printable(self.diagnostics),
        }
        if self.expression:
            out["expression"] = [printable(e) for e in self.expression]
        return out


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    """An OperationOutcome resource as a plain dict."""
    return {"resourceType": "OperationOutcome", "issue": [i.as_json() for i in issues]}


@dataclass
class OperationOutcomeError(Exception):
    """An error a FHIR client should see, with the HTTP status that goes with it."""

    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status}: " + "; ".join(i.diagnostics for i in self.issues)

    @property
    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def _one(
    status: int, code: str, msg: str, expression: tuple[str, ...] = ()
) -> OperationOutcomeError:
    return OperationOutcomeError(status, [Issue(code, msg, expression=expression)])


def bad_request(msg: str, *expression: str) -> OperationOutcomeError:
    return _one(400, "invalid", msg, expression)


def invalid_resource(issues: list[Issue]) -> OperationOutcomeError:
    """422 is R4's status for a resource that violates the specification's rules."""
    return OperationOutcomeError(422, issues)


def not_found(msg: str) -> OperationOutcomeError:
    return _one(404, "not-found", msg)


def gone(msg: str) -> OperationOutcomeError:
    return _one(410, "deleted", msg)


def conflict(msg: str) -> OperationOutcomeError:
    return _one(409, "conflict", msg)


def precondition_failed(msg: str) -> OperationOutcomeError:
    return _one(412, "conflict", msg)


def not_supported(msg: str, *expression: str) -> OperationOutcomeError:
    return _one(400, "not-supported", msg, expression)


def too_large(msg: str) -> OperationOutcomeError:
    return _one(413, "too-costly", msg)
