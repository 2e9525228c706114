"""What the CDS service holds for its lifetime, built once by the composition root."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import httpx

from cds_hooks.auth import Authenticator
from cds_hooks.config import CdsConfig
from cds_hooks.feedback import FeedbackStore
from cds_hooks.recorder import Recorder
from cds_hooks.registry import Registry
from cds_hooks.source_health import SourceMonitor
from cds_hooks.sources import FacadeSource
from cdss.outbound import OutboundGuard, guarded_client
from fhir_facade.store.base import Store


@dataclass(slots=True)
class CdsState:
    config: CdsConfig
    registry: Registry
    store: Store
    feedback: FeedbackStore
    http: httpx.AsyncClient
    facade: FacadeSource
    recorder: Recorder
    authenticator: Authenticator | None  # None only when authentication is disabled
    health: SourceMonitor | None = None  # which source systems answer (set by the app)

    async def aclose(self) -> None:
        await self.http.aclose()
        self.recorder.close()  # drains what is queued first
        self.feedback.close()


def build_state(
    config: CdsConfig,
    store: Store,
    database_url: str,
    *,
    registry: Registry | None = None,
    http: httpx.AsyncClient | None = None,
) -> CdsState:
    """The service's state; `registry` defaults to the services shipped in cds_hooks.services."""
    if registry is None:
        from cds_hooks.services import default_registry

        registry = default_registry()
    # outbound only to the configured clients' fhirServers and jku hosts, never redirected
    allowed = [u for c in config.auth.clients for u in (*c.fhir_servers, *c.jku)]
    client = http or guarded_client(
        OutboundGuard.from_urls(allowed),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
    )
    auth = Authenticator(config.auth, client) if config.auth.mode == "required" else None
    feedback = FeedbackStore(database_url)
    # SQLite has one writer; queued on SQLite's busy handler (sleeps up to 100 ms between tries)
    # the audit writer starved for seconds under load beside the facade's own writers. A Python
    # lock hands the write lock over in turn instead. Reads use read-only units and need none.
    # (The writer process, the default, has its own connections and waits on the busy handler.)
    gate = threading.Lock() if database_url.startswith("sqlite") else None
    audit_url = database_url if config.audit_writer == "process" else None
    return CdsState(
        config=config,
        registry=registry,
        store=store,
        feedback=feedback,
        http=client,
        facade=FacadeSource(store, config.fetch),
        recorder=Recorder(store, feedback, gate=gate, database_url=audit_url),
        authenticator=auth,
    )
