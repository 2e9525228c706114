"""Turn a stored FHIR resource into the rows of the search index.

Search is answered from flat, typed index tables rather than by walking JSON at
query time, so every write must produce exactly the rows a later query can hit.
This module is that step: it walks each registered parameter's paths through
the resource as parsed by orjson and normalises whatever FHIR datatype sits at
the end (Coding, Identifier, HumanName, Period, Reference, ...) into one row
shape per parameter type.

It works on plain dicts on purpose: the resource was validated on the way in,
and re-parsing it into models on every index rebuild would cost more than the
whole extraction. The flip side is that it must never raise on odd content:
anything it cannot interpret is skipped (and logged at debug), because an
unindexable value must not make an otherwise valid write fail.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from fhir_facade.search.dates import fhir_date_range, period_range
from fhir_facade.search.parameters import SearchParam, params_for

__all__ = ["IndexRows", "extract_index", "parse_reference"]

logger = logging.getLogger(__name__)

# ContactPoint.system codes (R4 value set contact-point-system). An Identifier's
# system is a URI, so one of these bare codes marks the dict as a ContactPoint.
_CONTACT_SYSTEMS: Final = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})

# FHIR defines phone/email as telecom.where(system='phone'|'email').
_TELECOM_FILTERS: Final[Mapping[str, str]] = {"phone": "phone", "email": "email"}

# The string parts of HumanName and Address that string search matches against.
_STRING_PARTS: Final = (
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
    "text",
)

# "Type/id" optionally behind a base URL and optionally followed by "/_history/n".
_REFERENCE_RE: Final = re.compile(
    r"(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^?#]*/)?"
    r"(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)

_TYPE_URL_PREFIX: Final = "http://hl7.org/fhir/StructureDefinition/"


@dataclass(slots=True)
class IndexRows:
    """All index rows of one resource, one list per index table.

    Each tuple starts with the parameter name; the store adds the resource's
    own key. Lists are deduplicated, since FHIR search matches a resource once
    however many of its elements carry the same value.
    """

    tokens: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    strings: list[tuple[str, str]] = field(default_factory=list)
    dates: list[tuple[str, int, int]] = field(default_factory=list)
    references: list[tuple[str, str | None, str | None, str]] = field(default_factory=list)
    quantities: list[tuple[str, float, str | None, str | None]] = field(default_factory=list)
    numbers: list[tuple[str, float]] = field(default_factory=list)

    def dedupe(self) -> None:
        """Drop repeated rows in place, keeping first-seen order for stable output."""
        self.tokens = list(dict.fromkeys(self.tokens))
        self.strings = list(dict.fromkeys(self.strings))
        self.dates = list(dict.fromkeys(self.dates))
        self.references = list(dict.fromkeys(self.references))
        self.quantities = list(dict.fromkeys(self.quantities))
        self.numbers = list(dict.fromkeys(self.numbers))


def parse_reference(reference: str) -> tuple[str | None, str | None]:
    """Split a literal reference into ``(type, id)``; ``(None, None)`` if it has none.

    Relative (``Patient/1``), absolute (``http://x/fhir/Patient/1``) and versioned
    (``Patient/1/_history/2``) forms all name the same resource, so they must
    index identically. ``urn:uuid:``/``urn:oid:`` and ``#contained`` references
    carry no type or id of their own.
    """
    match = _REFERENCE_RE.fullmatch(reference)
    if match is None:
        return None, None
    return match["type"], match["id"]


@lru_cache(maxsize=512)
def _segments(path: str) -> tuple[str, ...]:
    """Split a dotted path once; the same few hundred paths are walked per write."""
    return tuple(path.split("."))


def _walk(resource: Mapping[str, Any], path: str) -> Iterator[Any]:
    """Yield every non-null value at ``path``, flattening lists at each step.

    FHIR paths ignore cardinality (``name.given`` covers every given of every
    name), so lists are expanded wherever they appear, including at the leaf.
    """
    current: list[Any] = [resource]
    for segment in _segments(path):
        found: list[Any] = []
        for node in current:
            if not isinstance(node, Mapping):
                continue
            value = node.get(segment)
            if isinstance(value, list):
                found.extend(item for item in value if item is not None)
            elif value is not None:
                found.append(value)
        current = found
    yield from current


def _str_or_none(value: Any) -> str | None:
    """Keep only non-empty strings, so stray numbers or "" never become codes."""
    return value if isinstance(value, str) and value else None


def _tokens(param: SearchParam, value: Any) -> Iterator[tuple[str | None, str | None]]:
    """Yield ``(system, code)`` pairs for one token-typed value."""
    telecom_system = _TELECOM_FILTERS.get(param.name)
    if isinstance(value, bool):
        yield None, "true" if value else "false"
    elif isinstance(value, str):
        if value and telecom_system is None:
            yield None, value
    elif isinstance(value, Mapping):
        system = _str_or_none(value.get("system"))
        if isinstance(value.get("coding"), list):  # CodeableConcept
            for coding in value["coding"]:
                if isinstance(coding, Mapping):
                    yield from _tokens(param, coding)
        elif system in _CONTACT_SYSTEMS or telecom_system is not None:  # ContactPoint
            # FHIR matches telecom tokens on the value alone, not on the channel.
            contact = _str_or_none(value.get("value"))
            if contact is not None and telecom_system in (None, system):
                yield None, contact
        elif "value" in value:  # Identifier
            code = _str_or_none(value.get("value"))
            if code is not None or system is not None:
                yield system, code
        else:  # Coding
            code = _str_or_none(value.get("code"))
            if code is not None or system is not None:
                yield system, code


def _strings(value: Any) -> Iterator[str]:
    """Yield the searchable text of a string, HumanName or Address."""
    if isinstance(value, str):
        if value:
            yield value
    elif isinstance(value, Mapping):
        for part in _STRING_PARTS:
            item = value.get(part)
            for text in item if isinstance(item, list) else (item,):
                if isinstance(text, str) and text:
                    yield text


def _timing_range(timing: Mapping[str, Any]) -> tuple[int, int] | None:
    """Return a Timing's outer limits, which is all FHIR date search looks at."""
    ranges = [fhir_date_range(e) for e in timing.get("event") or () if isinstance(e, str)]
    repeat = timing.get("repeat")
    bounds = repeat.get("boundsPeriod") if isinstance(repeat, Mapping) else None
    if isinstance(bounds, Mapping):
        ranges.append(period_range(bounds.get("start"), bounds.get("end")))
    if not ranges:
        return None
    return min(low for low, _ in ranges), max(high for _, high in ranges)


def _date_range(value: Any) -> tuple[int, int] | None:
    """Return the interval of a date, dateTime, instant, Period or Timing.

    Raises ``ValueError``/``TypeError`` on malformed content; the caller logs and
    skips, so the decision to tolerate bad data lives in one place.
    """
    if isinstance(value, str):
        return fhir_date_range(value)
    if not isinstance(value, Mapping):
        return None
    if "start" in value or "end" in value:  # Period
        return period_range(value.get("start"), value.get("end"))
    if "event" in value or "repeat" in value:  # Timing
        return _timing_range(value)
    return None


def _reference(param: SearchParam, value: Any) -> tuple[str | None, str | None, str] | None:
    """Return ``(type, id, literal)`` for one Reference, or None to skip it.

    The literal is kept as given so the store can also match full URLs; absolute URLs match
    only as URLs, never by a bare id. When the
    literal names no type, ``Reference.type`` (a type name or its
    StructureDefinition URL) fills in, so a ``urn:uuid:`` reference can still
    satisfy a typed parameter such as ``patient``.
    """
    if isinstance(value, Mapping):
        literal, declared = _str_or_none(value.get("reference")), _str_or_none(value.get("type"))
    else:
        literal, declared = _str_or_none(value), None
    if literal is None:
        return None  # identifier-only (logical) references have no literal to index
    target_type, target_id = parse_reference(literal)
    if literal.startswith(("http://", "https://")):
        # A reference to another server: a search by id means a local resource (R4 3.1.1.4.6),
        # so only the full URL may match it. (Clients reference this server relatively.)
        target_id = None
    if target_type is None and declared is not None:
        target_type = declared.removeprefix(_TYPE_URL_PREFIX)
    if param.targets and target_type not in param.targets:
        return None
    return target_type, target_id, literal


def _quantity(value: Any) -> tuple[float, str | None, str | None] | None:
    """Return ``(value, system, code)``, with ``unit`` standing in for a missing code."""
    if not isinstance(value, Mapping):
        return None
    number = value.get("value")
    if isinstance(number, bool) or not isinstance(number, int | float):
        return None
    code = _str_or_none(value.get("code")) or _str_or_none(value.get("unit"))
    return float(number), _str_or_none(value.get("system")), code


def _add_rows(rows: IndexRows, resource: Mapping[str, Any], param: SearchParam) -> None:
    """Append the rows of one parameter, dispatching on its declared type."""
    name = param.name
    for path in param.paths:
        for value in _walk(resource, path):
            if param.type == "token":
                rows.tokens.extend((name, s, c) for s, c in _tokens(param, value))
            elif param.type == "string":
                rows.strings.extend((name, text) for text in _strings(value))
            elif param.type == "date":
                try:
                    interval = _date_range(value)
                except (ValueError, TypeError) as exc:
                    logger.debug("skipping unindexable %s value %r: %s", name, value, exc)
                    continue
                if interval is not None:
                    rows.dates.append((name, *interval))
            elif param.type == "reference":
                ref = _reference(param, value)
                if ref is not None:
                    rows.references.append((name, *ref))
            elif param.type == "quantity":
                quantity = _quantity(value)
                if quantity is not None:
                    rows.quantities.append((name, *quantity))
            elif isinstance(value, int | float) and not isinstance(value, bool):
                rows.numbers.append((name, float(value)))


def extract_index(resource: Mapping[str, Any]) -> IndexRows:
    """Return the deduplicated index rows for every registered parameter of a resource.

    Unsupported resource types yield empty rows rather than an error, so the
    store can keep any resource it accepts; ``_id``/``_lastUpdated`` are never
    emitted because the store answers them from its own columns.
    """
    rows = IndexRows()
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return rows
    for param in params_for(resource_type).values():
        _add_rows(rows, resource, param)
    rows.dedupe()
    return rows
