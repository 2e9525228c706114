"""From a search request's (name, value) pairs to a SearchQuery the store can run.

Unknown or unsupported parameters follow the client's `Prefer: handling=`: `strict` answers 400,
`lenient` (the default the specification suggests) drops them and leaves them out of the self
link, so the client can see what was applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlencode

from fhir_facade.errors import Issue, OperationOutcomeError, bad_request
from fhir_facade.search import values as v
from fhir_facade.search.parameters import SearchParam, SearchParamType, params_for

TotalMode = Literal["none", "estimate", "accurate"]
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # never in a stored string (fhir.py)
SPECIAL_TYPES: dict[str, SearchParamType] = {"_id": "token", "_lastUpdated": "date"}
_MODIFIERS: dict[str, frozenset[str]] = {
    "token": frozenset({"not", "missing"}),
    "string": frozenset({"exact", "contains", "missing"}),
    "date": frozenset({"missing"}),
    "reference": frozenset({"missing"}),  # plus a resource type, e.g. subject:Patient
    "quantity": frozenset({"missing"}),
    "number": frozenset({"missing"}),
}
_RESULT_PARAMS = frozenset(
    {
        "_count",
        "_sort",
        "_include",
        "_revinclude",
        "_summary",
        "_total",
        "_cursor",
        "_format",
        "_pretty",
    }
)


@dataclass(frozen=True, slots=True)
class Criterion:
    """One search parameter occurrence: its values are OR'd, criteria are AND'd."""

    name: str
    type: SearchParamType
    param: SearchParam | None  # None for _id and _lastUpdated, which live on the resource row
    modifier: str | None
    values: tuple[v.SearchValue, ...] = ()
    missing: bool | None = None


@dataclass(frozen=True, slots=True)
class SortKey:
    name: str
    type: SearchParamType
    param: SearchParam | None
    descending: bool


@dataclass(frozen=True, slots=True)
class Include:
    """`_include=Source:param[:Target]` or, as revinclude, resources of Source pointing here."""

    source_type: str
    param: SearchParam
    target_type: str | None


@dataclass(slots=True)
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int = 20
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    total: TotalMode = "accurate"
    summary_count: bool = False
    after: tuple[object, ...] | None = None
    before: tuple[object, ...] | None = None
    applied: list[tuple[str, str]] = field(default_factory=list)

    def self_query(self) -> str:
        """The query string of the parameters applied, for the Bundle's self link."""
        return urlencode(self.applied)


@dataclass(frozen=True, slots=True)
class Limits:
    default_count: int = 20
    max_count: int = 1000
    max_params: int = 64
    max_values: int = 100


