"""Settings from CDSS_* environment variables (and an optional .env), validated at start.

A wrong value stops the process at start with a message naming the variable, rather than
failing on the first request that needs it.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class SettingsError(RuntimeError):
    """Invalid configuration, with a message meant for the operator."""


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

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value:
            try:
                make_url(value)
            except ArgumentError as exc:
                raise ValueError(f"not a database URL: {exc}") from None
        return value

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
