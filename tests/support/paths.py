"""Where the shared recorded payloads live: `../shared` beside the checkout (as CI lays it out),
or CDSS_SHARED_DIR."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("CDSS_SHARED_DIR") or ROOT.parent / "shared")
FIXTURES = SHARED / "fixtures"
