"""FHIR date values become the [low, high) microsecond interval their precision covers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fhir_facade.search.dates import MAX_US, MIN_US, fhir_date_range, now_us, period_range

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64_MAX = 2**63 - 1


def us(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Microseconds since the epoch of a UTC wall-clock time."""
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


SECOND = 1_000_000
MINUTE = 60 * SECOND
DAY = 86_400 * SECOND


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        # each precision
        ("2020", us(2020, 1, 1), us(2021, 1, 1)),
        ("2020-02", us(2020, 2, 1), us(2020, 3, 1)),
        ("2020-02-15", us(2020, 2, 15), us(2020, 2, 16)),
        ("2020-02-15T10:00Z", us(2020, 2, 15, 10), us(2020, 2, 15, 10, 1)),
        ("2020-02-15T10:00:00Z", us(2020, 2, 15, 10), us(2020, 2, 15, 10) + SECOND),
        ("2020-02-15T10:00:00.5Z", us(2020, 2, 15, 10) + 500_000, us(2020, 2, 15, 10) + 600_000),
        ("2020-02-15T10:00:00.25Z", us(2020, 2, 15, 10) + 250_000, us(2020, 2, 15, 10) + 260_000),
        (
            "2020-02-15T10:00:00.123456Z",
            us(2020, 2, 15, 10) + 123_456,
            us(2020, 2, 15, 10) + 123_457,
        ),
        # digits beyond microseconds are truncated to a 1 us interval
        (
            "2020-02-15T10:00:00.1234567Z",
            us(2020, 2, 15, 10) + 123_456,
            us(2020, 2, 15, 10) + 123_457,
        ),
        # month and year ends roll over
        ("2020-12", us(2020, 12, 1), us(2021, 1, 1)),
        ("2020-12-31", us(2020, 12, 31), us(2021, 1, 1)),
        # leap years: 2020 and 2000 are, 2019 and 1900 are not
        ("2020-02-29", us(2020, 2, 29), us(2020, 3, 1)),
        ("2000-02", us(2000, 2, 1), us(2000, 2, 1) + 29 * DAY),
        ("1900-02", us(1900, 2, 1), us(1900, 2, 1) + 28 * DAY),
        ("2019-02", us(2019, 2, 1), us(2019, 2, 1) + 28 * DAY),
        ("2020", us(2020, 1, 1), us(2020, 1, 1) + 366 * DAY),
        # timezones
        ("2020-01-01T00:00:00+02:00", us(2019, 12, 31, 22), us(2019, 12, 31, 22) + SECOND),
        ("2020-01-01T00:00:00-05:30", us(2020, 1, 1, 5, 30), us(2020, 1, 1, 5, 30) + SECOND),
        ("2020-01-01T00:00:00+00:00", us(2020, 1, 1), us(2020, 1, 1) + SECOND),
        ("2020-01-01T00:00:00-00:00", us(2020, 1, 1), us(2020, 1, 1) + SECOND),
        ("2020-06-01T12:00+14:00", us(2020, 5, 31, 22), us(2020, 5, 31, 22, 1)),
        # no timezone is UTC
        ("2020-01-01T00:00:00", us(2020, 1, 1), us(2020, 1, 1) + SECOND),
        ("2020-01-01T00:00", us(2020, 1, 1), us(2020, 1, 1, 0, 1)),
        # before the epoch
        ("1969-12-31T23:59:59Z", -SECOND, 0),
        ("1960", us(1960, 1, 1), us(1961, 1, 1)),
        # leap second is the second after :59
        ("2016-12-31T23:59:60Z", us(2017, 1, 1), us(2017, 1, 1) + SECOND),
        # calendar edges stay within the sentinels
        ("0001", MIN_US, us(2, 1, 1)),
        ("9999", us(9999, 1, 1), MAX_US),
        ("9999-12-31T23:59:59Z", us(9999, 12, 31, 23, 59, 59), MAX_US),
        ("9999-12-31T23:00:00-14:00", MAX_US, MAX_US),
    ],
)
def test_fhir_date_range(value: str, low: int, high: int) -> None:
    assert fhir_date_range(value) == (low, high)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "20",
        "202001",
        "2020-1",
        "2020-13",
        "2020-00",
        "2020-02-30",
        "2019-02-29",
        "1900-02-29",
        "2020-04-31",
        "2020-01-00",
        "0000",
        "2020-01-01T",
        "2020-01-01T10",
        "2020-01-01T24:00:00Z",
        "2020-01-01T10:60:00Z",
        "2020-01-01T10:00:61Z",
        "2020-01-01T10:00:00.Z",
        "2020-01-01T10:00:00+2:00",
        "2020-01-01T10:00:00+15:00",
        "2020-01-01T10:00:00+10:60",
        "2020-01-01Z",
        "2020-01-01 10:00:00Z",
        " 2020",
        "2020-01-01T10:00:00ZZ",
        "\uff12\uff10\uff12\uff10",  # fullwidth digits
    ],
)
def test_fhir_date_range_rejects_malformed(value: str) -> None:
    with pytest.raises(ValueError, match="FHIR date"):
        fhir_date_range(value)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2020-01-01", "2020-01-31", (us(2020, 1, 1), us(2020, 2, 1))),
        ("2020", "2020-03", (us(2020, 1, 1), us(2020, 4, 1))),
        (
            "2020-01-01T10:00:00Z",
            "2020-01-01T10:00:00Z",
            (us(2020, 1, 1, 10), us(2020, 1, 1, 10) + SECOND),
        ),
        ("2020-01-01", None, (us(2020, 1, 1), MAX_US)),
        (None, "2020-01-01", (MIN_US, us(2020, 1, 2))),
        (None, None, (MIN_US, MAX_US)),
    ],
)
def test_period_range(start: str | None, end: str | None, expected: tuple[int, int]) -> None:
    assert period_range(start, end) == expected


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2020-02-01", "2020-01-01", "Period"),
        ("2020-13", None, "FHIR date"),
        (None, "nope", "FHIR date"),
    ],
)
def test_period_range_rejects(start: str | None, end: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        period_range(start, end)


def test_sentinels_fit_int64_and_bound_every_range() -> None:
    assert -_INT64_MAX - 1 <= MIN_US < MAX_US <= _INT64_MAX
    assert us(1, 1, 1) == MIN_US
    assert us(9999, 12, 31, 23, 59, 59) + SECOND == MAX_US


def test_now_us_is_on_the_same_scale() -> None:
    expected = (datetime.now(UTC) - _EPOCH) // timedelta(microseconds=1)
    assert abs(now_us() - expected) < 5 * SECOND
