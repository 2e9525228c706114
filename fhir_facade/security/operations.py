"""What a facade request asks to do, from its method and path: the FHIR interaction, the SMART
permission letter it needs (c r u d s), the resource type and id, and the audit action."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fhir_facade.security.scopes import Access

Action = Literal["C", "R", "U", "D", "E"]
PUBLIC = frozenset({"metadata", "openapi.json"})


@dataclass(frozen=True, slots=True)
class Operation:
    interaction: str  # restful-interaction code, or "public" / "unknown"
    permission: str  # c r u d s; "" for public documents and bundles (checked per entry)
    action: Action
    resource_type: str | None = None
    id: str | None = None

    @property
    def public(self) -> bool:
        return self.interaction == "public"

    @property
    def target(self) -> str | None:
        if self.resource_type and self.id:
            return f"{self.resource_type}/{self.id}"
        return self.resource_type


def classify(method: str, path: str) -> Operation:
    """`path` is relative to the facade's base ("/Observation/1/_history")."""
    parts = [p for p in path.split("/") if p]
    method = "GET" if method == "HEAD" else method
    if not parts:
        return Operation("transaction" if method == "POST" else "unknown", "", "E")
    if parts in (["metadata"], ["openapi.json"], [".well-known", "smart-configuration"]):
        return Operation("public", "", "R")
    if parts == ["_history"]:
        return Operation("history-system", "s", "R")
    rtype, rest = parts[0], parts[1:]
    if not rest:
        if method == "POST":
            return Operation("create", "c", "C", rtype)
        return Operation("search-type", "s", "E", rtype)
    if rest == ["_search"]:
        return Operation("search-type", "s", "E", rtype)
    if rest == ["_history"]:
        return Operation("history-type", "s", "R", rtype)
    rid = rest[0]
    if len(rest) == 1:
        by_method = {
            "GET": Operation("read", "r", "R", rtype, rid),
            "PUT": Operation("update", "u", "U", rtype, rid),
            "PATCH": Operation("patch", "u", "U", rtype, rid),
            "DELETE": Operation("delete", "d", "D", rtype, rid),
        }
        return by_method.get(method, Operation("unknown", "r", "R", rtype, rid))
    if rest[1:] == ["_history"]:
        return Operation("history-instance", "r", "R", rtype, rid)
    if len(rest) == 3 and rest[1] == "_history":
        return Operation("vread", "r", "R", rtype, rid)
    return Operation("unknown", "r", "R", rtype, rid)


@dataclass(slots=True)
class Plan:
    """What the guard decided for one request."""

    access: Access | None = None
    restricted: bool = False  # confined to access.patient
    filter: bool = False  # the answer passes through filtering
    body: bytes | None = None  # the request body, when the guard had to read it
    query: str = ""  # the client's query string, for the audit
    entries: list[tuple[str, str]] = field(default_factory=list)  # (method, url) of a bundle
    bundle_type: str | None = None
