"""CDW settings (env prefix CDSS_), kept apart from the hub's `cdss.settings` so the warehouse
can run on its own machine with only what it needs: where the facade's store is, where the
CDW goes, and the pseudonymisation key (which never enters the CDW)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

DEV_KEY = b"cdss-cdw-dev-pseudonym-key-not-for-real-data"


class CdwConfigError(RuntimeError):
    """A configuration the CDW refuses to run with (no pseudonym key)."""


class CdwSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDSS_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Where embedded state lives")
    database_url: str = Field("", description="The facade's store; default SQLite in data_dir")
    cdw_database_url: str = Field("", description="The CDW; default SQLite cdw.db in data_dir")
    cdw_pseudonym_key: SecretStr | None = Field(
        None, description="HMAC key for pseudonyms and date shifts; never stored in the CDW"
    )
    cdw_allow_dev_key: bool = Field(
        False, description="Use a fixed, public development key (synthetic data only)"
    )
    cdw_max_shift_days: int = Field(180, ge=0, le=3650, description="Largest per-person shift")
    cdw_birth_precision: Literal["year", "month"] = Field(
        "year", description="What survives of the birth date"
    )
    cdw_batch_size: int = Field(500, ge=1, le=100_000, description="Resources per transaction")

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'cdss.db'}"

    @property
    def effective_cdw_url(self) -> str:
        return self.cdw_database_url or f"sqlite:///{self.data_dir / 'cdw.db'}"

    def pseudonym_key(self) -> bytes:
        """The key, or the public dev key when explicitly allowed (with a warning): without a
        secret key the pseudonyms could be recomputed by anyone from the source ids."""
        if self.cdw_pseudonym_key is not None and self.cdw_pseudonym_key.get_secret_value():
            key = self.cdw_pseudonym_key.get_secret_value().encode()
            if len(key) < 16:
                raise CdwConfigError("CDSS_CDW_PSEUDONYM_KEY must be at least 16 bytes")
            return key
        if self.cdw_allow_dev_key:
            log.warning("CDW uses the public development pseudonym key: synthetic data only")
            return DEV_KEY
        raise CdwConfigError(
            "set CDSS_CDW_PSEUDONYM_KEY (a secret of 16+ bytes), or CDSS_CDW_ALLOW_DEV_KEY=1 "
            "for synthetic data"
        )
