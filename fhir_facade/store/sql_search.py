"""Running a SearchQuery on the SQL store: total, one keyset page, and included resources."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, false, func, select

from fhir_facade.search.query import Include, SearchQuery
from fhir_facade.search.sql import keyset_clause, order_by, sort_columns, where_clauses
from fhir_facade.store import records
from fhir_facade.store.base import SearchPage, StoredResource
from fhir_facade.store.tables import idx_reference, resources

r = resources.c
ref = idx_reference.c
_ROW = (r.pk, r.res_type, r.res_id, r.version_id, r.last_updated, r.content)


def _stored(row: Any) -> StoredResource:
    return StoredResource(
        row.res_type, row.res_id, row.version_id, records.instant(row.last_updated), row.content
    )


def run_search(conn: Connection, query: SearchQuery, *, now: int) -> SearchPage:
    conds = where_clauses(query, now)
    total = None
    if query.total != "none" or query.summary_count:
        total = conn.execute(select(func.count()).select_from(resources).where(*conds)).scalar_one()
    if query.summary_count:
        return SearchPage([], total=total)
    cols = sort_columns(query.sort)
    backwards = query.before is not None
    stmt = select(*_ROW, *(c for c, _ in cols[:-1])).where(*conds)
    if query.after is not None:
        stmt = stmt.where(keyset_clause(cols, query.after, backwards=False))
    if query.before is not None:
        stmt = stmt.where(keyset_clause(cols, query.before, backwards=True))
    rows = list(
        conn.execute(stmt.order_by(*order_by(cols, backwards=backwards)).limit(query.count + 1))
    )
    more = len(rows) > query.count
    rows = rows[: query.count]
    if backwards:
        rows.reverse()

    def position(row: Any) -> tuple[object, ...]:
        return (*row[len(_ROW) :], row.pk)

    page = SearchPage([_stored(x) for x in rows], total=total)
    if rows:
        if more or backwards:
            page.next_position = position(rows[-1])
        if query.after is not None or (backwards and more):
            page.previous_position = position(rows[0])
    page.included = _included(conn, query, [x.pk for x in rows], page.matches)
    return page


def _included(
    conn: Connection, query: SearchQuery, pks: list[int], matches: list[StoredResource]
) -> list[StoredResource]:
    if not pks or not (query.includes or query.revincludes):
        return []
    seen = {(m.resource_type, m.id) for m in matches}
    found: list[StoredResource] = []
    for inc in query.includes:
        found += _forward(conn, inc, pks)
    for inc in query.revincludes:
        found += _reverse(conn, inc, query.resource_type, [m.id for m in matches])
    out = []
    for item in found:
        if (item.resource_type, item.id) not in seen:
            seen.add((item.resource_type, item.id))
            out.append(item)
    return out


def _forward(conn: Connection, inc: Include, pks: list[int]) -> list[StoredResource]:
    targets = select(ref.target_type, ref.target_id).where(
        ref.resource_pk.in_(pks), ref.param == inc.param.name, ref.target_id.is_not(None)
    )
    if inc.target_type:
        targets = targets.where(ref.target_type == inc.target_type)
    sub = targets.distinct().subquery()
    stmt = (
        select(*_ROW)
        .join(sub, and_(r.res_type == sub.c.target_type, r.res_id == sub.c.target_id))
        .where(r.deleted == false())
    )
    return [_stored(x) for x in conn.execute(stmt)]


def _reverse(
    conn: Connection, inc: Include, target_type: str, ids: list[str]
) -> list[StoredResource]:
    if inc.target_type and inc.target_type != target_type:
        return []
    sources = select(ref.resource_pk).where(
        ref.res_type == inc.source_type,
        ref.param == inc.param.name,
        ref.target_type == target_type,
        ref.target_id.in_(ids),
    )
    stmt = select(*_ROW).where(r.pk.in_(sources), r.deleted == false())
    return [_stored(x) for x in conn.execute(stmt)]
