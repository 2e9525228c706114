"""Prometheus metrics of the hub, exposed at /metrics.

Labels never carry identifiers or data: routes are templates (`/fhir/{rtype}/{id}`), services and
models are names from code. Counters and histograms live in the process's default registry; the
gauges that describe shared state (sync lag, order queue depth) are read from the database at
scrape time, so every API worker reports the same truth whichever process did the work.

Other packages record into these objects directly, e.g. the AI code times inference with
``MODEL_INFERENCE_SECONDS.labels(model="ct-nodule").time()``.
"""

from __future__ import annotations

import logging
import os
import time

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import select

from fhir_facade.store.base import Store

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_SECONDS = Histogram(
    "cdss_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    buckets=_FAST,
)
HOOK_SECONDS = Histogram(
    "cdss_cds_hook_duration_seconds",
    "CDS Hooks service call latency (prefetch, rules, cards) by service",
    ["service", "hook", "outcome"],
    buckets=_FAST,
)
SOURCE_MISSING = Counter(
    "cdss_cds_source_unavailable_total",
    "CDS calls answered without a source the service needs",
    ["service", "source"],
)
MODEL_INFERENCE_SECONDS = Histogram(
    "cdss_model_inference_seconds",
    "Model inference time by model name",
    ["model"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
SOURCE_UP = Gauge("cdss_source_up", "1 when the source answered its last health probe", ["source"])


def _scrape_gauges(store: Store) -> CollectorRegistry:
    """Sync lag and queue depth as of now, from the shared database."""
    from fhir_facade.orders import outbox  # the orders tables are on the store's metadata
    from fhir_facade.orders.intake import connection
    from fhir_facade.store.tables import store_state

    registry = CollectorRegistry()
    lag = Gauge(
        "cdss_sync_lag_seconds",
        "Seconds since the last complete sync pass of each source",
        ["source"],
        registry=registry,
    )
    depth = Gauge(
        "cdss_order_queue_depth",
        "Orders in the outbox by state (queued and cancelling are waiting for the worker)",
        ["state"],
        registry=registry,
    )
    now = time.time()
    with store.read_unit() as unit:
        conn = connection(unit)
        # every complete pass of sync_source rewrites its last_report: its `updated` stamp
        # (microseconds) is the moment the source was last fully caught up
        rows = conn.execute(
            select(store_state.c.key, store_state.c.updated).where(
                store_state.c.key.like("sync:%:last_report")
            )
        )
        for key, updated in rows:
            source = str(key).split(":")[1]
            lag.labels(source=source).set(max(0.0, now - int(updated) / 1e6))
        counts = outbox.counts(conn)
    for state in ("queued", "routed", "cancelling", "failed"):
        depth.labels(state=state).set(counts.get(state, 0))
    return registry


def render(store: Store | None) -> bytes:
    """The exposition text: process-wide metrics, then the scrape-time gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # `cdss serve --workers N`: sum them all
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        body = generate_latest(merged)
    else:
        body = generate_latest(REGISTRY)
    if store is not None:
        try:
            body += generate_latest(_scrape_gauges(store))
        except Exception:  # a scrape must not fail because the database is briefly busy
            log.warning("metrics: could not read sync lag and queue depth", exc_info=True)
    return body
