"""The source systems the sync reads, configured from CDSS_* variables.

Each source is optional: a site syncs what it has. OpenEMR is reached as a SMART Backend
Services client; when no client is configured, `cdss sync` registers one dynamically and keeps
its id and private key in the data directory (mode 0600) — an OpenEMR admin may still have to
enable it (Administration → System → API Clients).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.base import Source
from adapters.dicomweb.client import DicomwebClient
from adapters.dicomweb.factory import pacs_auth
from adapters.dicomweb.settings import PacsSettings
from adapters.dicomweb.source import DicomwebSource
from adapters.openemr.auth import BackendServicesAuth, make_rsa_jwk, register_backend_client
from adapters.openemr.client import OpenEMRClient
from adapters.openemr.source import OpenEMRSource
from adapters.orthanc.client import OrthancClient
from adapters.orthanc.source import OrthancSource
from adapters.senaite.client import SenaiteClient
from adapters.senaite.source import SenaiteSource

log = logging.getLogger(__name__)

OPENEMR_SYNC_SCOPES = (
    "system/Patient.read system/Practitioner.read system/Organization.read "
    "system/Encounter.read system/Condition.read system/Observation.read "
    "system/MedicationRequest.read system/AllergyIntolerance.read system/DiagnosticReport.read "
    "system/ServiceRequest.rs system/Specimen.rs"
)


class SourceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDSS_", env_file=".env", extra="ignore")

    data_dir: Path = Path("var")
    openemr_url: AnyHttpUrl | None = Field(None, description="OpenEMR base, e.g. https://emr")
    openemr_client_id: str | None = None
    openemr_private_jwk: Path | None = Field(None, description="JSON file with the RS384 key")
    senaite_url: AnyHttpUrl | None = Field(
        None, description="SENAITE site, e.g. https://lis/senaite"
    )
    senaite_user: str = "admin"
    senaite_password: SecretStr = SecretStr("admin")
    orthanc_url: AnyHttpUrl | None = None
    orthanc_user: str | None = None
    orthanc_password: SecretStr | None = None
    dicomweb_public_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8080/dicom-web"),
        description="DICOMweb base the Endpoint resources point clients at (the app's proxy)",
    )
    pacs_timezone: str | None = Field(
        None, description="IANA zone of DICOM times, e.g. Europe/Paris"
    )
    sync_batch_size: int = Field(200, ge=1, le=5000)
    sync_interval: float = Field(1.0, gt=0)

    @field_validator("pacs_timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value


def _url(value: AnyHttpUrl | None) -> str:
    return str(value).rstrip("/")


def _openemr_client(settings: SourceSettings) -> tuple[str, dict[str, Any]]:
    """The configured backend client, or one registered now and remembered in data_dir."""
    if settings.openemr_client_id and settings.openemr_private_jwk:
        return settings.openemr_client_id, json.loads(settings.openemr_private_jwk.read_text())
    path = settings.data_dir / "openemr-backend-client.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("issuer") == _url(settings.openemr_url):
            return str(saved["client_id"]), dict(saved["private_jwk"])
    keys = make_rsa_jwk()
    registered = register_backend_client(
        f"{_url(settings.openemr_url)}/oauth2/default",
        client_name="cdss sync",
        scopes=OPENEMR_SYNC_SCOPES,
        jwks=keys.jwks,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "issuer": _url(settings.openemr_url),
                "client_id": registered.client_id,
                "private_jwk": keys.private_jwk,
            }
        )
    )
    path.chmod(0o600)
    log.info(
        "registered OpenEMR backend client %s (an admin may need to enable it)",
        registered.client_id,
    )
    return registered.client_id, dict(keys.private_jwk)


def openemr_source(settings: SourceSettings) -> OpenEMRSource:
    base = _url(settings.openemr_url)
    client_id, jwk = _openemr_client(settings)
    auth = BackendServicesAuth(
        f"{base}/oauth2/default/token", client_id, jwk, scopes=OPENEMR_SYNC_SCOPES
    )
    fhir = f"{base}/apis/default/fhir"
    return OpenEMRSource(OpenEMRClient(fhir, auth), base_url=fhir)


def senaite_source(settings: SourceSettings) -> SenaiteSource:
    site = _url(settings.senaite_url)
    client = SenaiteClient(
        f"{site}/@@API/senaite/v1",
        username=settings.senaite_user,
        password=settings.senaite_password.get_secret_value(),
    )
    return SenaiteSource(client, base_url=site)


def orthanc_auth(settings: SourceSettings) -> tuple[str, str] | None:
    if settings.orthanc_user and settings.orthanc_password:
        return settings.orthanc_user, settings.orthanc_password.get_secret_value()
    return None


def orthanc_source(settings: SourceSettings) -> OrthancSource:
    base = _url(settings.orthanc_url)
    zone = ZoneInfo(settings.pacs_timezone) if settings.pacs_timezone else None
    return OrthancSource(
        OrthancClient(base, auth=orthanc_auth(settings)),
        dicomweb_public_url=_url(settings.dicomweb_public_url),
        base_url=base,
        timezone=zone,
    )


def dicomweb_source(settings: SourceSettings, pacs: PacsSettings) -> DicomwebSource:
    """The `dicomweb` PACS profile: QIDO-RS polling of any DICOMweb server (issue 10)."""
    base = pacs.base_url or ""
    zone_name = pacs.timezone or settings.pacs_timezone
    client = DicomwebClient(
        base,
        auth=pacs_auth(pacs),
        timeout=pacs.timeout,
        attempts=pacs.attempts,
        backoff=pacs.backoff,
        page_size=pacs.page_size,
        transfer_syntax=pacs.transfer_syntax,
    )
    return DicomwebSource(
        client,
        dicomweb_public_url=_url(settings.dicomweb_public_url),
        base_url=base,
        timezone=ZoneInfo(zone_name) if zone_name else None,
        overlap=pacs.poll_overlap,
        reconcile_interval=pacs.reconcile_interval,
        max_delete_fraction=pacs.max_delete_fraction,
        fetchers=pacs.fetchers,
    )


def build_sources(
    settings: SourceSettings, only: str | None = None, pacs: PacsSettings | None = None
) -> list[Source]:
    """The configured sources in linking order (the EHR first: it owns patient identity).
    The imaging source follows CDSS_PACS_PROFILE: `orthanc` (change feed, as before) or
    `dicomweb` (QIDO-RS polling; `only` accepts "pacs" or "orthanc" for it)."""
    pacs = pacs if pacs is not None else PacsSettings()
    makers = (
        ("openemr", settings.openemr_url, openemr_source),
        ("senaite", settings.senaite_url, senaite_source),
    )
    sources: list[Source] = []
    for name, url, make in makers:
        if url is not None and only in (None, name):
            sources.append(make(settings))
    if pacs.profile == "dicomweb":
        if pacs.url is not None and only in (None, "pacs", "orthanc"):
            sources.append(dicomweb_source(settings, pacs))
    elif settings.orthanc_url is not None and only in (None, "orthanc"):
        sources.append(orthanc_source(settings))
    return sources
