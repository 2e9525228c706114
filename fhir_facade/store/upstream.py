"""A store that writes through to an upstream FHIR server (HAPI FHIR JPA) and reads from it.

The scale-out path of ARCHITECTURE 3.3/3.9: the API replicas stay stateless and the upstream
holds the resources, their versions and their search indexes. Resources are still validated
here, at the edge (3.2), before they travel. What is not FHIR data (sync cursors, the order
outbox, the imaging job queue) stays in the facade's own SQL database, in a local transaction
that commits with the unit.

An upstream has no transaction spanning several requests, so a unit keeps an undo log: when the
unit fails (a transaction Bundle's later entry is refused), what it wrote is compensated in
reverse order, created resources deleted and updated or deleted ones restored. The upstream's
history keeps those compensating versions; readers in other requests may see the intermediate
state for the moment it lasts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import Connection, Engine

from fhir_facade import errors
from fhir_facade.search import values as v
from fhir_facade.search.query import SearchQuery
from fhir_facade.store import records
from fhir_facade.store.base import HistoryPage, Method, SearchPage, StoredResource, WriteResult
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.store.sql_unit import SqlUnit, checked
from fhir_facade.store.upstream_client import Reply, UpstreamClient

log = logging.getLogger(__name__)
_RETURN_REPRESENTATION = {"Prefer": "return=representation"}
_RESULT_PARAMS = frozenset(
    {"_count", "_sort", "_include", "_revinclude", "_summary", "_total", "_cursor"}
)
Undo = Callable[[], None]


def stored_from(resource: Mapping[str, Any], method: Method = "PUT") -> StoredResource:
    """A resource as the upstream returned it, with the version facts its meta carries."""
    meta = resource.get("meta") or {}
    version = str(meta.get("versionId") or "1")
    return StoredResource(
        str(resource["resourceType"]),
        str(resource["id"]),
        int(version) if version.isdigit() else 1,
        str(meta.get("lastUpdated") or records.instant(records.now_us())),
        orjson.dumps(resource),
        method,
    )


def _require_resource(reply: Reply, what: str) -> dict[str, Any]:
    body = reply.body
    if not isinstance(body, dict) or not body.get("resourceType") or not body.get("id"):
        raise errors.OperationOutcomeError(
            502,
            [errors.Issue("exception", f"the FHIR store returned no resource for {what}")],
        )
    return body


class UpstreamUnit:
    """One unit of work against the upstream; see the module docstring for its atomicity."""

    def __init__(self, client: UpstreamClient, local: SqlStore, *, writes: bool = True) -> None:
        self.client = client
        self.local_store = local
        self.writes = writes
        self.undo: list[Undo] = []
        self.scope = ExitStack()  # the local SQL transaction, opened when first needed
        self._local: SqlUnit | None = None

    @property
    def local(self) -> SqlUnit:
        """This unit's transaction on the local SQL database: named state, and the queues
        (order outbox, imaging jobs) that other modules reach through `unit.conn`. It commits
        when the unit succeeds and rolls back with it."""
        if self._local is None:
            opened = self.local_store.unit() if self.writes else self.local_store.read_unit()
            self._local = self.scope.enter_context(opened)
        return self._local

    @property
    def conn(self) -> Connection:
        return self.local.conn

    # -- reads ----------------------------------------------------------------------------
    def read(self, resource_type: str, id: str) -> StoredResource:
        reply = self.client.call("GET", f"{resource_type}/{id}")
        return stored_from(_require_resource(reply, f"{resource_type}/{id}"))

    def vread(self, resource_type: str, id: str, version_id: int) -> StoredResource:
        reply = self.client.call("GET", f"{resource_type}/{id}/_history/{version_id}")
        return stored_from(_require_resource(reply, f"{resource_type}/{id}"))

    def _current(self, resource_type: str, id: str) -> dict[str, Any] | None:
        """The current version, or None when the resource is unknown or deleted."""
        try:
            return _require_resource(
                self.client.call("GET", f"{resource_type}/{id}"), f"{resource_type}/{id}"
            )
        except errors.OperationOutcomeError as exc:
            if exc.status in (404, 410):
                return None
            raise

    # -- writes ---------------------------------------------------------------------------
    def create(self, resource: Mapping[str, Any], *, id: str | None = None) -> WriteResult:
        canonical = checked(resource)
        rt = canonical["resourceType"]
        if id is None:
            body = {k: val for k, val in canonical.items() if k != "id"}
            reply = self.client.call("POST", rt, body=body, headers=_RETURN_REPRESENTATION)
        else:  # an id a transaction reserved: create it there (update-as-create)
            body = {**canonical, "id": id}
            reply = self.client.call("PUT", f"{rt}/{id}", body=body, headers=_RETURN_REPRESENTATION)
        stored = stored_from(_require_resource(reply, f"a created {rt}"), "POST")
        self.undo.append(lambda: self._delete_quietly(rt, stored.id))
        return WriteResult(stored, created=True)

    def update(self, resource: Mapping[str, Any], *, if_match: int | None = None) -> WriteResult:
        canonical = checked(resource)
        rt, id = canonical["resourceType"], canonical.get("id")
        if not id:
            raise errors.bad_request("an update needs the resource's id", f"{rt}.id")
        current = self._current(rt, id)
        if current is None and if_match is not None:
            raise errors.precondition_failed(f"{rt}/{id} does not exist (If-Match given)")
        before = stored_from(current) if current is not None else None
        if before is not None and if_match is not None and if_match != before.version_id:
            raise errors.precondition_failed(
                f"{rt}/{id} is at version {before.version_id}, not {if_match} (If-Match)"
            )
        if current is not None and records.content_hash(canonical) == records.content_hash(current):
            return WriteResult(stored_from(current), changed=False)
        headers = dict(_RETURN_REPRESENTATION)
        if before is not None:  # optimistic: refused if someone wrote in between
            headers["If-Match"] = before.etag
        try:
            reply = self.client.call("PUT", f"{rt}/{id}", body=canonical, headers=headers)
        except errors.OperationOutcomeError as exc:
            if exc.status == 412 and before is not None:
                msg = f"{rt}/{id} was changed concurrently; read it and retry"
                raise errors.conflict(msg) from None
            raise
        stored = stored_from(_require_resource(reply, f"{rt}/{id}"))
        if current is None:
            self.undo.append(lambda: self._delete_quietly(rt, id))
        else:
            self.undo.append(lambda: self._restore(current))
        changed = before is None or stored.version_id != before.version_id
        return WriteResult(stored, created=current is None and reply.status == 201, changed=changed)

    def delete(self, resource_type: str, id: str) -> StoredResource | None:
        current = self._current(resource_type, id)
        if current is None:
            return None
        self.client.call("DELETE", f"{resource_type}/{id}")
        self.undo.append(lambda: self._restore(current))
        before = stored_from(current)
        return StoredResource(
            resource_type,
            id,
            before.version_id + 1,  # what a versioned upstream assigns the deletion
            records.instant(records.now_us()),
            None,
            "DELETE",
        )

    def _delete_quietly(self, resource_type: str, id: str) -> None:
        self.client.call("DELETE", f"{resource_type}/{id}")

    def _restore(self, resource: dict[str, Any]) -> None:
        body = {k: val for k, val in resource.items() if k != "meta"}
        if resource.get("meta"):
            body["meta"] = {
                k: val
                for k, val in resource["meta"].items()
                if k not in ("versionId", "lastUpdated")
            }
        self.client.call("PUT", f"{resource['resourceType']}/{resource['id']}", body=body)

    def compensate(self) -> None:
        """Undo this unit's writes, newest first; a failure is logged, the rest still run."""
        while self.undo:
            step = self.undo.pop()
            try:
                step()
            except Exception:  # keep compensating the others; the log names what is left
                log.exception("could not compensate a write on the upstream FHIR server")

    # -- search ---------------------------------------------------------------------------
    def search(self, query: SearchQuery) -> SearchPage:
        position = query.after if query.after is not None else query.before
        if position is not None:  # a cursor holds the upstream's own link, relative to its base
            reply = self.client.call("GET", str(position[-1]))
        else:
            reply = self.client.call("GET", query.resource_type, params=upstream_params(query))
        bundle = reply.body if isinstance(reply.body, dict) else {}
        page = SearchPage([], total=bundle.get("total") if query.total != "none" else None)
        for entry in bundle.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict) or resource.get("resourceType") == "OperationOutcome":
                continue
            mode = (entry.get("search") or {}).get("mode", "match")
            (page.included if mode == "include" else page.matches).append(stored_from(resource))
        pad = (None,) * len(query.sort)
        nxt = self.client.relative(_link(bundle, "next"))
        if nxt is not None:
            page.next_position = (*pad, nxt)
        prev = self.client.relative(_link(bundle, "previous") or _link(bundle, "prev"))
        if prev is not None:
            page.previous_position = (*pad, prev)
        return page

    # -- history --------------------------------------------------------------------------
    def history(
        self,
        resource_type: str | None,
        id: str | None,
        *,
        since_us: int | None,
        count: int,
        after: tuple[object, ...] | None,
    ) -> HistoryPage:
        """One upstream history page per page served. The facade's history cursor is a pair of
        integers, so it holds the page's offset; the upstream's next links are followed to
        reach it (a deep page costs one request per page before it)."""
        path = "/".join(p for p in (resource_type, id, "_history") if p)
        params = [("_count", str(count))]
        if since_us is not None:
            params.append(("_since", records.instant(since_us)))
        reply = self.client.call("GET", path, params=params)
        offset = int(after[0]) if after is not None else 0  # type: ignore[call-overload]
        for _ in range(offset // count):
            nxt = self.client.relative(_link(reply.body, "next"))
            if nxt is None:
                return HistoryPage([])
            reply = self.client.call("GET", nxt)
        entries = [history_entry(e) for e in (reply.body or {}).get("entry") or []]
        more = self.client.relative(_link(reply.body, "next")) is not None
        return HistoryPage(entries, next_position=(offset + count, 0) if more else None)

    # -- named state (sync cursors) -------------------------------------------------------
    def get_state(self, key: str) -> str | None:
        return self.local.get_state(key)

    def set_state(self, key: str, value: str) -> None:
        self.local.set_state(key, value)


def _link(bundle: Any, relation: str) -> str | None:
    for link in (bundle or {}).get("link") or []:
        if isinstance(link, dict) and link.get("relation") == relation and link.get("url"):
            return str(link["url"])
    return None


def history_entry(entry: dict[str, Any]) -> StoredResource:
    """A history Bundle entry: a version, or a deletion (no resource, facts in request and
    response)."""
    resource = entry.get("resource")
    request = entry.get("request") or {}
    method = str(request.get("method") or "PUT").upper()
    method = method if method in ("POST", "PUT", "DELETE") else "PUT"
    if isinstance(resource, dict):
        return stored_from(resource, method)  # type: ignore[arg-type]  # checked just above
    response = entry.get("response") or {}
    path = urlsplit(str(entry.get("fullUrl") or request.get("url") or "")).path
    parts = [p for p in path.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    etag = str(response.get("etag") or "").removeprefix("W/").strip('"')
    modified = str(response.get("lastModified") or "")
    return StoredResource(
        parts[-2] if len(parts) >= 2 else "",
        parts[-1] if parts else "",
        int(etag) if etag.isdigit() else 0,
        _instant(modified),
        None,
        "DELETE",
    )


def _instant(value: str) -> str:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return value
    except ValueError:
        return records.instant(records.now_us())


def upstream_params(query: SearchQuery) -> list[tuple[str, str]]:
    """The search as the upstream should run it: the parameters the facade applied, with
    references re-written from the parsed values (an absolute reference to the facade's own
    base has become `Type/id`), and the page size always given."""
    criteria = iter(query.criteria)
    out: list[tuple[str, str]] = []
    for key, raw in query.applied:
        if key.partition(":")[0] in _RESULT_PARAMS:
            if key != "_count":
                out.append((key, raw))
            continue
        crit = next(criteria)
        if crit.type == "reference" and crit.missing is None:
            raw = ",".join(_reference(val) for val in crit.values)
        out.append((key, raw))
    out.append(("_count", str(query.count)))
    if query.total == "accurate" and not any(k == "_total" for k, _ in out):
        out.append(("_total", "accurate"))  # the facade's default; HAPI may omit it otherwise
    return out


def _reference(value: v.SearchValue) -> str:
    assert isinstance(value, v.ReferenceValue)  # a reference parameter's parsed values
    if value.url:
        return value.url
    if value.target_type:
        return f"{value.target_type}/{value.target_id}"
    return str(value.target_id)


class UpstreamStore:
    """The Store protocol over an upstream FHIR server; named state in a local SQL store."""

    def __init__(self, client: UpstreamClient, state: SqlStore) -> None:
        self.client = client
        self.state = state

    @contextmanager
    def unit(self) -> Iterator[UpstreamUnit]:
        unit = UpstreamUnit(self.client, self.state)
        with unit.scope:  # an exception reaches the local transaction too: it rolls back
            try:
                yield unit
            except BaseException:
                unit.compensate()
                raise

    @contextmanager
    def read_unit(self) -> Iterator[UpstreamUnit]:
        unit = UpstreamUnit(self.client, self.state, writes=False)
        with unit.scope:
            yield unit

    @property
    def writer(self) -> Engine:
        """The local SQL database's engine (the job queue and outbox tables; SqlBackedStore)."""
        return self.state.writer

    @property
    def reader(self) -> Engine:
        return self.state.reader

    def read(self, resource_type: str, id: str) -> StoredResource:
        return UpstreamUnit(self.client, self.state).read(resource_type, id)

    def check(self) -> None:
        self.client.check()
        self.state.check()

    def close(self) -> None:
        self.client.close()
        self.state.close()
