"""SENAITE result strings -> FHIR values; results ranges -> interpretation flags (pure).

SENAITE stores `Result` as a string ("4.5", "<0.3", "Positive") and the detection limit operand
separately (`DetectionLimitOperand` "<"/">"). A censored result is flagged only when the whole
interval it stands for falls into one class: against a range of 1-5, "<0.3" is certainly low and
"<3" is undecided (an amount censored below a positive limit is taken as non-negative, so "<0.3"
against 0-5 is normal). `warn_min`/`warn_max` (SENAITE's "shoulders") are the limits beyond which
a result is critical (LL/HH); min/max bound the normal range, SENAITE's `min_operator` and
`max_operator` ("geq"/"gt", "leq"/"lt") saying whether the bounds themselves are inside.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_COMPARATORS = {"<": "<", ">": ">", "<=": "<=", ">=": ">=", "≤": "<=", "≥": ">="}


@dataclass(frozen=True, slots=True)
class ParsedResult:
    """Exactly one of `value` (with an optional comparator) and `text` is set, or neither."""

    value: float | None = None
    comparator: str | None = None
    text: str | None = None
    deviation: str | None = None  # what was odd about the raw result, for the deviation log


def _number(text: str) -> float | None:
    candidate = text.replace(",", ".") if "," in text and "." not in text else text
    try:
        value = float(candidate)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def option_text(result: str, options: Sequence[Mapping[str, Any]] | None) -> str | None:
    """The label of a select result (`ResultOptions`: [{"ResultValue", "ResultText"}])."""
    for option in options or ():
        if str(option.get("ResultValue", "")).strip() == result:
            text = option.get("ResultText")
            return str(text) if text not in (None, "") else None
    return None


def parse_result(
    result: str | None,
    operand: str | None = None,
    *,
    string_result: bool = False,
    options: Sequence[Mapping[str, Any]] | None = None,
) -> ParsedResult:
    """Parse a SENAITE result into a number with comparator, or a text value."""
    raw = (result or "").strip()
    if not raw:
        return ParsedResult()
    label = option_text(raw, options)
    if label is not None:
        return ParsedResult(text=label)
    if string_result:
        return ParsedResult(text=raw)
    comparator = None
    for token in sorted(_COMPARATORS, key=len, reverse=True):
        if raw.startswith(token):
            comparator, raw = _COMPARATORS[token], raw[len(token) :].strip()
            break
    deviation = None
    given = _COMPARATORS.get((operand or "").strip())
    if given and comparator and given != comparator:
        deviation = f"result operand {comparator!r} disagrees with DetectionLimitOperand {given!r}"
    elif comparator:
        deviation = "detection limit operand inside the result string"
    comparator = comparator or given
    value = _number(raw)
    if value is None:
        return ParsedResult(text=(result or "").strip())
    if "," in raw and "." not in raw:
        deviation = "decimal comma in result"
    return ParsedResult(value=value, comparator=comparator, deviation=deviation)


@dataclass(frozen=True, slots=True)
class Range:
    """A results range with numeric bounds (None where SENAITE has none)."""

    low: float | None = None
    high: float | None = None
    critical_low: float | None = None
    critical_high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    comment: str | None = None

    @property
    def empty(self) -> bool:
        return all(b is None for b in (self.low, self.high, self.critical_low, self.critical_high))


def parse_range(raw: Mapping[str, Any] | None) -> Range:
    """SENAITE's ResultsRange dict (`min`, `max`, `warn_min`, `warn_max`, operators) as numbers."""
    if not raw:
        return Range()

    def bound(key: str) -> float | None:
        value = raw.get(key)
        return _number(str(value).strip()) if value not in (None, "") else None

    comment = raw.get("rangecomment")
    return Range(
        low=bound("min"),
        high=bound("max"),
        critical_low=bound("warn_min"),
        critical_high=bound("warn_max"),
        low_inclusive=str(raw.get("min_operator") or "geq") != "gt",
        high_inclusive=str(raw.get("max_operator") or "leq") != "lt",
        comment=str(comment) if comment else None,
    )


def classify(value: float, rng: Range) -> str:
    """N, L, H, LL or HH for one exact value."""
    if rng.critical_low is not None and value < rng.critical_low:
        return "LL"
    if rng.low is not None and (value < rng.low if rng.low_inclusive else value <= rng.low):
        return "L"
    if rng.critical_high is not None and value > rng.critical_high:
        return "HH"
    if rng.high is not None and (value > rng.high if rng.high_inclusive else value >= rng.high):
        return "H"
    return "N"


def interpretation(value: float, comparator: str | None, rng: Range) -> str | None:
    """The flag of a (possibly censored) result against a range; None when it is undecided."""
    if rng.empty:
        return None
    if comparator is None:
        return classify(value, rng)
    if comparator in ("<", "<="):
        edge = value if comparator == "<=" else math.nextafter(value, -math.inf)
        flag = classify(edge, rng)
        floor = 0.0 if value > 0 else -math.inf  # a measured amount is not negative
        return flag if flag == classify(floor, rng) else None
    edge = value if comparator == ">=" else math.nextafter(value, math.inf)
    flag = classify(edge, rng)
    return flag if flag == classify(math.inf, rng) else None
