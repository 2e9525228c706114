"""Settings from CDSS_* environment variables (and an optional .env), validated at start.

A wrong value stops the process at start with a message naming the variable, rather than
failing on the first request that needs it.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class SettingsError(RuntimeError):
    """Invalid configuration, with a message meant for the operator."""


ASYMMETRIC_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)


class CdsClient(BaseModel):
    """A trusted CDS client (CDSS_CDS_CLIENTS, a JSON array of these objects)."""

    iss: str = Field(min_length=1, description="the `iss` its JWTs carry, exactly")
    jwks: dict[str, Any] | None = Field(None, description="its public JWK Set, inline")
    jku: list[AnyHttpUrl] = Field(default_factory=list, description="allowed `jku` URLs")
    tenant: str | None = Field(None, description="required `tenant` claim, if any")
    fhir_servers: list[AnyHttpUrl] = Field(
        default_factory=list, description="fhirServer URLs the service may call with its tokens"
    )

    @model_validator(mode="after")
    def _keys(self) -> CdsClient:
        if not self.jwks and not self.jku:
            raise ValueError(f"client {self.iss}: give its jwks or at least one jku URL")
        if self.jwks:
            from cds_hooks.auth import import_jwks

            import_jwks(self.jwks)
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDSS_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Where embedded state lives (SQLite, keys)")
    database_url: str = Field("", description="SQLAlchemy URL; default SQLite in data_dir")
    base_url: AnyHttpUrl | None = Field(
        None, description="Public base URL of the app (behind a proxy); else from each request"
    )
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    secret_key: SecretStr | None = Field(
        None, description="Signs paging cursors; default: a key file in data_dir"
    )
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_bundle_entries: int = Field(1000, ge=1)
    default_page_size: int = Field(20, ge=1)
    max_page_size: int = Field(1000, ge=1)
    log_level: str = "INFO"

    # CDS Hooks service (/cds-services)
    cds_auth: Literal["required", "disabled"] = Field(
        "required", description="disabled: development only; every call logs a warning"
    )
    cds_clients: list[CdsClient] = Field(default_factory=list, description="trusted CDS clients")
    cds_clients_file: Path | None = Field(None, description="JSON file with more trusted clients")
    cds_algorithms: list[str] = Field(
        default_factory=lambda: ["ES384", "RS384"], description="JWT algorithms accepted"
    )
    cds_jwt_leeway_s: int = Field(60, ge=0, le=300)
    cds_jwt_max_lifetime_s: int = Field(3600, ge=60)
    cds_jwks_min_refresh_s: float = Field(60.0, ge=0)
    cds_smart_app_url: AnyHttpUrl | None = Field(
        None, description="launch URL for smart card links; default {base}/smart/launch"
    )
    cds_cors_origins: list[str] = Field(default_factory=lambda: ["*"])
    cds_fetch_timeout_s: float = Field(0.4, gt=0, description="one fallback FHIR request")
    cds_fetch_budget_s: float = Field(
        0.45, gt=0, description="all fetches from a client's fhirServer in one call"
    )
    cds_facade_budget_s: float = Field(2.0, gt=0, description="all facade fetches of a call")
    cds_facade_fallback: bool = Field(True, description="fetch missing prefetch from the facade")
    cds_duplicate_window_days: int = Field(30, ge=1)
    cds_creatinine_window_days: int = Field(30, ge=1)
    cds_imaging_summary_days: int = Field(365, ge=1)
    cds_max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value:
            try:
                make_url(value)
            except ArgumentError as exc:
                raise ValueError(f"not a database URL: {exc}") from None
        return value

    @field_validator("cds_algorithms")
    @classmethod
    def _algorithms(cls, value: list[str]) -> list[str]:
        refused = [a for a in value if a not in ASYMMETRIC_ALGORITHMS]
        if refused:
            raise ValueError(
                f"not allowed: {refused}; CDS Hooks forbids none and symmetric (HS*) algorithms"
            )
        if not value:
            raise ValueError("at least one algorithm is needed")
        return value

    @model_validator(mode="after")
    def _clients_file(self) -> Settings:
        """CDSS_CDS_CLIENTS_FILE's clients join CDSS_CDS_CLIENTS, checked at start like them."""
        if self.cds_clients_file is not None:
            try:
                raw = orjson.loads(self.cds_clients_file.read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise ValueError(f"cds_clients_file: {exc}") from None
            if not isinstance(raw, list):
                raise ValueError("cds_clients_file must hold a JSON array of clients")
            self.cds_clients = [*self.cds_clients, *map(CdsClient.model_validate, raw)]
        return self

    @cached_property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'cdss.db'}"

    def cursor_key(self) -> bytes:
        """The key signing paging cursors: shared by every worker, stable across restarts."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [
            f"  CDSS_{'_'.join(str(x) for x in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        ]
        raise SettingsError("invalid configuration:\n" + "\n".join(lines)) from None
