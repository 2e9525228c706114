"""Lab test ordered again too soon: minimum retest intervals by LOINC.

Source: RCPath/ACB/IBMS G147, "National minimum retesting intervals in pathology" (Lang T, Croal B;
Version March 2021), in the transcription cited in docs/clinical-reference.md §6 (V*). Each row of
``data/retest_intervals.csv`` names the G147 section (the table it sits in), the recommendation id
and its level of evidence, and lists the exceptions G147 itself makes; the citation of a finding
names them too. Where G147 gives a range for routine monitoring, the lower bound is used so that a
flag means "sooner than any routine situation G147 describes".

Rule: a draft ServiceRequest for a LOINC in the table is "too soon" when the same test (same row
group, e.g. HbA1c in % or mmol/mol) has a result (Observation with status final, amended,
corrected or preliminary) or an active order dated within the interval before now. A result is
preferred over a pending order. For ferritin (B-G9, "a normal patient") the interval applies only
when the last result lies inside its reference range (or is interpreted N).
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from cds_hooks.clinical.fhir_read import (
    LOINC,
    as_list,
    as_mapping,
    aware,
    codings,
    effective_time,
    iso,
    quantity,
    request_time,
    text,
)
from cds_hooks.clinical.findings import ObservationRef, RetestFinding
from cds_hooks.clinical.guard import never_raises
from cds_hooks.clinical.tables import read_table

log = logging.getLogger(__name__)

DOCUMENT = "RCPath/ACB/IBMS G147 National minimum retesting intervals in pathology (March 2021)"
SOURCE_URL = (
    "https://www.rcpath.org/static/253e8950-3721-4aa2-8ddd4bd94f73040e/"
    "g147_national-minimum_retesting_intervals_in_pathology.pdf"
)
RESULTED = ("final", "amended", "corrected", "preliminary")
_UNITS = {"hours": "hour", "days": "day", "months": "month", "years": "year"}


@dataclass(frozen=True)
class Interval:
    """One row of the retest table."""

    group: str
    loinc: str
    display: str
    value: int
    unit: str
    situation: str
    section: str
    ref: str
    loe: str
    condition: str
    exceptions: str
    status: str

    @property
    def short(self) -> str:
        """The test name without the LOINC property/system part."""
        return self.display.split(" [")[0].split("/Hemoglobin")[0]

    @property
    def text(self) -> str:
        word = _UNITS[self.unit]
        return f"{self.value} {word}{'s' if self.value != 1 else ''}"

    @property
    def citation(self) -> str:
        return f"{DOCUMENT}, §{self.section}, {self.ref} (level of evidence {self.loe})"

    def since(self, now: datetime) -> datetime:
        """The start of the interval ending at ``now`` (calendar months and years)."""
        if self.unit in ("hours", "days"):
            return now - timedelta(**{self.unit: self.value})
        months = self.value * (12 if self.unit == "years" else 1)
        year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
        day = min(now.day, calendar.monthrange(year, month + 1)[1])
        return now.replace(year=year, month=month + 1, day=day)


@cache
def intervals() -> dict[str, Interval]:
    """The shipped table, keyed by LOINC."""
    rows = read_table("retest_intervals.csv")
    found = {}
    for r in rows:
        if r["interval_unit"] not in _UNITS:
            raise ValueError(f"retest_intervals.csv: bad unit {r['interval_unit']!r}")
        found[r["loinc"]] = Interval(
            group=r["group"],
            loinc=r["loinc"],
            display=r["display"],
            value=int(r["interval_value"]),
            unit=r["interval_unit"],
            situation=r["situation"],
            section=r["section"],
            ref=r["ref"],
            loe=r["loe"],
            condition=r["condition"],
            exceptions=r["exceptions"],
            status=r["status"],
        )
    return found


def _rule_for(concept: object) -> Interval | None:
    for system, code, _ in codings(concept):
        if system == LOINC and code in intervals():
            return intervals()[code]
    return None


def _is_normal(obs: Mapping[str, Any]) -> bool | None:
    """True/False when the result's normality can be read, else None."""
    for interpretation in as_list(obs.get("interpretation")):
        for _, code, _ in codings(interpretation):
            return code.upper() == "N"
    qty = quantity(obs)
    for item in as_list(obs.get("referenceRange")):
        rng = as_mapping(item)
        low, high = _number(rng.get("low")), _number(rng.get("high"))
        if qty is None or (low is None and high is None):
            continue
        value = qty[0]
        return (low is None or value >= low) and (high is None or value <= high)
    return None


