"""The order outbox: one row per routed order, written in the same transaction as the order.

Why a table and not a queue: an accepted order must never be lost, even when the target system is
down or the process dies. The row commits or rolls back with the ServiceRequest itself, and the
worker moves it through its states in later units, so a crash leaves it where it was and the next
run resumes it. Delivery is idempotent by `key` (the SENAITE ClientSampleID or the accession
number), so a crash between routing and the acknowledgement never duplicates downstream.

States: queued -> routed -> closed; queued|routed -> cancelling -> cancelled | cancel-refused;
queued -> failed (the target refused the order for good).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)

from fhir_facade.store.tables import metadata

Target = Literal["lab", "imaging"]
State = Literal["queued", "routed", "closed", "cancelling", "cancelled", "cancel-refused", "failed"]
DUE_STATES = ("queued", "cancelling")
OPEN_STATES = ("queued", "routed", "cancelling")

# On the store's metadata, so schema comparisons (and autogenerate) see it with the rest.
order_outbox = Table(
    "order_outbox",
    metadata,
    Column("order_id", String(64), primary_key=True),  # ServiceRequest id
    Column("target", String(16), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("key", String(64), nullable=False),  # ClientSampleID / accession number
    Column("payload", Text, nullable=False),  # what routing needs (JSON)
    Column("external_id", String(128), nullable=True),  # SENAITE sample id / worklist file
    Column("external_uid", String(64), nullable=True),  # SENAITE sample UID
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", BigInteger, nullable=False),  # microseconds since the epoch
    Column("last_error", Text, nullable=True),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
)
c = order_outbox.c


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class Row:
    order_id: str
    target: Target
    state: State
    key: str
    payload: str
    external_id: str | None
    external_uid: str | None
    attempts: int
    next_at: int
    last_error: str | None


def _row(values: Any) -> Row:
    return Row(
        values.order_id,
        values.target,
        values.state,
        values.key,
        values.payload,
        values.external_id,
        values.external_uid,
        values.attempts,
        values.next_at,
        values.last_error,
    )


def get(conn: Connection, order_id: str) -> Row | None:
    found = conn.execute(select(order_outbox).where(c.order_id == order_id)).first()
    return _row(found) if found is not None else None


def enqueue(conn: Connection, order_id: str, target: Target, key: str, payload: str) -> None:
    us = now_us()
    conn.execute(
        insert(order_outbox).values(
            order_id=order_id,
            target=target,
            state="queued",
            key=key,
            payload=payload,
            attempts=0,
            next_at=us,
            created=us,
            updated=us,
        )
    )


def set_state(conn: Connection, order_id: str, state: State, **values: Any) -> None:
    conn.execute(
        update(order_outbox)
        .where(c.order_id == order_id)
        .values(state=state, updated=now_us(), **values)
    )


def retry_later(conn: Connection, row: Row, error: str, base_s: float, max_s: float) -> float:
    """Exponential backoff: the row stays in its state and comes due again after the delay."""
    delay = float(min(max_s, base_s * 2 ** min(row.attempts, 30)))
    conn.execute(
        update(order_outbox)
        .where(c.order_id == row.order_id)
        .values(
            attempts=row.attempts + 1,
            next_at=now_us() + int(delay * 1e6),
            last_error=error[:2000],
            updated=now_us(),
        )
    )
    return delay


def due(conn: Connection, limit: int = 100) -> list[Row]:
    stmt = (
        select(order_outbox)
        .where(c.state.in_(DUE_STATES), c.next_at <= now_us())
        .order_by(c.next_at)
        .limit(limit)
    )
    return [_row(v) for v in conn.execute(stmt)]


def in_state(conn: Connection, state: State, limit: int = 1000) -> list[Row]:
    stmt = select(order_outbox).where(c.state == state).order_by(c.created).limit(limit)
    return [_row(v) for v in conn.execute(stmt)]


def counts(conn: Connection) -> dict[str, int]:
    stmt = select(c.state, func.count()).group_by(c.state)
    return {str(state): int(n) for state, n in conn.execute(stmt)}


def listing(conn: Connection, limit: int = 200) -> list[Row]:
    stmt = select(order_outbox).order_by(c.created.desc()).limit(limit)
    return [_row(v) for v in conn.execute(stmt)]
