"""The polling cursor of the `dicomweb` profile: where the next QIDO window starts, when the
last full reconciliation ran, and the studies the next window poll will list again.

The cursor stays small whatever the size of the PACS. It does not list every synced study:
the facade itself is the record of what was synced (each ImagingStudy carries its
StudyInstanceUID identifier and numberOfInstances, both indexed; adapters/dicomweb/facade.py),
and it commits in the same transaction as the cursor (engine.py), so the two never disagree.
`recent` holds only the (StudyInstanceUID -> instances) of the studies dated inside the current
window, which every window poll lists again: they are de-duplicated here without a facade
lookup, and a study rejected by the mapper is not fetched again at every poll. Its size follows
the studies per overlap window (~70 bytes each), not the archive.

Version 1 cursors (with every study in `known`) decode into version 2: the window is kept, the
studies dated inside it are unknown by date here, so `recent` starts empty and the facade
de-duplicates them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime

logger = logging.getLogger(__name__)

VERSION = 2


@dataclass(slots=True)
class PollCursor:
    window_start: datetime | None = None  # naive, in the PACS's local time (DICOM DA/TM)
    reconciled_at: float | None = None  # epoch seconds of the last full listing
    recent: dict[str, int] = field(default_factory=dict)  # StudyInstanceUID -> instances

    def encode(self) -> str:
        return json.dumps(
            {
                "v": VERSION,
                "window_start": self.window_start.isoformat() if self.window_start else None,
                "reconciled_at": self.reconciled_at,
                "recent": self.recent,
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def decode(cls, cursor: str | None) -> PollCursor:
        """The cursor, or a fresh one (first run) when there is none. A cursor of another
        format (e.g. an `orthanc` change Seq after a profile switch) starts afresh with a full
        listing, which the facade's de-duplication makes cheap; it is logged."""
        if not cursor:
            return cls()
        try:
            raw = json.loads(cursor)
            if not isinstance(raw, dict) or raw.get("v") not in (1, VERSION):
                raise ValueError(f"not a version {VERSION} poll cursor")
            start = raw.get("window_start")
            recent = (raw.get("recent") or {}) if raw["v"] == VERSION else {}
            if not isinstance(recent, dict):
                raise ValueError("recent is not an object")
            reconciled = raw.get("reconciled_at")
            return cls(
                window_start=datetime.fromisoformat(start) if start else None,
                reconciled_at=float(reconciled) if reconciled is not None else None,
                recent={str(k): int(v) for k, v in recent.items()},
            )
        except (ValueError, TypeError) as exc:
            logger.warning("pacs: unusable cursor (%s); starting with a full listing", exc)
            return cls()
