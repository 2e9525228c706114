"""Which store the facade uses (CDSS_STORE) and how it reaches an upstream FHIR server.

Kept apart from cdss/settings.py so the store can be chosen by any process that opens one (the
API, the sync follower, the job worker) with the same variables.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDSS_", env_file=".env", extra="ignore")

    store: Literal["sql", "upstream"] = Field(
        "sql", description="sql: SQLite/PostgreSQL (CDSS_DATABASE_URL); upstream: a FHIR server"
    )
    upstream_fhir_url: AnyHttpUrl | None = Field(
        None, description="Base of the upstream FHIR server, e.g. http://hapi:8080/fhir"
    )
    upstream_fhir_token: SecretStr | None = Field(
        None, description="Bearer token sent to the upstream (or give user and password)"
    )
    upstream_fhir_user: str | None = Field(None, description="HTTP Basic user for the upstream")
    upstream_fhir_password: SecretStr | None = None
    upstream_timeout_s: float = Field(10.0, gt=0, description="One request to the upstream")

    @model_validator(mode="after")
    def _upstream(self) -> StoreSettings:
        if self.store == "upstream" and self.upstream_fhir_url is None:
            raise ValueError("CDSS_STORE=upstream needs CDSS_UPSTREAM_FHIR_URL")
        if self.upstream_fhir_token is not None and self.upstream_fhir_user is not None:
            raise ValueError("give the upstream a token or a user and password, not both")
        return self

    def authorization(self) -> str | None:
        """The Authorization header value for the upstream, if it needs one."""
        if self.upstream_fhir_token is not None:
            return f"Bearer {self.upstream_fhir_token.get_secret_value()}"
        if self.upstream_fhir_user is not None:
            import base64

            password = (
                self.upstream_fhir_password.get_secret_value()
                if self.upstream_fhir_password
                else ""
            )
            pair = f"{self.upstream_fhir_user}:{password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        return None
