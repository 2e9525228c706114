"""Catalog searches as senaite.jsonapi runs them: known indexes as filters, sorting, batching.

Only parameters named like an index of the searched catalog filter (others are ignored, as
`get_request_query` does). ZPublisher records pass ranges straight to the catalog, e.g.
`modified.query:record:date=2024-10-07T08:00:00+00:00&modified.range:record=min`: that is the
incremental "modified since" query SENAITE supports besides `recent_modified=today|...`. Zope's
DateIndex stores minutes, so date filters and sorting work at minute resolution, like the real one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.datastructures import URL, QueryParams

from simulators.senaite.render import catalog_of
from simulators.senaite.schemas import BOOLEAN_INDEXES, DATE_INDEXES, INDEXES, KEYWORD_INDEXES
from simulators.senaite.shapes import Context, client_of
from simulators.senaite.shapes_lab import mrn_value
from simulators.senaite.store import Obj

_INACTIVE = {"inactive", "cancelled", "invalid", "rejected"}
_TRUE = {"1", "y", "yes", "true", "on"}
_DESC = {"desc", "descending", "d", "down", "reverse"}


class QueryError(ValueError):
    """A query value the catalog cannot use (SENAITE reports it as `success: false`)."""


def parse_date(value: str) -> datetime:
    """A date as Zope's DateTime reads the common forms (ISO-8601, `YYYY-MM-DD HH:MM:SS`)."""
    text = value.strip().replace(" ", "T", 1).replace("/", "-").replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"Invalid date: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def minute(value: datetime) -> datetime:
    """DateIndex resolution: the value truncated to the minute, in UTC."""
    return value.astimezone(UTC).replace(second=0, microsecond=0)


def index_value(obj: Obj, name: str, ctx: Context, cols: Mapping[str, Any]) -> Any:
    """The value an index holds for the object (dates as datetimes, keywords as lists)."""
    sample = obj.parent if obj.portal_type == "Analysis" else obj
    special: dict[str, Callable[[], Any]] = {
        "UID": lambda: obj.uid,
        "getId": lambda: obj.id,
        "id": lambda: obj.id,
        "Title": lambda: obj.title,
        "title": lambda: obj.title,
        "sortable_title": lambda: obj.title.lower(),
        "Description": lambda: obj.description,
        "path": lambda: ctx.store.path(obj),
        "Creator": lambda: "admin",
        "Type": lambda: obj.portal_type,
        "is_active": lambda: obj.review_state not in _INACTIVE,
        "created": lambda: obj.created,
        "modified": lambda: obj.modified,
        "is_received": lambda: bool(obj.fields.get("DateReceived")),
        "medical_record_number": lambda: [mrn_value(obj)] if mrn_value(obj) else [],
        "is_temporary_mrn": lambda: bool(
            (obj.fields.get("MedicalRecordNumber") or {}).get("temporary")
        ),
        "getAncestorsUIDs": lambda: [o.uid for o in (sample, client_of(obj)) if o is not None],
    }
    if name in special:
        return special[name]()
    if name in DATE_INDEXES and sample is not None:
        field_name = name.removeprefix("get")
        return obj.fields.get(field_name) or sample.fields.get(field_name)
    return cols.get(name)


@dataclass
class Query:
    """A parsed catalog query."""

    catalog: str | None
    filters: dict[str, list[str]] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: str = ""
    path: str = ""
    depth: int = -1
    sort_on: str | None = None
    reverse: bool = False
    sort_limit: int | None = None
    recent: dict[str, str] = field(default_factory=dict)


