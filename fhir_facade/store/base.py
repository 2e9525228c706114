"""What the FHIR API needs from a store, independent of where the resources live.

The SQL store (SQLite or PostgreSQL) implements it today; a store that writes through to an
upstream FHIR server (HAPI) implements the same protocol, which is the scale-out path.
All writes of one request, or of one transaction Bundle, happen in one unit of work: it commits
as a whole or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy import Engine

from fhir_facade.search.query import SearchQuery

Method = Literal["POST", "PUT", "DELETE"]


@dataclass(frozen=True, slots=True)
class StoredResource:
    """One version of a resource as stored: its canonical JSON bytes and version facts."""

    resource_type: str
    id: str
    version_id: int
    last_updated: str
    content: bytes | None
    method: Method = "PUT"

    @property
    def deleted(self) -> bool:
        return self.content is None

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    @property
    def location(self) -> str:
        return f"{self.resource_type}/{self.id}/_history/{self.version_id}"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The version a write produced; `created` tells 201 from 200, `changed` a no-op update."""

    resource: StoredResource
    created: bool = False
    changed: bool = True


@dataclass(slots=True)
class SearchPage:
    """A page of matches plus what _include/_revinclude brought along, and cursors both ways."""

    matches: list[StoredResource]
    included: list[StoredResource] = field(default_factory=list)
    total: int | None = None
    next_position: tuple[object, ...] | None = None
    previous_position: tuple[object, ...] | None = None


@dataclass(slots=True)
class HistoryPage:
    entries: list[StoredResource]
    total: int | None = None
    next_position: tuple[object, ...] | None = None


class Unit(Protocol):
    """One atomic unit of work against the store."""

    def read(self, resource_type: str, id: str) -> StoredResource: ...

    def vread(self, resource_type: str, id: str, version_id: int) -> StoredResource: ...

    def create(self, resource: Mapping[str, Any], *, id: str | None = None) -> WriteResult: ...

    def update(
        self, resource: Mapping[str, Any], *, if_match: int | None = None
    ) -> WriteResult: ...

    def delete(self, resource_type: str, id: str) -> StoredResource | None: ...

    def search(self, query: SearchQuery) -> SearchPage: ...

    def get_state(self, key: str) -> str | None:
        """A named value (e.g. a sync cursor) as of this unit's transaction."""
        ...

    def set_state(self, key: str, value: str) -> None:
        """Set a named value; it commits or rolls back with the unit's other writes."""
        ...

    def history(
        self,
        resource_type: str | None,
        id: str | None,
        *,
        since_us: int | None,
        count: int,
        after: tuple[object, ...] | None,
    ) -> HistoryPage: ...


class Store(Protocol):
    def unit(self) -> AbstractContextManager[Unit]: ...

    def read_unit(self) -> AbstractContextManager[Unit]:
        """A unit that only reads; it may run concurrently with writers."""
        ...

    def read(self, resource_type: str, id: str) -> StoredResource: ...

    def check(self) -> None:
        """Raise when the store cannot serve (readiness)."""

    def close(self) -> None: ...


class SqlBackedStore(Store, Protocol):
    """A store whose non-FHIR tables (sync cursors, order outbox, imaging job queue) live in a
    SQL database: `writer` and `reader` are its engines. SqlStore keeps everything there; the
    upstream store keeps FHIR resources in the upstream server and only these tables here."""

    @property
    def writer(self) -> Engine: ...

    @property
    def reader(self) -> Engine: ...
