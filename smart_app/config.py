"""The SMART app's settings (env prefix CDSS_SMART_), kept apart from cdss/settings.py.

The app is a confidential client of the EHR (OpenEMR): its client id and secret come from the
EHR's registration (`cdss smart register`). Only issuers on the allow-list may launch it, so the
launch endpoint cannot be used as an open redirector (SMART App Launch 2.2 "EHR launch").
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SCOPES_V2 = (
    "launch openid fhirUser online_access api:fhir user/Patient.rs user/Encounter.rs "
    "user/Observation.rs user/Condition.rs user/ServiceRequest.rs user/DiagnosticReport.rs"
)
STANDALONE_EXTRA = "launch/patient"


class SmartSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDSS_SMART_", env_file=".env", extra="ignore")

    client_id: str | None = Field(None, description="client id the EHR issued")
    client_secret: SecretStr | None = Field(None, description="its secret (client_secret_basic)")
    issuers: list[str] = Field(
        default_factory=list, description="FHIR base URLs (iss) allowed to launch the app"
    )
    public_url: AnyHttpUrl | None = Field(
        None, description="the app's public base (default: CDSS_BASE_URL, else the request)"
    )
    facade_url: AnyHttpUrl | None = Field(
        None, description="the facade the pages read (default: {public base}/fhir)"
    )
    cds_services: list[str] = Field(
        default_factory=list,
        description="CDS service base URLs (default: {public base}/cds-services)",
    )
    dicomweb_url: AnyHttpUrl | None = Field(
        None, description="upstream DICOMweb base (default: the PACS's, from CDSS_PACS_*)"
    )
    dicomweb_user: str | None = None
    dicomweb_password: SecretStr | None = None
    scopes_v2: str = Field(DEFAULT_SCOPES_V2, description="requested with permission-v2")
    session_ttl_s: int = Field(8 * 3600, ge=60, description="idle browser session lifetime")
    refresh_margin_s: int = Field(60, ge=0, description="refresh tokens this long before expiry")
    cookie_secure: bool = Field(True, description="Secure cookies (SameSite=None needs it)")
    key_file: Path | None = Field(
        None, description="the app's CDS-client signing key (default: <data_dir>/smart-key.json)"
    )
    facade_token: Literal["delegated", "user"] = Field(
        "delegated",
        description="delegated: the app's own patient-bound JWT; user: the EHR's access token",
    )
    http_timeout_s: float = Field(10.0, gt=0)
