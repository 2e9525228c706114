"""Alembic migrations of the CDS service's tables, run at start-up like the facade's.

A separate version table keeps this history independent of the facade's in the same database.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

HERE = Path(__file__).parent
VERSION_TABLE = "cds_alembic_version"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the CDS tables to `revision`; idempotent, so every process may call it."""
    command.upgrade(alembic_config(engine), revision)
