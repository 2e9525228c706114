"""The facade's security settings (CDSS_FHIR_*), checked at start.

Authentication is required unless CDSS_FHIR_AUTH=disabled, which is a development setting and
is refused unless the server binds to a loopback address.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

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

AuthMode = Literal["required", "disabled"]
DEFAULT_ALGORITHMS = ("RS256", "RS384", "ES256", "ES384", "PS256")
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}
)


class IssuerConfig(BaseModel):
    """One trusted authorization server (CDSS_FHIR_ISSUERS is a JSON array of these).

    JWT access tokens are checked against `jwks` / `jwks_uri`; opaque tokens, and JWTs that need
    context they do not carry (OpenEMR's access tokens hold no `patient`), are introspected at
    `introspection_endpoint` with this server's client credentials.
    """

    issuer: str = Field(min_length=1, description="the `iss` its tokens carry, exactly")
    audiences: list[str] = Field(
        default_factory=list, description="accepted `aud` values (OpenEMR: the client ids)"
    )
    jwks_uri: AnyHttpUrl | None = None
    jwks: dict[str, Any] | None = Field(None, description="its public JWK Set, inline")
    require_iss: bool = Field(
        True, description="false for servers whose access tokens omit iss (OpenEMR)"
    )
    introspection_endpoint: AnyHttpUrl | None = None
    client_id: str | None = Field(None, description="this facade's client id at the server")
    client_secret: SecretStr | None = None
    authorization_endpoint: AnyHttpUrl | None = None
    token_endpoint: AnyHttpUrl | None = None

    @model_validator(mode="after")
    def _usable(self) -> IssuerConfig:
        if not (self.jwks or self.jwks_uri or self.introspection_endpoint):
            raise ValueError(f"issuer {self.issuer}: give jwks, jwks_uri or introspection")
        if self.introspection_endpoint and not (self.client_id and self.client_secret):
            raise ValueError(f"issuer {self.issuer}: introspection needs client_id and secret")
        if (self.jwks or self.jwks_uri) and not self.audiences:
            raise ValueError(f"issuer {self.issuer}: JWTs need at least one accepted audience")
        return self


class SecuritySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDSS_FHIR_", env_file=".env", extra="ignore")

    auth: AuthMode = Field("required", description="disabled: development, loopback only")
    issuers: list[IssuerConfig] = Field(default_factory=list)
    algorithms: list[str] = Field(default_factory=lambda: list(DEFAULT_ALGORITHMS))
    leeway_s: int = Field(60, ge=0, le=300, description="clock skew allowed on exp/nbf/iat")
    jwks_min_refresh_s: float = Field(60.0, ge=0, description="at most one refetch per interval")
    introspection_cache_s: float = Field(30.0, ge=0, description="0: introspect every call")
    outbound_timeout_s: float = Field(5.0, gt=0)
    admin_scope: str = Field(
        "cdss/admin", description="with an AuditEvent read scope, lets a token read the audit"
    )
    admin_subjects: list[str] = Field(
        default_factory=list, description="sub or fhirUser values that are audit admins"
    )
    audit: bool = Field(True, description="an AuditEvent for every facade access")
    max_query_params: int = Field(64, ge=1, description="as the search parser's own limit")
    max_includes: int = Field(64, ge=0, description="_include + _revinclude per search")
    max_chain_depth: int = Field(1, ge=0, description="dots in one chained parameter name")
    max_query_bytes: int = Field(8192, ge=256)
    max_header_bytes: int = Field(16384, ge=1024, description="all request headers together")

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, value: list[str]) -> list[str]:
        refused = [a for a in value if a not in ALLOWED_ALGORITHMS]
        if refused or not value:
            raise ValueError(f"asymmetric algorithms only (none and HS* are refused): {refused}")
        return value

    def check_bind(self, host: str) -> None:
        """Refuse to run without authentication anywhere but loopback."""
        if self.auth == "disabled" and not is_loopback(host):
            raise ValueError(
                f"CDSS_FHIR_AUTH=disabled is a development setting: bind to 127.0.0.1, not {host}"
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SecuritySettingsError(RuntimeError):
    """Invalid CDSS_FHIR_* configuration, with a message for the operator."""


def load_security_settings(**overrides: Any) -> SecuritySettings:
    try:
        return SecuritySettings(**overrides)
    except ValidationError as exc:
        lines = [
            f"  CDSS_FHIR_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        ]
        raise SecuritySettingsError("invalid configuration:\n" + "\n".join(lines)) from None


def demo_auth_default() -> str:
    """For `cdss demo` (synthetic data, loopback): unless CDSS_FHIR_AUTH is set (environment or
    .env), the facade runs without authentication. Returns the line to show the operator."""
    import os

    try:
        explicit = "auth" in SecuritySettings().model_fields_set
    except ValidationError:
        explicit = True  # a broken setting: let the app's start report it
    if not explicit:
        os.environ["CDSS_FHIR_AUTH"] = "disabled"
        return (
            "  FHIR auth         disabled for the demo (loopback only); "
            "CDSS_FHIR_AUTH=required and CDSS_FHIR_ISSUERS require tokens"
        )
    return f"  FHIR auth         {os.environ.get('CDSS_FHIR_AUTH', 'from .env')} (CDSS_FHIR_AUTH)"
