"""The polling cursor of the `dicomweb` profile: where the next QIDO window starts, when the
last full reconciliation ran, and which studies are in the facade with how many instances.

`known` is what makes de-duplication and deletion detection possible without a change feed: a
listed study whose (StudyInstanceUID, NumberOfStudyRelatedInstances) is already known is not
fetched again; a known study missing from a full listing has been deleted. It is persisted as
part of the cursor, so it commits in the same transaction as the batch it describes (engine.py):
a crash never leaves it ahead of or behind the facade. Size: ~70 bytes per study.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime

logger = logging.getLogger(__name__)

VERSION = 1


@dataclass(slots=True)
class PollCursor:
    window_start: datetime | None = None  # naive, in the PACS's local time (DICOM DA/TM)
    reconciled_at: float | None = None  # epoch seconds of the last full listing
    known: dict[str, int] = field(default_factory=dict)  # StudyInstanceUID -> instances

    def encode(self) -> str:
        return json.dumps(
            {
                "v": VERSION,
                "window_start": self.window_start.isoformat() if self.window_start else None,
                "reconciled_at": self.reconciled_at,
                "known": self.known,
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def decode(cls, cursor: str | None) -> PollCursor:
        """The cursor, or a fresh one (first run) when there is none. A cursor of another
        format (e.g. an `orthanc` change Seq after a profile switch) starts afresh with a full
        listing, which the idempotent upserts make harmless; it is logged."""
        if not cursor:
            return cls()
        try:
            raw = json.loads(cursor)
            if not isinstance(raw, dict) or raw.get("v") != VERSION:
                raise ValueError(f"not a version {VERSION} poll cursor")
            start = raw.get("window_start")
            known = raw.get("known") or {}
            if not isinstance(known, dict):
                raise ValueError("known is not an object")
            reconciled = raw.get("reconciled_at")
            return cls(
                window_start=datetime.fromisoformat(start) if start else None,
                reconciled_at=float(reconciled) if reconciled is not None else None,
                known={str(k): int(v) for k, v in known.items()},
            )
        except (ValueError, TypeError) as exc:
            logger.warning("pacs: unusable cursor (%s); starting with a full listing", exc)
            return cls()
