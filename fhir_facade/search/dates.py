"""FHIR date/dateTime/instant values as half-open microsecond intervals.

FHIR date search compares *ranges*, not points: ``2020`` means the whole year, and
``ge``/``lt``/``sa``/``eb`` are defined on the interval a value implicitly covers at
the precision it was written with. Storing every indexed value as ``[low, high)`` in
integer microseconds since the Unix epoch (UTC) lets the store answer all prefixes
with two integer column comparisons, and integers sort and index exactly in both
SQLite and PostgreSQL, where text timestamps with mixed offsets would not.

The arithmetic is done on plain integers (``_days_from_civil``) rather than with
``datetime`` so that the end of year 9999 (``10000-01-01``), which ``datetime``
cannot represent, is still a valid upper bound.
"""

from __future__ import annotations

import calendar
import re
import time
from typing import Final

__all__ = ["MAX_US", "MIN_US", "fhir_date_range", "now_us", "period_range"]

_SECOND_US: Final = 1_000_000
_MINUTE_US: Final = 60 * _SECOND_US
_HOUR_US: Final = 60 * _MINUTE_US
_DAY_US: Final = 24 * _HOUR_US
_MAX_FRACTION_DIGITS: Final = 6

# FHIR's own regexes allow offsets up to +/-14:00; anything beyond is a typo, and
# accepting it would silently shift the indexed range by days.
_MAX_OFFSET_MINUTES: Final = 14 * 60

_DATE_RE: Final = re.compile(
    r"""
    (?P<year>\d{4})
    (?:-(?P<month>\d{2})
      (?:-(?P<day>\d{2})
        (?:T(?P<hour>\d{2}):(?P<minute>\d{2})
          (?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?
          (?P<tz>Z|[+-]\d{2}:\d{2})?
        )?
      )?
    )?
    """,
    re.VERBOSE | re.ASCII,
)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Count days since 1970-01-01 in the proleptic Gregorian calendar.

    Pure integer arithmetic (H. Hinnant's algorithm) so that bounds outside the
    range ``datetime`` supports, such as ``10000-01-01``, can still be computed.
    """
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


MIN_US: Final[int] = _days_from_civil(1, 1, 1) * _DAY_US
"""Lower sentinel (0001-01-01T00:00Z): an open Period start, and the floor of every range."""

MAX_US: Final[int] = _days_from_civil(10000, 1, 1) * _DAY_US
"""Upper sentinel (end of 9999): an open Period end, and the ceiling of every range."""


def _clamp(value: int) -> int:
    """Keep offsets at the calendar's edges from escaping the sentinels.

    ``9999-12-31T23:00:00-14:00`` is a legal value whose UTC instant lies past
    ``MAX_US``; clamping keeps "MAX_US means unbounded" true for the store.
    """
    return max(MIN_US, min(MAX_US, value))


def _offset_us(tz: str | None, original: str) -> int:
    """Turn ``Z``/``+hh:mm``/``-hh:mm`` into microseconds to subtract from local time."""
    if tz is None or tz == "Z":
        # No zone is taken as UTC: FHIR requires one on times, but search values and
        # sloppy feeds omit it, and UTC is the only choice independent of server locale.
        return 0
    hours, minutes = int(tz[1:3]), int(tz[4:6])
    total = hours * 60 + minutes
    if minutes > 59 or total > _MAX_OFFSET_MINUTES:
        raise ValueError(f"invalid timezone offset {tz!r} in FHIR date {original!r}")
    sign = -1 if tz[0] == "-" else 1
    return sign * total * _MINUTE_US


def fhir_date_range(value: str) -> tuple[int, int]:
    """Return the ``[low, high)`` microsecond interval a FHIR date value covers.

    The width comes from the precision actually written: a year covers the year, a
    minute covers sixty seconds, ``.5`` covers 100 ms. This is what FHIR's date
    search prefixes are defined against, so callers never need to know the
    original precision again. Raises ``ValueError`` for anything that is not a
    real calendar instant, so bad search input becomes a 400 rather than a
    silently empty result.
    """
    match = _DATE_RE.fullmatch(value)
    if match is None:
        raise ValueError(
            f"invalid FHIR date {value!r}: expected YYYY, YYYY-MM, YYYY-MM-DD or "
            "YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm]"
        )
    year = int(match["year"])
    if year < 1:
        raise ValueError(f"invalid FHIR date {value!r}: year must be 0001 or later")

    month_text, day_text, hour_text = match["month"], match["day"], match["hour"]
    month = int(month_text) if month_text else 1
    if not 1 <= month <= 12:
        raise ValueError(f"invalid FHIR date {value!r}: month {month} is not 01-12")
    day = int(day_text) if day_text else 1
    last_day = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last_day:
        raise ValueError(f"invalid FHIR date {value!r}: day {day} is not in {year:04d}-{month:02d}")

    start_day = _days_from_civil(year, month, day)
    if hour_text is None:
        # Date-only precision: no zone is allowed on a FHIR date, so the day is UTC.
        low = start_day * _DAY_US
        if day_text:
            high = low + _DAY_US
        elif month_text:
            next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
            high = _days_from_civil(next_year, next_month, 1) * _DAY_US
        else:
            high = _days_from_civil(year + 1, 1, 1) * _DAY_US
        return _clamp(low), _clamp(high)

    hour, minute = int(hour_text), int(match["minute"])
    second_text, fraction = match["second"], match["fraction"]
    second = int(second_text) if second_text else 0
    # 60 is FHIR's leap second; it is one second past :59, i.e. the next minute.
    if hour > 23 or minute > 59 or second > 60:
        raise ValueError(f"invalid FHIR date {value!r}: time of day out of range")

    low = start_day * _DAY_US + hour * _HOUR_US + minute * _MINUTE_US + second * _SECOND_US
    if fraction:
        digits = fraction[:_MAX_FRACTION_DIGITS]
        scale = 10 ** (_MAX_FRACTION_DIGITS - len(digits))
        low += int(digits) * scale
        width = scale
    elif second_text:
        width = _SECOND_US
    else:
        width = _MINUTE_US
    low -= _offset_us(match["tz"], value)
    return _clamp(low), _clamp(low + width)


def period_range(start: str | None, end: str | None) -> tuple[int, int]:
    """Return the interval a FHIR Period covers, with absent ends left open.

    The end bound uses the *end* of the end value's precision, because FHIR says
    ``end: 2020-03`` includes all of March. A reversed Period raises
    ``ValueError`` (it violates invariant per-1), rather than indexing an interval
    that matches nothing or everything.
    """
    low = fhir_date_range(start)[0] if start is not None else MIN_US
    high = fhir_date_range(end)[1] if end is not None else MAX_US
    if low >= high:
        raise ValueError(f"invalid FHIR Period: start {start!r} is after end {end!r}")
    return low, high


def now_us() -> int:
    """Return the current time on the same integer scale as the stored ranges."""
    return time.time_ns() // 1000
