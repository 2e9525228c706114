"""The FHIR search parameters OpenEMR's services declare (source-systems.md §1.7), evaluated on
the rendered resources. Anything else is ignored, as OpenEMR ignores it.

Token values accept `system|code`, `code`, `|code` and `system|`; dates take the `eq ne lt le gt
ge` prefixes with the precision of the value given; a comma ORs values, a repeated parameter
ANDs. `_count`/`_offset` cut the single (unpaged) result list the way OpenEMR's SQL LIMIT does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

Resource = dict[str, Any]
Kind = Literal["token", "string", "date", "reference"]
Extract = Callable[[Resource], list[Any]]

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})(?:T(?P<H>\d{2}):(?P<M>\d{2})"
    r"(?::(?P<S>\d{2})(?P<f>\.\d+)?)?(?P<z>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge")


@dataclass(frozen=True, slots=True)
class Param:
    kind: Kind
    extract: Extract


def date_range(text: str) -> tuple[datetime, datetime] | None:
    """[start, end) of a FHIR date/dateTime/instant at the precision it is written with."""
    m = _DATE.match(text.strip().replace(" ", "T", 1))
    if not m:
        return None
    g = m.groupdict()
    zone: timezone = UTC
    if g["z"] and g["z"] != "Z":
        sign = 1 if g["z"][0] == "+" else -1
        hours, minutes = int(g["z"][1:3]), int(g["z"][4:6])
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    year, month, day = int(g["y"]), int(g["m"] or 1), int(g["d"] or 1)
    hour, minute, second = int(g["H"] or 0), int(g["M"] or 0), int(g["S"] or 0)
    micro = int(float(g["f"]) * 1_000_000) if g["f"] else 0
    start = datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    if g["f"]:
        end = start + timedelta(microseconds=1)
    elif g["S"]:
        end = start + timedelta(seconds=1)
    elif g["M"]:
        end = start + timedelta(minutes=1)
    elif g["d"]:
        end = start + timedelta(days=1)
    elif g["m"]:
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    else:
        end = datetime(year + 1, 1, 1, tzinfo=zone)
    return start, end


def _date_matches(prefix: str, query: tuple[datetime, datetime], target: str) -> bool:
    span = date_range(target)
    if span is None:
        return False
    (qs, qe), (ts, te) = query, span
    inside = qs <= ts and te <= qe
    if prefix == "eq":
        return inside
    if prefix == "ne":
        return not inside
    if prefix == "lt":
        return ts < qs
    if prefix == "le":
        return ts < qe
    if prefix == "gt":
        return te > qe
    return te > qs or inside  # ge


def _token_matches(query: str, values: list[Any]) -> bool:
    system, bar, code = query.partition("|")
    for value in values:
        v_system, v_code = value if isinstance(value, tuple) else (None, value)
        if not bar:
            if str(v_code).lower() == query.lower():
                return True
        elif (not system or system == v_system) and (not code or code == str(v_code)):
            return True
    return False


def _string_matches(query: str, modifier: str, values: list[Any]) -> bool:
    q = query.lower()
    for value in values:
        text = str(value).lower()
        hit = (
            text == q
            if modifier == "exact"
            else q in text
            if modifier == "contains"
            else (text.startswith(q))
        )
        if hit:
            return True
    return False


def _reference_matches(query: str, values: list[Any]) -> bool:
    wanted = query.rsplit("/", 1)[-1]
    return any(str(v).rsplit("/", 1)[-1] == wanted for v in values)


def _value_matches(param: Param, modifier: str, raw: str, resource: Resource) -> bool:
    values = param.extract(resource)
    if param.kind == "token":
        return _token_matches(raw, values)
    if param.kind == "string":
        return _string_matches(raw, modifier, values)
    if param.kind == "reference":
        return _reference_matches(raw, values)
    prefix = raw[:2] if raw[:2] in _PREFIXES else "eq"
    query = date_range(raw[2:] if raw[:2] in _PREFIXES else raw)
    return query is not None and any(_date_matches(prefix, query, str(v)) for v in values)


def matches(params: dict[str, Param], query: Sequence[tuple[str, str]], resource: Resource) -> bool:
    """AND over the known parameters given, OR over each one's comma-separated values."""
    for name, raw in query:
        base, _, modifier = name.partition(":")
        param = params.get(base)
        if param is None or raw == "":
            continue
        if not any(_value_matches(param, modifier, v, resource) for v in raw.split(",")):
            return False
    return True


def select(
    resources: Iterable[Resource], params: dict[str, Param], query: Sequence[tuple[str, str]]
) -> list[Resource]:
    found = [r for r in resources if matches(params, query, r)]
    options = dict(query)
    if options.get("_sort", "").lstrip("-") == "_lastUpdated":
        found.sort(key=lambda r: str(r["meta"]["lastUpdated"]))
        if options["_sort"].startswith("-"):
            found.reverse()
    offset = int(options["_offset"]) if options.get("_offset", "").isdigit() else 0
    count = int(options["_count"]) if options.get("_count", "").isdigit() else None
    return found[offset : None if count is None else offset + count]
