"""SearchQuery → SQLAlchemy: criteria as `pk IN (index subquery)`, sorting and keyset paging.

Each criterion selects resource rows through its index table, so the database's composite
indexes (res_type, param, value...) do the work. Sort keys are correlated subqueries over the same
index tables, coalesced so that resources without a value sort last and a keyset cursor never has
to compare NULLs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from fhir_facade.search import values as v
from fhir_facade.search.dates import MAX_US, MIN_US
from fhir_facade.search.query import Criterion, SearchQuery, SortKey
from fhir_facade.store.tables import INDEX_TABLES, resources

_FAR = 1e308
_HIGH_STRING = "\uffff"
_DAY_US = 86_400_000_000


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _range_match(prefix: v.Prefix, lo_col: Any, hi_col: Any, lo: int, hi: int, now: int) -> Any:
    """FHIR date comparison of a stored [lo_col, hi_col) range with the search range [lo, hi)."""
    inside = and_(lo_col >= lo, hi_col <= hi)
    if prefix == "eq":
        return inside
    if prefix == "ne":
        return not_(inside)
    if prefix == "gt":
        return hi_col > hi
    if prefix == "lt":
        return lo_col < lo
    if prefix == "ge":
        return or_(hi_col > hi, inside)
    if prefix == "le":
        return or_(lo_col < lo, inside)
    if prefix == "sa":
        return lo_col >= hi
    if prefix == "eb":
        return hi_col <= lo
    slack = max(abs(now - lo) // 10, _DAY_US)  # ap: 10% of the distance from now, at least a day
    return and_(lo_col < hi + slack, hi_col > lo - slack)


def _number_match(col: Any, value: v.NumberValue) -> Any:
    p = value.prefix
    comparisons = {
        "eq": and_(col >= value.low, col < value.high),
        "ne": or_(col < value.low, col >= value.high),
        "gt": col > value.value,
        "sa": col > value.value,
        "lt": col < value.value,
        "eb": col < value.value,
        "ge": col >= value.value,
        "le": col <= value.value,
    }
    if p in comparisons:
        return comparisons[p]
    slack = abs(value.value) * 0.1
    return and_(col >= value.value - slack, col <= value.value + slack)


def _value_match(crit: Criterion, value: v.SearchValue, table: Any, now: int) -> Any:
    c = table.c
    if isinstance(value, v.TokenValue):
        conds = []
        if value.code is not None:
            conds.append(c.code == value.code)
        if not value.any_system:
            conds.append(c.system == value.system if value.system else c.system.is_(None))
        return and_(*conds) if conds else true()
    if isinstance(value, v.StringValue):
        if crit.modifier == "exact":
            return c.value_exact == value.value
        needle = _escape_like(v.normalize_string(value.value))
        pattern = f"%{needle}%" if crit.modifier == "contains" else f"{needle}%"
        return c.value_norm.like(pattern, escape="\\")
    if isinstance(value, v.DateValue):
        return _range_match(value.prefix, c.low, c.high, value.low, value.high, now)
    if isinstance(value, v.ReferenceValue):
        if value.url is not None:
            return c.url == value.url
        conds = [c.target_id == value.target_id]
        if value.target_type:
            conds.append(c.target_type == value.target_type)
        return and_(*conds)
    conds = [_number_match(c.value, value)]
    if crit.type == "quantity":
        if value.system:
            conds.append(c.system == value.system)
        if value.code:
            conds.append(c.code == value.code)
    return and_(*conds)


def _special(crit: Criterion, now: int) -> Any:
    """_id and _lastUpdated live on the resource row itself."""
    if crit.name == "_id":
        ids = [val.code for val in crit.values if isinstance(val, v.TokenValue)]
        found = resources.c.res_id.in_(ids)
        return not_(found) if crit.modifier == "not" else found
    col = resources.c.last_updated
    return or_(
        *(
            _range_match(val.prefix, col, col + 1, val.low, val.high, now)
            for val in crit.values
            if isinstance(val, v.DateValue)
        )
    )


# Which criterion drives the query: reference and token values usually select few rows (one
# patient, one code), dates and numbers many. The driver becomes `pk IN (index rows)`; the
# others are checked per candidate row through the (resource_pk, param) index, so the plan does
# not depend on table statistics (SQLite has none unless ANALYZE runs).
_SELECTIVITY = {"reference": 0, "token": 1, "string": 2, "quantity": 3, "number": 3, "date": 4}


def _drives(crit: Criterion) -> bool:
    return crit.param is not None and crit.missing is None and crit.modifier != "not"


def criterion_clause(
    res_type: str, crit: Criterion, now: int, *, per_row: bool = True
) -> ColumnElement[bool]:
    """One criterion as a condition on the resource row: `pk IN (...)` when it drives the
    query (`per_row=False`), else a correlated EXISTS on the index table."""
    if crit.param is None:
        if crit.missing is not None:
            return false() if crit.missing else true()
        return _special(crit, now)  # type: ignore[no-any-return]
    table = INDEX_TABLES[crit.type]
    scope = [table.c.res_type == res_type, table.c.param == crit.name]
    if crit.missing is None:
        scope.append(or_(*(_value_match(crit, val, table, now) for val in crit.values)))
    found: ColumnElement[bool]
    if per_row:
        found = exists().where(table.c.resource_pk == resources.c.pk, *scope[1:])
    else:
        found = resources.c.pk.in_(select(table.c.resource_pk).where(*scope))
    negate = crit.missing is True or crit.modifier == "not"
    return not_(found) if negate else found


def where_clauses(query: SearchQuery, now: int) -> list[ColumnElement[bool]]:
    """Conditions selecting the current, non-deleted resources that match the query."""
    drivers = [c for c in query.criteria if _drives(c)]
    lead = min(drivers, key=lambda c: _SELECTIVITY[c.type]) if drivers else None
    conds: list[ColumnElement[bool]] = [resources.c.deleted == false()]
    if lead is None:
        conds.append(resources.c.res_type == query.resource_type)
    else:  # the driver's index rows carry the type already
        conds.append(criterion_clause(query.resource_type, lead, now, per_row=False))
    conds += [
        criterion_clause(query.resource_type, c, now) for c in query.criteria if c is not lead
    ]
    return conds


def sort_columns(keys: Sequence[SortKey]) -> list[tuple[Any, bool]]:
    """(expression, descending) per sort key, ending with the row pk as the total-order tiebreak."""
    cols: list[tuple[Any, bool]] = []
    for key in keys:
        cols.append((_sort_expression(key), key.descending))
    cols.append((resources.c.pk, bool(keys and keys[-1].descending)))
    return cols


def _sort_expression(key: SortKey) -> Any:
    if key.name == "_id":
        return resources.c.res_id
    if key.name == "_lastUpdated":
        return resources.c.last_updated
    table = INDEX_TABLES[key.type]
    name, low, high = {  # column names: only the sorted type's table has its column
        "date": ("high" if key.descending else "low", MIN_US, MAX_US),
        "string": ("value_norm", "", _HIGH_STRING),
        "token": ("code", "", _HIGH_STRING),
        "number": ("value", -_FAR, _FAR),
        "quantity": ("value", -_FAR, _FAR),
    }[key.type]
    col = table.c[name]
    agg = func.max(col) if key.descending else func.min(col)
    sub = (
        select(agg)
        .where(table.c.resource_pk == resources.c.pk, table.c.param == key.name)
        .correlate(resources)
        .scalar_subquery()
    )
    return func.coalesce(sub, literal(low if key.descending else high))


def keyset_clause(
    cols: Sequence[tuple[Any, bool]], position: Sequence[object], *, backwards: bool
) -> ColumnElement[bool]:
    """Rows strictly after `position` in the sort order (before it when paging backwards)."""
    ors = []
    for i, (expr, desc) in enumerate(cols):
        forward_gt = desc == backwards  # ascending & forwards, or descending & backwards
        step = expr > position[i] if forward_gt else expr < position[i]
        ors.append(and_(*(c == position[j] for j, (c, _) in enumerate(cols[:i])), step))
    return or_(*ors)


def order_by(cols: Sequence[tuple[Any, bool]], *, backwards: bool) -> list[Any]:
    return [e.desc() if desc != backwards else e.asc() for e, desc in cols]