def _number(simple_quantity: object) -> float | None:
    value = as_mapping(simple_quantity).get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class LabHistory:
    """The patient's results and active orders grouped by test (a G147 row group, e.g. HbA1c
    in % or mmol/mol), and their dates: each read once, on first use, then shared by every draft
    order of the call. Input order is kept within a group."""

    def __init__(self, *, observations: Iterable[object], pending_orders: Iterable[object]):
        self.observations = list(observations)  # both may be read again (see `results`)
        self.pending_orders = list(pending_orders)
        self._results: dict[str, list[Mapping[str, Any]]] | None = None
        self._pending: dict[str, list[Mapping[str, Any]]] | None = None
        # by id() of a resource its group holds (so alive, and its id not reused)
        self._taken: dict[int, datetime | None] = {}
        self._ordered: dict[int, datetime | None] = {}

    def results(self, rule: Interval) -> list[Mapping[str, Any]]:
        """Observations resulted (final, amended, corrected, preliminary) for ``rule``'s test."""
        if self._results is None:  # a failure is not remembered: each order retries and logs
            self._results = _by_group(self.observations, RESULTED)
        return self._results.get(rule.group, [])

    def pending(self, rule: Interval) -> list[Mapping[str, Any]]:
        """Active ServiceRequests for ``rule``'s test."""
        if self._pending is None:
            self._pending = _by_group(self.pending_orders, ("active",))
        return self._pending.get(rule.group, [])

    def taken(self, obs: Mapping[str, Any]) -> datetime | None:
        """When a result of `results` applies (effective[x], else issued)."""
        key = id(obs)
        if key not in self._taken:
            self._taken[key] = effective_time(obs)
        return self._taken[key]

    def ordered(self, order: Mapping[str, Any]) -> datetime | None:
        """When an order of `pending` is for (occurrence[x], else authoredOn)."""
        key = id(order)
        if key not in self._ordered:
            self._ordered[key] = request_time(order)
        return self._ordered[key]


def _by_group(
    items: Iterable[object], statuses: tuple[str, ...]
) -> dict[str, list[Mapping[str, Any]]]:
    found: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        resource = as_mapping(item)
        if resource.get("status") not in statuses:
            continue
        rule = _rule_for(resource.get("code"))
        if rule is not None:
            found.setdefault(rule.group, []).append(resource)
    return found


def _last_result(
    history: LabHistory, rule: Interval, since: datetime
) -> tuple[Mapping[str, Any], datetime] | None:
    best: tuple[Mapping[str, Any], datetime] | None = None
    for obs in history.results(rule):
        taken = history.taken(obs)
        if taken is None:
            log.warning("skipping Observation/%s: no readable date", obs.get("id"))
        elif taken >= since and (best is None or taken > best[1]):
            best = (obs, taken)
    return best


def _pending(
    history: LabHistory, rule: Interval, since: datetime, own_id: str | None
) -> tuple[Mapping[str, Any], datetime] | None:
    best: tuple[Mapping[str, Any], datetime] | None = None
    for order in history.pending(rule):
        if own_id is not None and text(order.get("id")) == own_id:
            continue
        when = history.ordered(order)
        if when is None:
            log.warning("skipping ServiceRequest/%s: no readable date", order.get("id"))
        elif when >= since and (best is None or when > best[1]):
            best = (order, when)
    return best


def _detail(rule: Interval, lead: str) -> str:
    exceptions = f" G147 exceptions: {rule.exceptions}." if rule.exceptions else ""
    return (
        f"{lead}\n\nG147 {rule.ref}: {rule.situation} (minimum interval used: **{rule.text}**)."
        f"{exceptions}\n\nSource: {rule.citation}."
    )


