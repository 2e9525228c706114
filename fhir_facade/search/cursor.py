"""Opaque paging cursors: the search itself plus the sort-key position of a page edge.

Keyset positions (rather than offsets) keep pages correct while data changes: a resource created
or deleted before the cursor's position does not shift what the next page holds. The token is
signed so a client cannot hand-craft positions or swap the search under a cursor.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

import orjson

from fhir_facade.errors import bad_request

Direction = Literal["next", "previous"]


@dataclass(frozen=True, slots=True)
class Cursor:
    resource_type: str
    pairs: tuple[tuple[str, str], ...]
    position: tuple[object, ...]
    direction: Direction


def encode(cursor: Cursor, key: bytes) -> str:
    body = orjson.dumps([cursor.resource_type, cursor.pairs, cursor.position, cursor.direction[0]])
    mac = hmac.new(key, body, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")


def decode(token: str, key: bytes) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        mac, body = raw[:12], raw[12:]
        if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()[:12]):
            raise ValueError("bad signature")
        rtype, pairs, position, direction = orjson.loads(body)
        return Cursor(
            str(rtype),
            tuple((str(k), str(val)) for k, val in pairs),
            tuple(position),
            "next" if direction == "n" else "previous",
        )
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise bad_request(
            "the paging cursor is invalid; start the search again", "_cursor"
        ) from None