def parse_query(params: QueryParams, catalog: str | None) -> Query:
    query = Query(catalog=catalog)
    for key, value in params.multi_items():
        head, _, converters = key.partition(":")
        if "record" in converters.split(":") and "." in head:
            name, attr = head.split(".", 1)
            record = query.records.setdefault(name, {})
            if "list" in converters.split(":"):
                record.setdefault(attr, []).append(value)
            else:
                record[attr] = value
        else:
            query.filters.setdefault(key, []).append(value)
    for name, record in query.records.items():
        if name in DATE_INDEXES:  # Zope's DateTime() fails on the query, matches or not
            raw = record.get("query")
            for value in raw if isinstance(raw, list) else [raw] if raw is not None else []:
                parse_date(str(value))
    query.text = params.get("q", "")
    query.path = params.get("path", "")
    query.depth = _int(params.get("depth"), -1)
    query.sort_on = params.get("sort_on")
    query.reverse = params.get("sort_order", "").lower() in _DESC
    limit = _int(params.get("sort_limit"), 0)
    query.sort_limit = limit or None
    for which in ("recent_created", "recent_modified"):
        if params.get(which):
            query.recent[which.removeprefix("recent_")] = params[which]
    return query


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def recent_start(period: str, now: datetime) -> datetime:
    """`api.calculate_delta_date`: the start of today, yesterday, this week, month or year."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    starts = {
        "today": today,
        "yesterday": today - timedelta(days=1),
        "this-week": today - timedelta(days=today.weekday()),
        "this-month": today.replace(day=1),
        "this-year": today.replace(month=1, day=1),
    }
    if period not in starts:
        raise QueryError(f"Unknown period {period!r}")
    return starts[period]


def _match_plain(name: str, have: Any, wanted: Sequence[str]) -> bool:
    if name in DATE_INDEXES:
        return have is not None and any(minute(have) == minute(parse_date(w)) for w in wanted)
    if name in KEYWORD_INDEXES:
        keys = {k for w in wanted for k in w.split(",")}
        return bool(keys & set(have or []))
    if name in BOOLEAN_INDEXES:
        return any(bool(have) == (w.lower() in _TRUE) for w in wanted)
    return have is not None and str(have) in wanted


def _match_record(name: str, have: Any, record: dict[str, Any]) -> bool:
    raw = record.get("query")
    values = raw if isinstance(raw, list) else [raw] if raw is not None else []
    if name not in DATE_INDEXES:
        return _match_plain(name, have, [str(v) for v in values])
    if have is None or not values:
        return False
    dates = [minute(parse_date(v)) for v in values]
    value = minute(have)
    usage = str(record.get("range", ""))
    if usage == "min":
        return value >= dates[0]
    if usage == "max":
        return value <= dates[0]
    if usage == "min:max":
        return dates[0] <= value <= dates[-1]
    return value in dates


def matches(obj: Obj, query: Query, ctx: Context, cols: Mapping[str, Any]) -> bool:
    indexes = INDEXES[catalog_of(obj)]
    for name, wanted in query.filters.items():
        have = index_value(obj, name, ctx, cols) if name in indexes else None
        if name in indexes and name != "path" and not _match_plain(name, have, wanted):
            return False
    for name, record in query.records.items():
        if name in indexes and not _match_record(name, index_value(obj, name, ctx, cols), record):
            return False
    for name, period in query.recent.items():
        when = index_value(obj, name, ctx, cols)
        if when is None or minute(when) < recent_start(period, ctx.store.now()):
            return False
    if query.path:
        path = ctx.store.path(obj)
        below = path[len(query.path.rstrip("/")) :]
        if not path.startswith(query.path.rstrip("/")) or (below and not below.startswith("/")):
            return False
        if query.depth >= 0 and below.count("/") > query.depth:
            return False
    if query.text:
        haystack = " ".join(
            str(v) for v in (obj.id, obj.title, obj.description, *obj.fields.values()) if v
        ).lower()
        if not all(t in haystack for t in query.text.lower().replace("*", " ").split()):
            return False
    return True


def sort_key(obj: Obj, name: str, ctx: Context, cols: Mapping[str, Any]) -> tuple[Any, ...]:
    value = index_value(obj, name, ctx, cols)
    if isinstance(value, datetime):
        return (1, minute(value).isoformat(), obj.seq)
    return (0 if value is None else 1, "" if value is None else str(value), obj.seq)


def envelope(total: int, start: int, size: int, url: URL) -> dict[str, Any]:
    """Batch keys of a search answer (`count, pagesize, page, pages, next, previous`)."""
    pages = max(1, math.ceil(total / size))
    nxt = url.include_query_params(b_start=start + size) if start + size < total else None
    prev = url.include_query_params(b_start=max(0, start - size)) if start > 0 else None
    return {
        "count": total,
        "pagesize": size,
        "page": start // size + 1,
        "pages": pages,
        "next": str(nxt) if nxt else None,
        "previous": str(prev) if prev else None,
    }
