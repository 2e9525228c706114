"""What every interaction needs to know about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_facade.search.query import Limits


@dataclass(frozen=True, slots=True)
class Context:
    base_url: str  # the facade's base, e.g. http://host:8080/fhir (no trailing slash)
    cursor_key: bytes
    limits: Limits
    strict: bool = False