def _result_finding(
    rule: Interval, obs: Mapping[str, Any], taken: datetime, now: datetime
) -> RetestFinding:
    qty = quantity(obs)
    oid = text(obs.get("id"))
    result = ObservationRef(
        reference=f"Observation/{oid}" if oid else None,
        code=rule.loinc,
        value=qty[0] if qty else None,
        unit=qty[1] if qty else "",
        date=iso(taken),
    )
    shown = f"{qty[2]}{qty[0]:g} {qty[1]}" if qty else "no numeric value"
    ago = _ago(now - taken)
    return RetestFinding(
        kind="retest-too-soon",
        severity="info",
        summary=(
            f"{rule.short} resulted {ago} ago ({shown}); G147 minimum retest interval {rule.text}"
        ),
        detail=_detail(rule, f"Last result **{shown}** on {taken.date().isoformat()} ({ago} ago)."),
        citation=rule.citation,
        source_url=SOURCE_URL,
        data={
            "loinc": rule.loinc,
            "interval": rule.text,
            "ref": rule.ref,
            "last_result": asdict(result),
        },
        loinc=rule.loinc,
        interval=rule.text,
        last_result=result,
    )


def _pending_finding(
    rule: Interval, order: Mapping[str, Any], when: datetime, now: datetime
) -> RetestFinding:
    oid = text(order.get("id"))
    ref = f"ServiceRequest/{oid}" if oid else None
    ago = _ago(now - when) if when <= now else "in the future"
    return RetestFinding(
        kind="retest-pending",
        severity="warning",
        summary=(
            f"{rule.short} already ordered ({when.date().isoformat()}), still pending; "
            f"G147 minimum retest interval {rule.text}"
        ),
        detail=_detail(
            rule,
            f"An active order for the same test ({ref or 'ServiceRequest'}, {ago}) is pending.",
        ),
        citation=rule.citation,
        source_url=SOURCE_URL,
        data={
            "loinc": rule.loinc,
            "interval": rule.text,
            "ref": rule.ref,
            "pending_order": ref,
            "pending_date": iso(when),
        },
        loinc=rule.loinc,
        interval=rule.text,
        pending_order=ref,
        pending_date=iso(when),
    )


def _ago(delta: timedelta) -> str:
    hours = max(int(delta.total_seconds() // 3600), 0)
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


@never_raises(lambda: None)
def retest_too_soon(
    *,
    service_request: Mapping[str, Any],
    observations: Iterable[object],
    pending_orders: Iterable[object],
    now: datetime,
) -> RetestFinding | None:
    """A finding when the drafted test was resulted or is pending within its G147 interval."""
    rule = _rule_for(as_mapping(service_request).get("code"))
    if rule is None:
        return None
    history = LabHistory(observations=observations, pending_orders=pending_orders)
    return _judge(service_request, rule, history, now)


@never_raises(lambda: None, name="retest_too_soon")
def retest_too_soon_of(
    *, service_request: Mapping[str, Any], history: LabHistory, now: datetime
) -> RetestFinding | None:
    """`retest_too_soon` on a LabHistory shared by the orders of a call (read once)."""
    rule = _rule_for(as_mapping(service_request).get("code"))
    if rule is None:
        return None
    return _judge(service_request, rule, history, now)


def _judge(
    service_request: Mapping[str, Any], rule: Interval, history: LabHistory, now: datetime
) -> RetestFinding | None:
    now = aware(now)
    since = rule.since(now)
    last = _last_result(history, rule, since)
    if last is not None:
        if rule.condition != "last-result-normal" or _is_normal(last[0]) is True:
            return _result_finding(rule, last[0], last[1], now)
        log.debug("G147 %s applies only after a normal result; not flagged", rule.ref)
    own_id = text(as_mapping(service_request).get("id"))
    pending = _pending(history, rule, since, own_id)
    return _pending_finding(rule, pending[0], pending[1], now) if pending else None
