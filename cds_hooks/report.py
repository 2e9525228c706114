"""Accept and override rates of the cards, per service, card kind and override reason.

A card counts once, by its latest feedback (a clinician may override, then accept on a second
look); cards that never got feedback count as issued only. Rates are of the cards with feedback.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select

from cds_hooks.tables import cds_card, cds_feedback

UNKNOWN_KIND = "(card not issued here)"


@dataclass(slots=True)
class KindStats:
    service_id: str
    kind: str
    issued: int = 0
    accepted: int = 0
    overridden: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def with_feedback(self) -> int:
        return self.accepted + self.overridden

    def as_json(self) -> dict[str, Any]:
        n = self.with_feedback
        return {
            "service": self.service_id,
            "kind": self.kind,
            "issued": self.issued,
            "feedback": n,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "accept_rate": round(self.accepted / n, 4) if n else None,
            "override_rate": round(self.overridden / n, 4) if n else None,
            "override_reasons": dict(self.reasons.most_common()),
        }


def feedback_report(engine: Engine, service_id: str | None = None) -> list[KindStats]:
    stats: dict[tuple[str, str], KindStats] = {}

    def get(service: str, kind: str) -> KindStats:
        return stats.setdefault((service, kind), KindStats(service, kind))

    with engine.connect() as conn:
        issued = select(cds_card.c.service_id, cds_card.c.kind, func.count()).group_by(
            cds_card.c.service_id, cds_card.c.kind
        )
        for service, kind, count in conn.execute(issued):
            get(service, kind).issued = count
        rows = conn.execute(
            select(cds_feedback, cds_card.c.kind, cds_card.c.service_id.label("card_service"))
            .outerjoin(cds_card, cds_card.c.uuid == cds_feedback.c.card_uuid)
            .order_by(cds_feedback.c.outcome_us, cds_feedback.c.pk)
        ).all()
    latest: dict[str, Any] = {}
    for row in rows:
        latest[row.card_uuid] = row  # ordered by time: the last one wins
    for row in latest.values():
        entry = get(row.card_service or row.service_id, row.kind or UNKNOWN_KIND)
        if row.outcome == "accepted":
            entry.accepted += 1
        else:
            entry.overridden += 1
            entry.reasons[_reason_label(row)] += 1
    out = sorted(stats.values(), key=lambda s: (s.service_id, s.kind))
    return [s for s in out if service_id is None or s.service_id == service_id]


def _reason_label(row: Any) -> str:
    if row.reason_code:
        return f"{row.reason_display or row.reason_code} ({row.reason_code})"
    return "(comment only)" if row.user_comment else "(no reason given)"


def format_table(stats: list[KindStats]) -> str:
    """A plain-text table for the terminal."""
    if not stats:
        return "no cards issued and no feedback received yet"
    head = f"{'service':<26} {'kind':<28} {'issued':>6} {'fb':>5} {'accept':>7} {'override':>8}"
    lines = [head, "-" * len(head)]
    for s in stats:
        n = s.with_feedback
        acc = f"{100 * s.accepted / n:.0f}%" if n else "-"
        ovr = f"{100 * s.overridden / n:.0f}%" if n else "-"
        lines.append(f"{s.service_id:<26} {s.kind:<28} {s.issued:>6} {n:>5} {acc:>7} {ovr:>8}")
        for reason, count in s.reasons.most_common():
            lines.append(f"{'':<26}   override reason: {reason}: {count}")
    return "\n".join(lines)
