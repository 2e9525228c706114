"""How the long-running commands (`cdss sync --follow`, `cdss orders run`, `cdss worker`) stop.

SIGINT (Ctrl-C) and SIGTERM (docker stop, systemd, Kubernetes) set an event the command's loop
checks between units of work, instead of their defaults: an exception raised wherever the
process happens to be, or an immediate end. A sync pass, an order delivery or an AI job then
finishes (or is left whole for the next run) and the process exits 0; an AI job cut in half
would otherwise wait out its lease (CDSS_IMAGING_LEASE_S, 10 minutes) before another worker
may take it. Call from the main thread (Python delivers signals there only).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


def stop_on_signals() -> threading.Event:
    """An event that SIGINT and SIGTERM set, from now on in this process."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop
