"""Keyed pseudonyms and per-person date shifts (HMAC-SHA256).

Every identifier that reaches the CDW is an HMAC of the source identifier under a key held in
configuration only, so the CDW alone cannot be mapped back, while the hub (which holds the
key) can put a live patient into the same pseudonymised frame at inference time. Dates move by
a per-person offset derived from the same key: intervals within a person are kept exactly,
calendar dates are not.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime, timedelta

_ID_MASK = (1 << 62) - 1
_PERSON_CACHE = 65_536  # entries; bounded so memory stays constant in cohort size


class Pseudonymizer:
    def __init__(self, key: bytes, *, max_shift_days: int = 180) -> None:
        if not key:
            raise ValueError("an empty pseudonym key")
        self._key = key
        self.max_shift_days = max_shift_days
        # Every row of a person needs its person_id and date shift: two HMACs per row without
        # a cache, once per person with it (the ETL reads resources by type, not by person).
        self._people: dict[str, tuple[int, int]] = {}

    def _digest(self, purpose: str, value: str) -> bytes:
        return hmac.new(self._key, f"{purpose}\x00{value}".encode(), hashlib.sha256).digest()

    def token(self, purpose: str, value: str) -> str:
        """A 128-bit hex pseudonym (fits OMOP's 50-character source value columns)."""
        return self._digest(purpose, value)[:16].hex()

    def source_key(self, resource_type: str, resource_id: str) -> str:
        """The stable key of one facade resource in the ETL's bookkeeping."""
        return self.token("src", f"{resource_type}/{resource_id}")

    def integer(self, purpose: str, value: str) -> int:
        """A positive 62-bit id; collisions are negligible below ~10^8 rows per table."""
        return int.from_bytes(self._digest(purpose, value)[:8], "big") & _ID_MASK or 1

    def _person(self, patient_id: str) -> tuple[int, int]:
        found = self._people.get(patient_id)
        if found is None:
            if len(self._people) >= _PERSON_CACHE:
                self._people.clear()
            found = (self.integer("person", patient_id), self._shift(patient_id))
            self._people[patient_id] = found
        return found

    def person_id(self, patient_id: str) -> int:
        return self._person(patient_id)[0]

    def shift_days(self, patient_id: str) -> int:
        """The person's offset in [-max, +max] days, never 0 when shifting is enabled."""
        return self._person(patient_id)[1]

    def _shift(self, patient_id: str) -> int:
        if self.max_shift_days == 0:
            return 0
        span = 2 * self.max_shift_days
        raw = int.from_bytes(self._digest("shift", patient_id)[:8], "big") % span
        offset = raw - self.max_shift_days
        return offset if offset < 0 else offset + 1

    def shift_date(self, value: date, patient_id: str) -> date:
        return value + timedelta(days=self.shift_days(patient_id))

    def shift_datetime(self, value: datetime, patient_id: str) -> datetime:
        return value + timedelta(days=self.shift_days(patient_id))
