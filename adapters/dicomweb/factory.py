"""One place that turns PacsSettings into a PACS client (and auth), for every imaging consumer.

`pacs_client(PacsSettings())` returns an OrthancClient (profile `orthanc`) or a DicomwebClient
(profile `dicomweb`); both offer the DICOMweb methods of `adapters.dicomweb.protocol.PacsClient`.
"""

from __future__ import annotations

from requests.auth import AuthBase

from adapters.dicomweb.auth import BearerAuth, ClientCredentialsAuth, basic_auth
from adapters.dicomweb.client import DicomwebClient
from adapters.dicomweb.protocol import PacsClient
from adapters.dicomweb.settings import PacsSettings
from adapters.orthanc.client import OrthancClient


class PacsNotConfigured(ValueError):
    """No PACS URL: set CDSS_PACS_URL (or CDSS_ORTHANC_URL)."""


def _secret(value: object) -> str:
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if getter is not None else ""


def pacs_auth(settings: PacsSettings) -> AuthBase | None:
    """The requests auth for the configured kind (None: no authentication)."""
    kind = settings.effective_auth
    if kind == "basic":
        return basic_auth(settings.user or "", _secret(settings.password))
    if kind == "bearer":
        return BearerAuth(_secret(settings.token))
    if kind == "oauth2":
        return ClientCredentialsAuth(
            str(settings.token_url),
            settings.client_id or "",
            _secret(settings.client_secret),
            scope=settings.scope,
            leeway=settings.token_leeway,
            timeout=settings.timeout,
        )
    return None


def pacs_client(settings: PacsSettings) -> PacsClient:
    """The PACS client of the configured profile; the caller closes it."""
    base = settings.base_url
    if base is None:
        raise PacsNotConfigured("no PACS configured: set CDSS_PACS_URL (or CDSS_ORTHANC_URL)")
    if settings.profile == "orthanc":
        if settings.effective_auth not in ("none", "basic"):
            raise ValueError("the orthanc profile supports CDSS_PACS_AUTH none or basic only")
        credentials = None
        if settings.effective_auth == "basic":
            credentials = (settings.user or "", _secret(settings.password))
        return OrthancClient(
            base,
            auth=credentials,
            timeout=settings.timeout,
            attempts=settings.attempts,
            backoff=settings.backoff,
            dicomweb_root=settings.dicomweb_root,
        )
    return DicomwebClient(
        base,
        auth=pacs_auth(settings),
        timeout=settings.timeout,
        attempts=settings.attempts,
        backoff=settings.backoff,
        page_size=settings.page_size,
        transfer_syntax=settings.transfer_syntax,
    )
