"""What the facade app holds for its lifetime: the store and the request limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from fhir_facade.search.query import Limits
from fhir_facade.store.base import Store


@dataclass(slots=True)
class FacadeState:
    store: Store
    cursor_key: bytes
    base_url: str | None = None  # set when behind a proxy; else taken from each request
    limits: Limits = field(default_factory=Limits)
    limits_body: int = 10 * 1024 * 1024
    max_bundle_entries: int = 1000
    software_version: str = "0.1.0"
