"""AuditEvents of work done outside the server (CLI exports): written at once, in their own unit,
since there is no request path to keep them off and no writer thread running."""

from __future__ import annotations

import getpass
import uuid

from fhir_facade.audit.events import Actor, Event, build_event
from fhir_facade.store.sql_store import SqlStore


def local_actor() -> Actor:
    """The operating-system user running the command (no token on a CLI)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(issuer="urn:cdss:os-user", subject=user)


def record_now(database_url: str, event: Event, actor: Actor | None = None) -> None:
    store = SqlStore(database_url)
    try:
        with store.unit() as unit:
            unit.create(build_event(event, actor or local_actor()), id=str(uuid.uuid4()))
    finally:
        store.close()