class _Parser:
    def __init__(self, resource_type: str, *, strict: bool, base_url: str | None, limits: Limits):
        self.query = SearchQuery(resource_type, count=limits.default_count)
        self.params = params_for(resource_type)
        self.strict = strict
        self.base_url = base_url
        self.limits = limits
        self.problems: list[Issue] = []

    def fail(self, msg: str, name: str) -> None:
        self.problems.append(Issue("invalid", msg, expression=(name,)))

    def unsupported(self, msg: str, name: str) -> None:
        if self.strict:
            self.problems.append(Issue("not-supported", msg, expression=(name,)))

    def add(self, key: str, raw: str) -> None:
        name, _, modifier = key.partition(":")
        if name in _RESULT_PARAMS:
            self.result_param(name, modifier, raw)
            return
        if "." in name:
            self.unsupported(f"chained search ({key}) is not supported", key)
            return
        param = self.params.get(name)
        ptype = SPECIAL_TYPES.get(name) or (param.type if param else None)
        if ptype is None:
            self.unsupported(
                f"unknown search parameter {name!r} for {self.query.resource_type}", key
            )
            return
        crit = self.criterion(key, name, ptype, param, modifier or None, raw)
        if crit is not None:
            self.query.criteria.append(crit)
            self.query.applied.append((key, raw))

    def criterion(
        self,
        key: str,
        name: str,
        ptype: SearchParamType,
        param: SearchParam | None,
        modifier: str | None,
        raw: str,
    ) -> Criterion | None:
        target: str | None = None
        if modifier and modifier not in _MODIFIERS[ptype]:
            if ptype == "reference" and modifier[:1].isupper():
                target = modifier
            else:
                self.unsupported(
                    f"modifier :{modifier} is not supported on {ptype} parameters", key
                )
                return None
        if modifier == "missing":
            if raw not in ("true", "false"):
                self.fail(f"{key} takes true or false, not {raw!r}", key)
                return None
            return Criterion(name, ptype, param, modifier, missing=raw == "true")
        parsed: list[v.SearchValue] = []
        for item in v.split_escaped(raw, ","):
            try:
                parsed.append(self.parse_value(ptype, item, target))
            except ValueError as exc:
                self.fail(f"{key}: {exc}", key)
                return None
        if len(parsed) > self.limits.max_values:
            self.fail(f"{key} has more than {self.limits.max_values} values", key)
            return None
        return Criterion(name, ptype, param, modifier if target is None else None, tuple(parsed))

    def parse_value(self, ptype: SearchParamType, item: str, target: str | None) -> v.SearchValue:
        if item == "":
            raise ValueError("empty value")
        if _CONTROL.search(item):
            raise ValueError("control characters are not allowed in search values")
        parsers: dict[str, Callable[[str], v.SearchValue]] = {
            "token": v.parse_token,
            "string": lambda s: v.StringValue(s.replace("\\,", ",")),
            "date": v.parse_date,
            "number": v.parse_number,
            "quantity": v.parse_quantity,
        }
        if ptype != "reference":
            return parsers[ptype](item)
        ref = v.parse_reference(item, self.base_url)
        if target and ref.target_type is None and ref.target_id is not None:
            return v.ReferenceValue(target, ref.target_id, None)
        return ref

    def result_param(self, name: str, modifier: str, raw: str) -> None:
        handlers: dict[str, Callable[[str, str], None]] = {
            "_count": self.count,
            "_sort": self.sort,
            "_include": self.include,
            "_revinclude": self.include,
            "_summary": self.summary,
            "_total": self.total,
        }
        handler = handlers.get(name)
        if handler is None:  # _format, _pretty, _cursor: handled by the API layer
            return
        if modifier and not (name in ("_include", "_revinclude") and modifier == "iterate"):
            self.unsupported(f"{name}:{modifier} is not supported", f"{name}:{modifier}")
            return
        if modifier == "iterate":
            self.unsupported(f"{name}:iterate is not supported", f"{name}:iterate")
            return
        handler(name, raw)

    def count(self, name: str, raw: str) -> None:
        if not raw.isdigit():
            self.fail(f"_count must be a non-negative integer, not {raw!r}", name)
            return
        self.query.count = min(int(raw), self.limits.max_count)
        if self.query.count == 0:
            self.query.summary_count = True
        self.query.applied.append((name, str(self.query.count)))

    def sort(self, name: str, raw: str) -> None:
        for item in raw.split(","):
            desc = item.startswith("-")
            key = item[1:] if desc else item
            param = self.params.get(key)
            ptype = SPECIAL_TYPES.get(key) or (param.type if param else None)
            if ptype is None or ptype == "reference":
                self.fail(f"cannot sort {self.query.resource_type} by {key!r}", name)
                return
            self.query.sort.append(SortKey(key, ptype, param, desc))
        self.query.applied.append((name, raw))

    def include(self, name: str, raw: str) -> None:
        parts = raw.split(":")
        if len(parts) not in (2, 3):
            self.fail(f"{name} takes SourceType:param[:TargetType], not {raw!r}", name)
            return
        source = parts[0]
        param = params_for(source).get(parts[1])
        if param is None or param.type != "reference":
            self.unsupported(f"{source} has no reference search parameter {parts[1]!r}", name)
            return
        target = parts[2] if len(parts) == 3 else None
        inc = Include(source, param, target)
        if name == "_include":
            if source != self.query.resource_type:
                self.fail(f"_include source {source} is not the searched type", name)
                return
            self.query.includes.append(inc)
        else:
            self.query.revincludes.append(inc)
        self.query.applied.append((name, raw))

    def summary(self, name: str, raw: str) -> None:
        if raw == "count":
            self.query.summary_count = True
        elif raw != "false":
            self.unsupported(f"_summary={raw} is not supported (count and false are)", name)
            return
        self.query.applied.append((name, raw))

    def total(self, name: str, raw: str) -> None:
        if raw not in ("none", "estimate", "accurate"):
            self.fail(f"_total takes none, estimate or accurate, not {raw!r}", name)
            return
        self.query.total = raw  # type: ignore[assignment]  # checked just above
        self.query.applied.append((name, raw))


def parse_search(
    resource_type: str,
    pairs: Sequence[tuple[str, str]],
    *,
    strict: bool = False,
    base_url: str | None = None,
    limits: Limits | None = None,
) -> SearchQuery:
    """Parse a search; raises OperationOutcomeError (400) listing every problem found."""
    limits = limits or Limits()
    parser = _Parser(resource_type, strict=strict, base_url=base_url, limits=limits)
    if len(pairs) > limits.max_params:
        raise bad_request(f"a search takes at most {limits.max_params} parameters")
    for key, raw in pairs:
        parser.add(key, raw)
    if parser.problems:
        raise OperationOutcomeError(400, parser.problems)
    return parser.query
