"""The SQL store: SQLite (embedded, WAL) or PostgreSQL, one schema, Alembic-migrated."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event, text

from fhir_facade.store.base import StoredResource
from fhir_facade.store.engine import make_engine
from fhir_facade.store.migrations import upgrade
from fhir_facade.store.sql_unit import SqlUnit, read_current

log = logging.getLogger(__name__)
WAL_AUTOCHECKPOINT_PAGES = 8192


def _begin_immediate(conn: Any) -> None:
    # A deferred SQLite transaction that later writes can fail at once with "database is
    # locked" (no busy wait); taking the write lock up front makes writers queue instead.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class SqlStore:
    """Store over SQLAlchemy. Writers and readers use separate engines on SQLite."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.reader: Engine = make_engine(url)
        self.writer: Engine = self.reader
        if self.reader.dialect.name == "sqlite":
            self.writer = make_engine(url)
            event.listen(self.writer, "connect", _autocommit_driver)
            event.listen(self.writer, "begin", _begin_immediate)
        if migrate:
            upgrade(self.writer)

    @contextmanager
    def unit(self) -> Iterator[SqlUnit]:
        with self.writer.begin() as conn:
            unit = SqlUnit(conn)
            yield unit
            unit.flush()

    @contextmanager
    def read_unit(self) -> Iterator[SqlUnit]:
        """A unit for reads only (search, history, vread): on SQLite it does not take the write
        lock, so readers run beside a writer (WAL) instead of queueing behind it."""
        with self.reader.begin() as conn:
            yield SqlUnit(conn)

    def read(self, resource_type: str, id: str) -> StoredResource:
        with self.reader.connect() as conn:
            return read_current(conn, resource_type, id)

    def check(self) -> None:
        with self.reader.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.reader.dispose()
        self.writer.dispose()


def _autocommit_driver(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's own BEGIN.
    dbapi_conn.isolation_level = None
    # The default checkpoint every 1,000 WAL pages (4 MB) ran inside sync commits (~46 ms
    # each): a sync batch rewrites the same index pages again and again, and a larger WAL
    # lets one checkpoint write each page once. Bounded (32 MB), so the WAL does not grow.
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.close()
