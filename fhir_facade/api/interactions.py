"""The FHIR interactions, shared by the REST routes and by batch/transaction entries.

Each takes a unit of work and plain inputs and returns a Result; turning that into an HTTP
response (or a Bundle response entry) is the caller's job, so both paths behave identically.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from fhir_facade import errors
from fhir_facade.api.context import Context
from fhir_facade.orders import hook as order_hook
from fhir_facade.search import cursor as cursors
from fhir_facade.search.dates import fhir_date_range
from fhir_facade.search.parameters import SUPPORTED_TYPES
from fhir_facade.search.query import SearchQuery, parse_search
from fhir_facade.store.base import HistoryPage, SearchPage, StoredResource, Unit

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True, slots=True)
class Result:
    status: int
    resource: StoredResource | None = None
    body: bytes | None = None  # a Bundle or OperationOutcome when not a single resource

    @property
    def content(self) -> bytes | None:
        return (
            self.body
            if self.body is not None
            else (self.resource.content if self.resource else None)
        )


def require_type(resource_type: str) -> None:
    if resource_type not in SUPPORTED_TYPES:
        raise errors.OperationOutcomeError(
            404,
            [
                errors.Issue(
                    "not-supported",
                    f"resource type {resource_type!r} is not served "
                    "here; see /metadata for the supported types",
                )
            ],
        )


def require_id(rtype: str, id: str) -> None:
    """A 400 for ids the FHIR id type cannot hold, before they reach the database (a NUL or an
    over-long id is an error there, not a miss)."""
    if not _ID.fullmatch(id):
        raise errors.bad_request(
            f"{id!r} is not a FHIR id (1-64 characters of A-Z, a-z, 0-9, '-', '.')", f"{rtype}.id"
        )


def read(unit: Unit, rtype: str, id: str) -> Result:
    require_type(rtype)
    require_id(rtype, id)
    return Result(200, unit.read(rtype, id))


def vread(unit: Unit, rtype: str, id: str, vid: str) -> Result:
    require_type(rtype)
    require_id(rtype, id)
    if not vid.isdigit():
        raise errors.not_found(f"{rtype}/{id} has no version {vid!r}")
    return Result(200, unit.vread(rtype, id, int(vid)))


def create(
    unit: Unit, rtype: str, body: dict[str, Any], ctx: Context, if_none_exist: str | None = None
) -> Result:
    require_type(rtype)
    if if_none_exist:
        found = existing(unit, rtype, if_none_exist, ctx)
        if found is not None:
            return Result(200, found)
    return created(unit, body)


def created(unit: Unit, body: dict[str, Any], id: str | None = None) -> Result:
    """A plain create, through the order hook (a re-posted order answers its first copy)."""
    earlier = order_hook.before_create(unit, body)
    if earlier is not None:
        return Result(200, earlier)
    stored = unit.create(body, id=id).resource
    order_hook.after_write(unit, stored)
    return Result(201, stored)


def existing(unit: Unit, rtype: str, criteria: str, ctx: Context) -> StoredResource | None:
    """The one resource conditional-create criteria select; 412 when they select several."""
    require_type(rtype)
    found = _conditional_matches(unit, rtype, criteria, ctx)
    if len(found) > 1:
        raise errors.precondition_failed(f"If-None-Exist {criteria!r} matches several resources")
    return found[0] if found else None


def _conditional_matches(
    unit: Unit, rtype: str, criteria: str, ctx: Context
) -> list[StoredResource]:
    pairs = parse_qsl(criteria.partition("?")[2] or criteria, keep_blank_values=True)
    query = parse_search(rtype, pairs, strict=True, base_url=ctx.base_url, limits=ctx.limits)
    if not query.criteria:
        raise errors.bad_request(f"conditional criteria {criteria!r} select nothing specific")
    query.count, query.total = 2, "none"
    return unit.search(query).matches


def localize_references(value: Any, base_url: str) -> Any:
    """References to this server's own base become relative, as FHIR servers store them.

    Only relative references match a search by id, so `http://us/fhir/Patient/1` must be
    stored as `Patient/1`; absolute references to other servers stay as they are.
    """
    prefix = base_url.rstrip("/") + "/"
    if isinstance(value, dict):
        out = {k: localize_references(v, base_url) for k, v in value.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref.startswith(prefix):
            out["reference"] = ref[len(prefix) :]
        return out
    if isinstance(value, list):
        return [localize_references(v, base_url) for v in value]
    return value


def update(
    unit: Unit, rtype: str, id: str, body: dict[str, Any], if_match: int | None = None
) -> Result:
    require_type(rtype)
    if body.get("id") is None:
        raise errors.bad_request("the resource in an update must carry its id", f"{rtype}.id")
    if body["id"] != id:
        raise errors.bad_request(
            f"the resource's id {body['id']!r} does not match the URL's {id!r}", f"{rtype}.id"
        )
    require_id(rtype, id)
    written = unit.update(body, if_match=if_match)
    order_hook.after_write(unit, written.resource)
    return Result(201 if written.created else 200, written.resource)


def delete(unit: Unit, rtype: str, id: str) -> Result:
    require_type(rtype)
    require_id(rtype, id)
    unit.delete(rtype, id)
    order_hook.after_delete(unit, rtype, id)
    return Result(204)


def search(unit: Unit, rtype: str, pairs: Sequence[tuple[str, str]], ctx: Context) -> Result:
    require_type(rtype)
    query = _query_from(rtype, pairs, ctx)
    page = unit.search(query)
    return Result(200, body=orjson.dumps(_searchset(rtype, query, page, ctx)))


def _query_from(rtype: str, pairs: Sequence[tuple[str, str]], ctx: Context) -> SearchQuery:
    token = next((val for key, val in pairs if key == "_cursor"), None)
    if token is None:
        return parse_search(
            rtype, pairs, strict=ctx.strict, base_url=ctx.base_url, limits=ctx.limits
        )
    cur = cursors.decode(token, ctx.cursor_key)
    if cur.resource_type != rtype:
        raise errors.bad_request("the paging cursor belongs to another search", "_cursor")
    query = parse_search(rtype, cur.pairs, base_url=ctx.base_url, limits=ctx.limits)
    if len(cur.position) != len(query.sort) + 1:
        raise errors.bad_request("the paging cursor is invalid; start the search again", "_cursor")
    if cur.direction == "next":
        query.after = cur.position
    else:
        query.before = cur.position
    return query


def _link(relation: str, url: str) -> dict[str, str]:
    return {"relation": relation, "url": url}


def _searchset(rtype: str, query: SearchQuery, page: SearchPage, ctx: Context) -> dict[str, Any]:
    base = f"{ctx.base_url}/{rtype}"
    links = [_link("self", f"{base}?{query.self_query()}" if query.applied else base)]
    edges: tuple[tuple[cursors.Direction, tuple[object, ...] | None], ...] = (
        ("next", page.next_position),
        ("previous", page.previous_position),
    )
    for relation, position in edges:
        if position is not None:
            cur = cursors.Cursor(rtype, tuple(query.applied), position, relation)
            token = cursors.encode(cur, ctx.cursor_key)
            links.append(_link(relation, f"{base}?_cursor={token}"))
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = links
    entries = [_entry(m, "match", ctx) for m in page.matches]
    entries += [_entry(m, "include", ctx) for m in page.included]
    if entries:
        bundle["entry"] = entries
    return bundle


def _entry(stored: StoredResource, mode: str, ctx: Context) -> dict[str, Any]:
    return {
        "fullUrl": f"{ctx.base_url}/{stored.resource_type}/{stored.id}",
        "resource": orjson.Fragment(stored.content or b"{}"),
        "search": {"mode": mode},
    }


def history(
    unit: Unit, rtype: str | None, id: str | None, pairs: Sequence[tuple[str, str]], ctx: Context
) -> Result:
    if rtype is not None:
        require_type(rtype)
        if id is not None:
            require_id(rtype, id)
    params = dict(pairs)
    since = None
    if "_since" in params:
        try:
            since = fhir_date_range(params["_since"])[0]
        except ValueError as exc:
            raise errors.bad_request(f"_since: {exc}", "_since") from None
    count_raw = params.get("_count", str(ctx.limits.default_count))
    if not count_raw.isdigit() or int(count_raw) == 0:
        raise errors.bad_request("_count must be a positive integer", "_count")
    count = min(int(count_raw), ctx.limits.max_count)
    after = None
    if "_cursor" in params:
        cur = cursors.decode(params["_cursor"], ctx.cursor_key)
        keyset = len(cur.position) == 2 and all(type(x) is int for x in cur.position)
        if cur.resource_type != (rtype or "*") or not keyset:  # e.g. a search's cursor
            raise errors.bad_request("the paging cursor belongs to another search", "_cursor")
        after = cur.position
    page = unit.history(rtype, id, since_us=since, count=count, after=after)
    if id is not None and not page.entries and after is None:
        unit.read(rtype or "", id)  # 404 for an unknown resource rather than an empty history
    return Result(200, body=orjson.dumps(_history_bundle(rtype, id, pairs, page, ctx)))


def _history_bundle(
    rtype: str | None,
    id: str | None,
    pairs: Sequence[tuple[str, str]],
    page: HistoryPage,
    ctx: Context,
) -> dict[str, Any]:
    path = "/".join(p for p in (ctx.base_url, rtype, id, "_history") if p)
    kept = tuple((k, val) for k, val in pairs if k in ("_since", "_count"))
    links = [
        _link("self", path + ("?" + "&".join(f"{k}={val}" for k, val in kept) if kept else ""))
    ]
    if page.next_position is not None:
        token = cursors.encode(
            cursors.Cursor(rtype or "*", kept, page.next_position, "next"), ctx.cursor_key
        )
        links.append(
            _link(
                "next",
                f"{path}?{'&'.join(f'{k}={v}' for k, v in kept)}"
                f"{'&' if kept else ''}_cursor={token}",
            )
        )
    entries = []
    for item in page.entries:
        entry: dict[str, Any] = {"fullUrl": f"{ctx.base_url}/{item.resource_type}/{item.id}"}
        if item.content is not None:
            entry["resource"] = orjson.Fragment(item.content)
        entry["request"] = {
            "method": item.method,
            "url": item.resource_type + ("" if item.method == "POST" else f"/{item.id}"),
        }
        entry["response"] = {
            "status": "410" if item.deleted else ("201" if item.method == "POST" else "200"),
            "etag": item.etag,
            "lastModified": item.last_updated,
        }
        entries.append(entry)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history", "link": links}
    if entries:
        bundle["entry"] = entries
    return bundle
