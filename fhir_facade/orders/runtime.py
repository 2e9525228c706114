"""Order routing inside the app process: one call from the composition root (cdss/app.py).

Both switches are off by default, so an app built in tests or without a LIS/PACS behaves as the
plain facade: CDSS_ORDERS_ENABLED turns on intake (validation and queueing of POSTed orders),
CDSS_ORDERS_WORKER also runs the routing worker as a daemon thread (else run `cdss orders run`).
"""

from __future__ import annotations

import atexit
import logging
import threading

from fhir_facade.orders import hook, worker
from fhir_facade.orders.config import OrderSettings
from fhir_facade.store.base import Store

log = logging.getLogger(__name__)


def attach(store: Store, settings: OrderSettings | None = None) -> threading.Event | None:
    """Turn intake on when configured, and start the worker; returns its stop event, if any."""
    settings = settings or OrderSettings()
    if not settings.orders_enabled:
        return None
    hook.install(True)
    if not settings.orders_worker:
        log.info("order intake on; run `cdss orders run` to route the queue")
        return None
    stop = threading.Event()
    worker.start(store, settings, stop)
    atexit.register(stop.set)
    log.info("order intake and routing worker on")
    return stop
