"""One unit of work on the SQL store: reads, versioned writes and history in one transaction.

Index and history rows are buffered and written with executemany when the unit commits (or
before the unit reads), which is what makes a 100-resource transaction Bundle cost a handful of
statements rather than hundreds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from fhir_facade import errors
from fhir_facade.errors import Issue
from fhir_facade.fhir import InvalidResource, validate
from fhir_facade.search.query import SearchQuery
from fhir_facade.store import records
from fhir_facade.store.base import HistoryPage, Method, SearchPage, StoredResource, WriteResult
from fhir_facade.store.sql_search import run_search
from fhir_facade.store.tables import INDEX_TABLES, resource_history, resources, store_state

r = resources.c
h = resource_history.c
COPY_MIN_ROWS = 8
PREFETCH_CHUNK = 500
_CURRENT = (r.pk, r.version_id, r.deleted, r.content_hash, r.last_updated, r.content)


def checked(resource: Mapping[str, Any]) -> dict[str, Any]:
    """Validate once, at the edge of the store; a failure becomes a 422 naming each element."""
    try:
        return validate(resource)
    except InvalidResource as exc:
        issues = [Issue("invalid", msg, expression=(where,)) for msg, where in exc.problems]
        raise errors.invalid_resource(issues) from None


class SqlUnit:
    def __init__(self, conn: Connection, *, cursor_rows: int = 1000) -> None:
        self.conn = conn
        self.pending_index: dict[str, list[dict[str, Any]]] = {k: [] for k in INDEX_TABLES}
        self.pending_history: list[dict[str, Any]] = []
        self.pending_new: list[tuple[dict[str, Any], dict[str, Any], StoredResource, int]] = []
        self.pending_keys: set[tuple[str, str]] = set()
        self.max_rows = cursor_rows
        self.known: dict[tuple[str, str], Any] = {}  # prefetched current rows (None: absent)

    # -- buffered writes ------------------------------------------------------------------
    def flush(self) -> None:
        if self.pending_new:
            self._insert_new()
        for kind, rows in self.pending_index.items():
            if rows:
                self._bulk_insert(INDEX_TABLES[kind], rows)
                rows.clear()
        if self.pending_history:
            self._bulk_insert(resource_history, self.pending_history)
            self.pending_history = []

    def _bulk_insert(self, table: Any, rows: list[dict[str, Any]]) -> None:
        """executemany on SQLite (in-process, cheap per row); COPY on PostgreSQL, where
        psycopg's executemany still pays a server round per row -- except for a few rows,
        where setting up COPY costs more than the rounds it saves."""
        if self.conn.dialect.name != "postgresql" or len(rows) < COPY_MIN_ROWS:
            self.conn.execute(insert(table), rows)
            return
        names = list(rows[0])
        dbapi: Any = self.conn.connection.dbapi_connection  # psycopg's, inside our transaction
        copy_sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
        with dbapi.cursor() as cur, cur.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row([row[n] for n in names])

    def _insert_new(self) -> None:
        """All buffered creates in one executemany INSERT ... RETURNING, in parameter order."""
        pending, self.pending_new = self.pending_new, []
        self.pending_keys.clear()
        stmt = insert(resources).returning(r.pk, sort_by_parameter_order=True)
        try:
            pks = self.conn.execute(stmt, [row for row, *_ in pending]).scalars().all()
        except IntegrityError:
            ids = ", ".join(f"{p[2].resource_type}/{p[2].id}" for p in pending[:5])
            raise errors.conflict(
                f"a resource with one of these ids exists already: {ids}"
            ) from None
        for pk, (_, canonical, stored, us) in zip(pks, pending, strict=True):
            self._record(pk, canonical, stored, us)

    def _record(
        self, pk: int, resource: Mapping[str, Any] | None, stored: StoredResource, us: int
    ) -> None:
        self.pending_history.append(
            {
                "res_type": stored.resource_type,
                "res_id": stored.id,
                "version_id": stored.version_id,
                "last_updated": us,
                "method": stored.method,
                "content": stored.content,
            }
        )
        if resource is not None:
            for kind, rows in records.index_rows(pk, resource).items():
                self.pending_index[kind].extend(rows)

    # -- reads ----------------------------------------------------------------------------
    def read(self, resource_type: str, id: str) -> StoredResource:
        self.flush()
        return read_current(self.conn, resource_type, id)

    def vread(self, resource_type: str, id: str, version_id: int) -> StoredResource:
        self.flush()
        row = self.conn.execute(
            select(h.version_id, h.last_updated, h.content, h.method).where(
                h.res_type == resource_type, h.res_id == id, h.version_id == version_id
            )
        ).first()
        if row is None:
            raise errors.not_found(f"{resource_type}/{id} has no version {version_id}")
        stored = StoredResource(
            resource_type,
            id,
            row.version_id,
            records.instant(row.last_updated),
            row.content,
            row.method,
        )
        if stored.deleted:
            raise errors.gone(f"{resource_type}/{id} version {version_id} is a deletion")
        return stored

    def search(self, query: SearchQuery) -> SearchPage:
        self.flush()
        return run_search(self.conn, query, now=records.now_us())

    # -- writes ---------------------------------------------------------------------------
    def create(self, resource: Mapping[str, Any], *, id: str | None = None) -> WriteResult:
        """Create with a server-assigned id (or one a transaction reserved for the entry)."""
        canonical = checked(resource)
        return self._insert(canonical, id or records.new_id())

    def _insert(self, canonical: dict[str, Any], id: str) -> WriteResult:
        us = records.now_us()
        stored = StoredResource(
            canonical["resourceType"],
            id,
            1,
            records.instant(us),
            records.stamp(canonical, id, 1, records.instant(us)),
            "POST",
        )
        row = {
            "res_type": stored.resource_type,
            "res_id": id,
            "version_id": 1,
            "last_updated": us,
            "deleted": False,
            "content_hash": records.content_hash(canonical),
            "content": stored.content,
        }
        self.pending_new.append((row, canonical, stored, us))
        self.pending_keys.add((stored.resource_type, id))
        return WriteResult(stored, created=True)

    def update(self, resource: Mapping[str, Any], *, if_match: int | None = None) -> WriteResult:
        canonical = checked(resource)
        rt, id = canonical["resourceType"], canonical.get("id")
        if not id:
            raise errors.bad_request("an update needs the resource's id", f"{rt}.id")
        row = self._current(rt, id)
        if row is None:
            if if_match is not None:
                raise errors.precondition_failed(f"{rt}/{id} does not exist (If-Match given)")
            return self._insert(canonical, id)
        if if_match is not None and if_match != row.version_id:
            raise errors.precondition_failed(
                f"{rt}/{id} is at version {row.version_id}, not {if_match} (If-Match)"
            )
        digest = records.content_hash(canonical)
        if not row.deleted and digest == row.content_hash:
            current = StoredResource(
                rt, id, row.version_id, records.instant(row.last_updated), row.content, "PUT"
            )
            return WriteResult(current, changed=False)
        return self._new_version(row, canonical, digest, "PUT", identity=(rt, id))

    def prefetch(self, keys: list[tuple[str, str]]) -> None:
        """Read (and lock, on PostgreSQL) the current rows of resources about to be upserted,
        a few statements per batch instead of one SELECT ... FOR UPDATE per `update`."""
        by_type: dict[str, list[str]] = {}
        for rt, id in keys:
            if (rt, id) not in self.pending_keys:
                by_type.setdefault(rt, []).append(id)
        for rt, ids in by_type.items():
            for start in range(0, len(ids), PREFETCH_CHUNK):
                chunk = ids[start : start + PREFETCH_CHUNK]
                self.known.update({(rt, id): None for id in chunk})
                found = self.conn.execute(
                    select(r.res_id, *_CURRENT)
                    .where(r.res_type == rt, r.res_id.in_(chunk))
                    .with_for_update()
                )
                for row in found:
                    self.known[(rt, row.res_id)] = row

    def _current(self, rt: str, id: str) -> Any:
        """The current row of rt/id (locked), from the prefetch when it holds it."""
        key = (rt, id)
        if key in self.pending_keys:
            self.flush()  # created earlier in this unit: make it visible before reading it
        elif key in self.known:
            return self.known.pop(key)  # used once: a write makes it stale
        return self.conn.execute(
            select(*_CURRENT).where(r.res_type == rt, r.res_id == id).with_for_update()
        ).first()

    def _new_version(
        self,
        row: Any,
        canonical: dict[str, Any] | None,
        digest: str,
        method: Method,
        identity: tuple[str, str] | None = None,
    ) -> WriteResult:
        us = max(records.now_us(), row.last_updated + 1)
        version = row.version_id + 1
        rt, id = identity or self._identity(row.pk)
        content = (
            records.stamp(canonical, id, version, records.instant(us))
            if canonical is not None
            else None
        )
        done = self.conn.execute(
            update(resources)
            .where(r.pk == row.pk, r.version_id == row.version_id)
            .values(
                version_id=version,
                last_updated=us,
                deleted=canonical is None,
                content_hash=digest,
                content=content,
            )
        )
        if done.rowcount != 1:
            raise errors.conflict(f"{rt}/{id} was changed concurrently; read it and retry")
        self.flush()
        for table in INDEX_TABLES.values():
            self.conn.execute(delete(table).where(table.c.resource_pk == row.pk))
        stored = StoredResource(rt, id, version, records.instant(us), content, method)
        self._record(row.pk, canonical, stored, us)
        return WriteResult(stored, created=bool(row.deleted))

    def _identity(self, pk: int) -> tuple[str, str]:
        row = self.conn.execute(select(r.res_type, r.res_id).where(r.pk == pk)).one()
        return row.res_type, row.res_id

    def delete(self, resource_type: str, id: str) -> StoredResource | None:
        self.known.pop((resource_type, id), None)
        if (resource_type, id) in self.pending_keys:
            self.flush()
        row = self.conn.execute(
            select(r.pk, r.version_id, r.deleted, r.last_updated)
            .where(r.res_type == resource_type, r.res_id == id)
            .with_for_update()
        ).first()
        if row is None or row.deleted:
            return None
        return self._new_version(row, None, "", "DELETE", identity=(resource_type, id)).resource

    # -- named state (sync cursors) -------------------------------------------------------
    def get_state(self, key: str) -> str | None:
        row = self.conn.execute(select(store_state.c.value).where(store_state.c.key == key))
        return row.scalar_one_or_none()

    def set_state(self, key: str, value: str) -> None:
        values = {"value": value, "updated": records.now_us()}
        done = self.conn.execute(
            update(store_state).where(store_state.c.key == key).values(**values)
        )
        if done.rowcount == 0:
            self.conn.execute(insert(store_state).values(key=key, **values))

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
        self.flush()
        return history_page(
            self.conn, resource_type, id, since_us=since_us, count=count, after=after
        )


def read_current(conn: Connection, resource_type: str, id: str) -> StoredResource:
    row = conn.execute(
        select(r.version_id, r.last_updated, r.content).where(
            r.res_type == resource_type, r.res_id == id
        )
    ).first()
    if row is None:
        raise errors.not_found(f"{resource_type}/{id} is not known")
    if row.content is None:
        raise errors.gone(f"{resource_type}/{id} was deleted")
    return StoredResource(
        resource_type, id, row.version_id, records.instant(row.last_updated), row.content
    )


def history_page(
    conn: Connection,
    resource_type: str | None,
    id: str | None,
    *,
    since_us: int | None,
    count: int,
    after: tuple[object, ...] | None,
) -> HistoryPage:
    """Versions newest first; the keyset is (last_updated, pk) so pages survive new writes."""
    stmt = select(h.pk, h.res_type, h.res_id, h.version_id, h.last_updated, h.content, h.method)
    if resource_type is not None:
        stmt = stmt.where(h.res_type == resource_type)
    if id is not None:
        stmt = stmt.where(h.res_id == id)
    if since_us is not None:
        stmt = stmt.where(h.last_updated >= since_us)
    if after is not None:
        lu, pk = int(after[0]), int(after[1])  # type: ignore[call-overload]
        stmt = stmt.where((h.last_updated < lu) | ((h.last_updated == lu) & (h.pk < pk)))
    rows = conn.execute(stmt.order_by(h.last_updated.desc(), h.pk.desc()).limit(count + 1)).all()
    entries = [
        StoredResource(
            x.res_type, x.res_id, x.version_id, records.instant(x.last_updated), x.content, x.method
        )
        for x in rows[:count]
    ]
    nxt = (rows[count - 1].last_updated, rows[count - 1].pk) if len(rows) > count else None
    return HistoryPage(entries, next_position=nxt)
