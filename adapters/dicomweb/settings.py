"""PACS settings (env prefix CDSS_PACS_): which profile, where, how to authenticate, how to poll.

Profiles. `orthanc` (default) keeps the Orthanc path: REST change feed for the sync, DICOMweb
plugin at `<url>/dicom-web` for everything else; CDSS_ORTHANC_URL/USER/PASSWORD still work.
`dicomweb` uses the DICOMweb standard only: `url` is the DICOMweb service root (dcm4chee-arc:
`http://host:8080/dcm4chee-arc/aets/DCM4CHEE/rs`), and the sync polls QIDO-RS.
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.dicomweb.protocol import EXPLICIT_VR_LITTLE_ENDIAN

Profile = Literal["orthanc", "dicomweb"]
AuthKind = Literal["none", "basic", "bearer", "oauth2"]


class PacsSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CDSS_PACS_", env_file=".env", extra="ignore", populate_by_name=True
    )

    profile: Profile = "orthanc"
    url: AnyHttpUrl | None = Field(
        None,
        validation_alias=AliasChoices("CDSS_PACS_URL", "CDSS_ORTHANC_URL"),
        description="orthanc: REST base; dicomweb: the DICOMweb service root",
    )
    dicomweb_root: str = Field("/dicom-web", description="orthanc profile: plugin root")
    auth: AuthKind | None = Field(None, description="default: basic when a user is set")
    user: str | None = Field(
        None, validation_alias=AliasChoices("CDSS_PACS_USER", "CDSS_ORTHANC_USER")
    )
    password: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("CDSS_PACS_PASSWORD", "CDSS_ORTHANC_PASSWORD"),
    )
    token: SecretStr | None = Field(None, description="bearer: the token")
    token_url: AnyHttpUrl | None = Field(None, description="oauth2: the OIDC token endpoint")
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scope: str | None = None
    token_leeway: float = Field(30.0, ge=0, description="refresh this long before expiry (s)")
    timeout: float = Field(30.0, gt=0)
    attempts: int = Field(4, ge=1, le=20)
    backoff: float = Field(0.5, ge=0)
    page_size: int = Field(500, ge=1, le=100_000)
    transfer_syntax: str = EXPLICIT_VR_LITTLE_ENDIAN
    poll_overlap: float = Field(
        86_400.0, ge=0, description="seconds each poll window reaches back before the last"
    )
    reconcile_interval: float = Field(
        3_600.0, gt=0, description="seconds between full listings (deletions, late arrivals)"
    )
    fetchers: int = Field(4, ge=1, le=32, description="studies read at once by the sync")
    max_delete_fraction: float = Field(
        0.5, gt=0, le=1, description="a reconciliation deleting more than this is refused"
    )
    timezone: str | None = Field(
        None,
        validation_alias=AliasChoices("CDSS_PACS_TIMEZONE"),
        description="IANA zone of DICOM dates/times, e.g. Europe/Paris",
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _complete(self) -> PacsSettings:
        kind = self.effective_auth
        if kind == "basic" and not self.user:
            raise ValueError("CDSS_PACS_AUTH=basic needs CDSS_PACS_USER (and _PASSWORD)")
        if kind == "bearer" and self.token is None:
            raise ValueError("CDSS_PACS_AUTH=bearer needs CDSS_PACS_TOKEN")
        if kind == "oauth2" and not (self.token_url and self.client_id and self.client_secret):
            raise ValueError(
                "CDSS_PACS_AUTH=oauth2 needs CDSS_PACS_TOKEN_URL, _CLIENT_ID and _CLIENT_SECRET"
            )
        return self

    @property
    def effective_auth(self) -> AuthKind:
        if self.auth is not None:
            return self.auth
        return "basic" if self.user else "none"

    @property
    def base_url(self) -> str | None:
        return str(self.url).rstrip("/") if self.url is not None else None

    @property
    def dicomweb_url(self) -> str | None:
        """The DICOMweb service root this profile talks to."""
        base = self.base_url
        if base is None:
            return None
        if self.profile == "orthanc":
            return base + "/" + self.dicomweb_root.strip("/")
        return base
