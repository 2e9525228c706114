"""The CDS Hooks service's configuration, as plain values (built from cdss.settings by the
composition root), so this package never reads the environment itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from cds_hooks.prefetch import FetchPolicy

AuthMode = Literal["required", "disabled"]
AuditWriter = Literal["process", "thread"]
DEFAULT_ALGORITHMS = ("ES384", "RS384")


@dataclass(frozen=True, slots=True)
class TrustedClient:
    """A CDS client allowed to call: its issuer, where its keys come from, and which FHIR
    servers of its own the service may call with the tokens it lends."""

    iss: str
    jwks: dict[str, Any] | None = None  # inline JWK Set (out-of-band exchange)
    jku: tuple[str, ...] = ()  # JWK Set URLs this issuer may name in its tokens' `jku`
    tenant: str | None = None  # when set, tokens must carry this tenant
    fhir_servers: tuple[str, ...] = ()  # fhirServer base URLs the service may call

    def allows_fhir_server(self, url: str) -> bool:
        wanted = url.rstrip("/")
        return any(wanted == s.rstrip("/") for s in self.fhir_servers)


@dataclass(frozen=True, slots=True)
class AuthConfig:
    mode: AuthMode = "required"
    clients: tuple[TrustedClient, ...] = ()
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway_s: int = 60
    max_lifetime_s: int = 3600  # bounds the replay cache: a token may not live longer
    jwks_min_refresh_s: float = 60.0  # at most one JWKS refetch per URL in this interval
    jwks_ttl_s: float = 3600.0
    jwks_timeout_s: float = 3.0


@dataclass(frozen=True, slots=True)
class ClinicalOptions:
    """Windows and thresholds the services apply (documented in README's settings table)."""

    duplicate_window_days: int = 30
    creatinine_window_days: int = 30
    imaging_summary_days: int = 365


@dataclass(frozen=True, slots=True)
class CdsConfig:
    auth: AuthConfig = field(default_factory=AuthConfig)
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    clinical: ClinicalOptions = field(default_factory=ClinicalOptions)
    base_url: str | None = None  # public base URL (behind a proxy); else each request's
    smart_app_url: str | None = None  # launch URL of the SMART app for `smart` links
    cors_origins: tuple[str, ...] = ("*",)
    max_body_bytes: int = 5 * 1024 * 1024
    # Where the audit is written (cds_hooks.recorder): a child process keeps its FHIR validation
    # off the server's GIL; "thread" writes in the server process.
    audit_writer: AuditWriter = "process"
