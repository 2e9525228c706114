"""OpenEMR's scope rules: which request a granted scope set allows (source-systems.md §1.4).

SMART scopes are `<context>/<Resource>.<permissions>[?<restriction>]` with context `patient`,
`user` or `system`; permissions are v1 words (`read`, `write`, `*`) or v2 letters, an ordered
subset of `cruds`. v1 `read` means read+search and `write` create+update+delete, the way
OpenEMR's ScopePermissionParser expands them, so v1 and v2 grants answer the same questions.

Writes exist only for Patient, Practitioner and Organization, and never in a patient context
(OpenEMR answers 403 to patient-context writes), so `allows` says no to them whatever the grant
holds. Standard-API scopes use lowercase resource names (`user/patient.write`) and additionally
need `api:oemr`; the FHIR API does not check `api:fhir` (§1.4).

`allows` answers only "may this kind of request happen"; a patient-bound grant must still be
confined to `grant.patient` by the route (`patient_bound` tells when).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

from simulators.openemr.oauth.models import AccessGrant
from simulators.openemr.oauth.scope_lists import WRITABLE

Interaction = Literal["read", "search", "write"]
Context = Literal["patient", "user", "system"]

_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<resource>\*|[A-Za-z_]+)\."
    r"(?P<perms>[A-Za-z*]+)(?:\?(?P<query>.+))?$"
)
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_WRITE_LETTERS = frozenset("cu")


@dataclass(frozen=True, slots=True)
class ResourceScope:
    """One parsed resource scope."""

    context: Context
    resource: str  # a type name, a standard-API resource, or "*"
    permissions: frozenset[str]  # letters of "cruds"
    restriction: str | None  # v2 granular query, e.g. "category=system|code"


def parse_scope(scope: str) -> ResourceScope | None:
    """The resource scope `scope` spells, or None for other scopes (openid, operations, ...)."""
    match = _SCOPE.match(scope)
    if match is None:
        return None
    perms = match["perms"]
    letters = _V1.get(perms)
    if letters is None:
        if not _is_ordered_subset(perms, "cruds"):
            return None
        letters = perms
    context = cast(Context, match["context"])  # the regex admits only the three contexts
    return ResourceScope(context, match["resource"], frozenset(letters), match["query"])


def _is_ordered_subset(letters: str, alphabet: str) -> bool:
    position = -1
    for letter in letters:
        found = alphabet.find(letter, position + 1)
        if found < 0:
            return False
        position = found
    return bool(letters)


def _authorizing(
    grant: AccessGrant, resource_type: str, interaction: Interaction
) -> list[ResourceScope]:
    needed = _WRITE_LETTERS if interaction == "write" else {"r" if interaction == "read" else "s"}
    found = []
    for raw in grant.scopes:
        scope = parse_scope(raw)
        if scope is None or scope.resource not in (resource_type, "*"):
            continue
        if interaction == "write" and (scope.context == "patient" or resource_type not in WRITABLE):
            continue
        if scope.permissions & needed:
            found.append(scope)
    return found


def allows(grant: AccessGrant, resource_type: str, interaction: Interaction) -> bool:
    """Whether `grant` permits `interaction` on FHIR `resource_type` (OpenEMR's rules)."""
    return bool(_authorizing(grant, resource_type, interaction))


def patient_bound(grant: AccessGrant, resource_type: str, interaction: Interaction) -> bool:
    """True when only patient/ scopes permit the request: the route must confine it to
    `grant.patient` (and refuse it when the grant has no patient)."""
    found = _authorizing(grant, resource_type, interaction)
    return bool(found) and all(s.context == "patient" for s in found)


def category_restrictions(
    grant: AccessGrant, resource_type: str, interaction: Interaction
) -> frozenset[str] | None:
    """The `system|code` categories a request is limited to by v2 granular scopes.

    None when some permitting scope is unrestricted (or none permits: check `allows` first).
    """
    found = _authorizing(grant, resource_type, interaction)
    if not found or any(s.restriction is None for s in found):
        return None
    categories = set()
    for scope in found:
        key, _, value = (scope.restriction or "").partition("=")
        if key == "category":
            categories.add(value)
    return frozenset(categories)


def allows_api(grant: AccessGrant, resource: str, write: bool) -> bool:
    """Whether `grant` permits the standard (non-FHIR) API on `resource` (lowercase, e.g.
    "patient", "vital"); every /api route first requires `api:oemr` (§1.4)."""
    if "api:oemr" not in grant.scopes:
        return False
    needed = _WRITE_LETTERS if write else frozenset("rs")
    for raw in grant.scopes:
        scope = parse_scope(raw)
        if scope is not None and scope.resource == resource and scope.permissions & needed:
            return True
    return False
