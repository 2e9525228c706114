"""Alembic migrations of the CDW schema, with their own version table (`cdw_alembic_version`)
so the CDW can share a database with the facade's store or live in its own."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

HERE = Path(__file__).parent
VERSION_TABLE = "cdw_alembic_version"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the CDW schema to `revision`; idempotent, safe to call at every start."""
    command.upgrade(alembic_config(engine), revision)
