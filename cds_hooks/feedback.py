"""The feedback endpoint's body (#feedback), checked against cds-fb-1..3, and its persistence.

Feedback may be batched and repeated (a client retrying, or resending a batch): each distinct
feedback is stored once, keyed by a hash of its content. Issued cards are stored too, so that a
card's uuid (all that feedback carries) leads back to its service, kind and patient.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from cds_hooks.cards import Card
from cds_hooks.errors import bad_request
from cds_hooks.migrations import upgrade
from cds_hooks.tables import cds_card, cds_feedback
from fhir_facade.store.engine import make_engine

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Feedback:
    card: str
    outcome: str  # accepted | overridden (cds-fb-1)
    outcome_timestamp: str
    outcome_us: int
    accepted_suggestions: tuple[str, ...] = ()
    reason_system: str | None = None
    reason_code: str | None = None
    reason_display: str | None = None
    user_comment: str | None = None


def parse_feedback(payload: Any) -> list[Feedback]:
    """The feedback items of a request body, or a 400 naming the first problem."""
    if not isinstance(payload, Mapping):
        raise bad_request("the body must be a JSON object")
    items = payload.get("feedback")
    if not isinstance(items, list) or not items:
        raise bad_request("feedback must be a non-empty array", "feedback")
    return [_item(item, f"feedback[{i}]") for i, item in enumerate(items)]


def _item(item: Any, where: str) -> Feedback:
    if not isinstance(item, Mapping):
        raise bad_request(f"{where} must be an object", where)
    card = item.get("card")
    if not isinstance(card, str) or not card:
        raise bad_request(f"{where}.card (the card's uuid) is required", f"{where}.card")
    outcome = item.get("outcome")
    if outcome not in ("accepted", "overridden"):  # cds-fb-1
        raise bad_request(f"{where}.outcome must be accepted or overridden", f"{where}.outcome")
    accepted: tuple[str, ...] = ()
    if outcome == "accepted":  # cds-fb-2
        accepted = _accepted(item.get("acceptedSuggestions"), f"{where}.acceptedSuggestions")
    stamp = item.get("outcomeTimestamp")
    us = _instant_us(stamp, f"{where}.outcomeTimestamp")
    reason = _override_reason(item.get("overrideReason"), f"{where}.overrideReason")
    return Feedback(card, str(outcome), str(stamp), us, accepted, *reason)


def _accepted(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise bad_request(f"{where} is required when the outcome is accepted (cds-fb-2)", where)
    ids = []
    for s in value:
        if not isinstance(s, Mapping) or not isinstance(s.get("id"), str) or not s["id"]:
            raise bad_request(f"{where}: each entry needs the suggestion's id", where)
        ids.append(s["id"])
    return tuple(sorted(set(ids)))


def _override_reason(
    value: Any, where: str
) -> tuple[str | None, str | None, str | None, str | None]:
    if value is None:
        return None, None, None, None
    if not isinstance(value, Mapping):
        raise bad_request(f"{where} must be an object", where)
    reason, comment = value.get("reason"), value.get("userComment")
    if reason is None and comment is None:  # cds-fb-3
        raise bad_request(f"{where} needs a reason, a userComment or both (cds-fb-3)", where)
    if comment is not None and not isinstance(comment, str):
        raise bad_request(f"{where}.userComment must be a string", where)
    if reason is None:
        return None, None, None, comment
    if not isinstance(reason, Mapping) or not all(
        isinstance(reason.get(k), str) and reason[k] for k in ("system", "code")
    ):
        raise bad_request(f"{where}.reason must be a Coding with system and code", where)
    display = reason.get("display")
    return reason["system"], reason["code"], display if isinstance(display, str) else None, comment


def _instant_us(value: Any, where: str) -> int:
    """RFC 3339 date-time with a zone (the spec asks for UTC; any offset is converted)."""
    if not isinstance(value, str) or "T" not in value:
        raise bad_request(f"{where} must be an RFC 3339 date-time", where)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(f"{where} must be an RFC 3339 date-time", where) from None
    if parsed.tzinfo is None:
        raise bad_request(f"{where} needs a time zone (UTC: Z)", where)
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def card_rows(
    *,
    service_id: str,
    hook: str,
    hook_instance: str,
    patient_id: str | None,
    iss: str,
    cards: Sequence[Card],
) -> list[dict[str, Any]]:
    """The cds_card rows of the cards one call issued."""
    issued = now_us()
    return [
        {
            "uuid": c.uuid,
            "service_id": service_id,
            "hook": hook,
            "hook_instance": hook_instance,
            "kind": c.kind,
            "indicator": c.indicator,
            "patient_id": patient_id,
            "order_ref": c.order,
            "iss": iss,
            "suggestions": orjson.dumps([s.uuid for s in c.suggestions]).decode(),
            "issued_us": issued,
        }
        for c in cards
    ]


def now_us() -> int:
    delta = datetime.now(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class FeedbackStore:
    """Cards issued and feedback received, in the facade's database (own tables)."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.engine: Engine = make_engine(url)
        if migrate:
            upgrade(self.engine)

    def _insert_ignore(self, table: Any) -> Insert:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        stmt: Insert = dialect.insert(table).on_conflict_do_nothing()
        return stmt

    def insert_cards(self, rows: Sequence[Mapping[str, Any]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(self._insert_ignore(cds_card), [dict(r) for r in rows])

    def suggestions_of(self, uuids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Suggestion uuids of the known cards among `uuids` (unknown cards are absent)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(cds_card.c.uuid, cds_card.c.suggestions).where(cds_card.c.uuid.in_(uuids))
            )
            return {r.uuid: tuple(orjson.loads(r.suggestions)) for r in rows}

    def record_feedback(
        self, *, service_id: str, iss: str, sub: str | None, items: Sequence[Feedback]
    ) -> int:
        """Store each distinct feedback once; return how many were new."""
        received = now_us()
        rows = [_row(service_id, iss, sub, f, received) for f in items]
        unique = list({r["dedup_key"]: r for r in rows}.values())
        with self.engine.begin() as conn:
            keys = [r["dedup_key"] for r in unique]
            known = set(
                conn.scalars(
                    select(cds_feedback.c.dedup_key).where(cds_feedback.c.dedup_key.in_(keys))
                )
            )
            fresh = [r for r in unique if r["dedup_key"] not in known]
            if fresh:
                conn.execute(self._insert_ignore(cds_feedback), fresh)
        return len(fresh)

    def close(self) -> None:
        self.engine.dispose()


def _row(service_id: str, iss: str, sub: str | None, f: Feedback, received: int) -> dict[str, Any]:
    identity = [
        service_id,
        iss,
        f.card,
        f.outcome,
        f.outcome_us,
        list(f.accepted_suggestions),
        f.reason_system,
        f.reason_code,
        f.user_comment,
    ]
    return {
        "dedup_key": hashlib.sha256(orjson.dumps(identity)).hexdigest(),
        "service_id": service_id,
        "card_uuid": f.card,
        "outcome": f.outcome,
        "accepted_suggestions": orjson.dumps(list(f.accepted_suggestions)).decode(),
        "reason_system": f.reason_system,
        "reason_code": f.reason_code,
        "reason_display": f.reason_display,
        "user_comment": f.user_comment,
        "outcome_timestamp": f.outcome_timestamp,
        "outcome_us": f.outcome_us,
        "iss": iss,
        "sub": sub,
        "received_us": received,
    }
