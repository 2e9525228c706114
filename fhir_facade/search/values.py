"""Parsed search values, one type per FHIR search-parameter type.

Parsing happens once per request, before any SQL is built, so a malformed value is reported as
a 400 naming the parameter and the value instead of surfacing as a database error.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from fhir_facade.search.dates import fhir_date_range

Prefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
PREFIXES: tuple[Prefix, ...] = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_REFERENCE = re.compile(
    r"^(?:(?P<base>https?://\S+?)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/\S+)?$"
)
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True, slots=True)
class TokenValue:
    system: str | None
    code: str | None
    any_system: bool  # `code` alone matches any system; `|code` only codes without one


@dataclass(frozen=True, slots=True)
class StringValue:
    value: str


@dataclass(frozen=True, slots=True)
class DateValue:
    prefix: Prefix
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    target_type: str | None
    target_id: str | None
    url: str | None  # an absolute reference to another server, matched literally


@dataclass(frozen=True, slots=True)
class NumberValue:
    """A number with the range its written precision implies (FHIR: 100 means [99.5, 100.5))."""

    prefix: Prefix
    value: float
    low: float
    high: float
    system: str | None = None
    code: str | None = None


SearchValue = TokenValue | StringValue | DateValue | ReferenceValue | NumberValue


def split_prefix(raw: str) -> tuple[Prefix, str]:
    head = raw[:2]
    for prefix in PREFIXES:
        if head == prefix and len(raw) > 2 and not raw[2].isalpha():
            return prefix, raw[2:]
    return "eq", raw


def split_escaped(raw: str, sep: str) -> list[str]:
    r"""Split on `sep` unless escaped with a backslash (FHIR search escaping: \, \| \$)."""
    parts, cur, i = [], [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            cur.append(raw[i + 1])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def parse_token(raw: str) -> TokenValue:
    if "|" not in raw.replace("\\|", ""):
        return TokenValue(None, split_escaped(raw, "|")[0] or None, any_system=True)
    system, _, code = raw.partition("|")
    return TokenValue(system or None, code or None, any_system=False)


def parse_date(raw: str) -> DateValue:
    prefix, text = split_prefix(raw)
    low, high = fhir_date_range(text)
    return DateValue(prefix, low, high)


def parse_number(raw: str) -> NumberValue:
    prefix, text = split_prefix(raw)
    try:
        dec = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not dec.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    exponent = dec.as_tuple().exponent
    half = Decimal(5).scaleb(int(exponent) - 1) if isinstance(exponent, int) else Decimal(0)
    return NumberValue(prefix, float(dec), float(dec - half), float(dec + half))


def parse_quantity(raw: str) -> NumberValue:
    parts = split_escaped(raw, "|")
    if len(parts) not in (1, 3):
        raise ValueError(f"{raw!r} is not [prefix]number|system|code")
    num = parse_number(parts[0])
    if len(parts) == 1:
        return num
    return NumberValue(num.prefix, num.value, num.low, num.high, parts[1] or None, parts[2] or None)


def parse_reference(raw: str, own_base: str | None) -> ReferenceValue:
    if own_base and raw.startswith(own_base.rstrip("/") + "/"):
        raw = raw[len(own_base.rstrip("/")) + 1 :]
    if _ID.match(raw):
        return ReferenceValue(None, raw, None)
    match = _REFERENCE.match(raw)
    if match is None:
        raise ValueError(f"{raw!r} is not a reference (id, Type/id or an absolute URL)")
    if match["base"]:
        return ReferenceValue(None, None, raw)
    return ReferenceValue(match["type"], match["id"], None)


def normalize_string(text: str) -> str:
    """Case- and accent-insensitive form for string search (FHIR: 'Eve' matches 'ève')."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.casefold()[:255]
