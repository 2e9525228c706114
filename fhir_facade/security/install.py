"""Putting the guard around the facade: the verifier with its outbound-guarded HTTP client (only
the configured issuers' hosts, no redirects), the audit sink, and the start-time checks."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from starlette.types import ASGIApp

from cdss.outbound import OutboundGuard, guarded_client
from fhir_facade.audit import AuditSink
from fhir_facade.security.guard import FacadeGuard
from fhir_facade.security.settings import SecuritySettings
from fhir_facade.security.smart import smart_configuration
from fhir_facade.security.tokens import TokenVerifier
from fhir_facade.store.base import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Secured:
    app: FacadeGuard
    http: httpx.AsyncClient

    async def aclose(self) -> None:
        await self.http.aclose()


def issuer_urls(settings: SecuritySettings) -> list[str]:
    urls = []
    for issuer in settings.issuers:
        urls += [str(u) for u in (issuer.jwks_uri, issuer.introspection_endpoint) if u]
    return urls


def secure(
    facade: ASGIApp,
    *,
    settings: SecuritySettings,
    store: Store,
    sink: AuditSink,
    max_body: int,
    bind_host: str,
) -> Secured:
    """The facade behind its guard. Raises ValueError for a setting that must stop the start."""
    settings.check_bind(bind_host)
    guard = OutboundGuard.from_urls(issuer_urls(settings))
    http = guarded_client(guard, timeout=settings.outbound_timeout_s)
    verifier = TokenVerifier(settings, http) if settings.auth == "required" else None
    if verifier is None:
        log.warning(
            "the FHIR facade runs WITHOUT authentication (CDSS_FHIR_AUTH=disabled): "
            "development only, bound to %s",
            bind_host,
        )
    elif not settings.issuers:
        log.warning("CDSS_FHIR_AUTH=required but no CDSS_FHIR_ISSUERS: every FHIR call gets 401")
    app = FacadeGuard(
        facade,
        settings=settings,
        verifier=verifier,
        store=store,
        sink=sink,
        max_body=max_body,
        smart=smart_configuration(settings),
    )
    return Secured(app, http)
