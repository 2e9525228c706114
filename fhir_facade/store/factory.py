"""Open the store the configuration names: the SQL store, or the upstream FHIR server with the
SQL database kept for named state (sync cursors)."""

from __future__ import annotations

import logging

from fhir_facade.store.base import SqlBackedStore
from fhir_facade.store.config import StoreSettings
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.store.upstream import UpstreamStore
from fhir_facade.store.upstream_client import UpstreamClient

log = logging.getLogger(__name__)


def open_store(database_url: str, settings: StoreSettings | None = None) -> SqlBackedStore:
    settings = settings or StoreSettings()
    if settings.store == "sql":
        return SqlStore(database_url)
    url = str(settings.upstream_fhir_url).rstrip("/")
    client = UpstreamClient(
        url, authorization=settings.authorization(), timeout_s=settings.upstream_timeout_s
    )
    log.info("FHIR store: upstream server %s (named state in the SQL database)", url)
    return UpstreamStore(client, SqlStore(database_url))
