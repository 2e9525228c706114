"""The durable job queue of the imaging pipeline: one row per study, in the store's database.

Why a table: a study that reached the PACS must be analysed even if the process dies, and only
once. The sync enqueues in the same transaction that stores the ImagingStudy (and its cursor), so
a job exists exactly when the study does. A worker claims a row with one conditional UPDATE
(`status` still claimable, checked by the database), so two workers never both win it; the claim
is a lease: a worker that crashes leaves the row `running` with an expired lease, and the next
claim takes it over (attempts + 1). Results are written idempotently (ids derive from the study
and model version), so even a worker that lost its lease while finishing adds no duplicate.

States: queued -> running -> done | failed; running -> queued (a transient error, retried after
a backoff until `max_attempts`). `error` keeps the last failure's reason.

The sync calls `enqueue_imaging` for every stored ImagingStudy; it does nothing unless the
imaging pipeline is enabled (`CDSS_IMAGING_ENABLED`, or `install()` in a test). This module only
needs SQLAlchemy: the sync process never imports torch.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    Text,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from fhir_facade.store.tables import metadata

log = logging.getLogger(__name__)

Status = Literal["queued", "running", "done", "failed"]
KIND = "imaging-ai"
DICOM_UID_SYSTEM = "urn:dicom:uid"

# On the store's metadata, so schema comparisons (and autogenerate) see it with the rest.
jobs = Table(
    "ai_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(128), nullable=False, unique=True),  # StudyInstanceUID
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("payload", Text, nullable=False),  # JSON: study_uid, imaging_study
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", BigInteger, nullable=False),  # microseconds since the epoch
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    Column("result", Text, nullable=True),  # JSON: what the job wrote
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
)
c = jobs.c

_enabled: bool | None = None


def install(enabled: bool = True) -> None:
    """Switch enqueueing on or off for this process (tests; else CDSS_IMAGING_ENABLED)."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    if _enabled is None:
        return os.environ.get("CDSS_IMAGING_ENABLED", "").lower() in ("1", "true", "yes", "on")
    return _enabled


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    key: str
    status: Status
    payload: dict[str, Any]
    attempts: int
    error: str | None
    result: dict[str, Any] | None
    lease_owner: str | None


def _job(row: Any) -> Job:
    return Job(
        id=row.id,
        key=row.key,
        status=row.status,
        payload=orjson.loads(row.payload),
        attempts=row.attempts,
        error=row.error,
        result=orjson.loads(row.result) if row.result else None,
        lease_owner=row.lease_owner,
    )


# -- enqueueing ------------------------------------------------------------------------------


def enqueue(conn: Connection, key: str, payload: Mapping[str, Any]) -> bool:
    """Insert a queued job unless one exists for `key` (done, failed or pending): a study is
    analysed once. True when inserted. ON CONFLICT DO NOTHING keeps the caller's transaction
    alive on PostgreSQL, where a unique violation would abort it."""
    us = now_us()
    values = {
        "key": key,
        "kind": KIND,
        "status": "queued",
        "payload": orjson.dumps(dict(payload)).decode(),
        "attempts": 0,
        "next_at": us,
        "created": us,
        "updated": us,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(jobs).values(**values).on_conflict_do_nothing(index_elements=["key"])
    return bool(conn.execute(stmt).rowcount)


def study_uid_of(resource: Mapping[str, Any]) -> str | None:
    for ident in resource.get("identifier") or []:
        value = str(ident.get("value") or "")
        if ident.get("system") == DICOM_UID_SYSTEM and value:
            return value.removeprefix("urn:oid:")
    return None


def _is_ct(resource: Mapping[str, Any]) -> bool:
    codes = [m.get("code") for m in resource.get("modality") or []]
    codes += [(s.get("modality") or {}).get("code") for s in resource.get("series") or []]
    return "CT" in codes


def enqueue_imaging(unit: object, resource: Mapping[str, Any]) -> None:
    """The sync's seam: a stored CT ImagingStudy gets its analysis job, in the unit's own
    transaction (when enabled; a store without SQL connection cannot hold the queue)."""
    if not enabled() or resource.get("resourceType") != "ImagingStudy" or not _is_ct(resource):
        return
    uid = study_uid_of(resource)
    conn = getattr(unit, "conn", None)
    if uid is None or not isinstance(conn, Connection):
        return
    payload = {"study_uid": uid, "imaging_study": f"ImagingStudy/{resource.get('id')}"}
    if enqueue(conn, uid, payload):
        log.info("imaging AI job queued for study %s", uid)


# -- claiming and finishing --------------------------------------------------------------------


def _claimable(us: int) -> Any:
    return or_(
        and_(c.status == "queued", c.next_at <= us),
        and_(c.status == "running", c.lease_until < us),  # its worker died or hung
    )


def claim(engine: Engine, owner: str, lease_s: float, max_attempts: int) -> Job | None:
    """Take the next due job for `lease_s` seconds, or None. A job whose lease ran out after
    `max_attempts` claims is failed instead of being run again."""
    for _ in range(5):  # lost races: another worker took the candidate first
        us = now_us()
        with engine.begin() as conn:
            row = conn.execute(
                select(c.id, c.attempts, c.status)
                .where(_claimable(us))
                .order_by(c.next_at, c.id)
                .limit(1)
            ).first()
            if row is None:
                return None
            if row.status == "running" and row.attempts >= max_attempts:
                conn.execute(
                    update(jobs)
                    .where(c.id == row.id, _claimable(us))
                    .values(
                        status="failed",
                        error=f"worker lost {row.attempts} times (crash or timeout); given up",
                        lease_owner=None,
                        updated=us,
                    )
                )
                continue
            won = conn.execute(
                update(jobs)
                .where(c.id == row.id, _claimable(us))
                .values(
                    status="running",
                    attempts=c.attempts + 1,
                    lease_owner=owner,
                    lease_until=us + int(lease_s * 1e6),
                    updated=us,
                )
            ).rowcount
            if won == 1:
                found = conn.execute(select(jobs).where(c.id == row.id)).one()
                return _job(found)
    return None


def _finish(engine: Engine, job: Job, owner: str, **values: Any) -> bool:
    with engine.begin() as conn:
        n = conn.execute(
            update(jobs)
            .where(c.id == job.id, c.status == "running", c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None, updated=now_us(), **values)
        ).rowcount
    if n != 1:
        log.warning(
            "job %d (%s): lease lost before it finished; outcome not recorded", job.id, job.key
        )
    return n == 1


def complete(engine: Engine, job: Job, owner: str, result: Mapping[str, Any]) -> bool:
    return _finish(
        engine, job, owner, status="done", error=None, result=orjson.dumps(dict(result)).decode()
    )


def fail(engine: Engine, job: Job, owner: str, error: str) -> bool:
    """A permanent failure: the input cannot be analysed (the reason says why)."""
    return _finish(engine, job, owner, status="failed", error=error[:4000])


def retry_later(
    engine: Engine, job: Job, owner: str, error: str, *, max_attempts: int, base_s: float
) -> bool:
    """A transient failure: queued again after an exponential backoff, or failed at the end."""
    if job.attempts >= max_attempts:
        return fail(engine, job, owner, f"failed after {job.attempts} attempts: {error}")
    delay = base_s * 2 ** (job.attempts - 1)
    return _finish(
        engine, job, owner, status="queued", error=error[:4000], next_at=now_us() + int(delay * 1e6)
    )


# -- reading -----------------------------------------------------------------------------------


def get(engine: Engine, key: str) -> Job | None:
    with engine.connect() as conn:
        row = conn.execute(select(jobs).where(c.key == key)).first()
    return _job(row) if row is not None else None


def listing(engine: Engine, status: str | None = None, limit: int = 100) -> list[Job]:
    stmt = select(jobs).order_by(c.updated.desc()).limit(limit)
    if status:
        stmt = stmt.where(c.status == status)
    with engine.connect() as conn:
        return [_job(r) for r in conn.execute(stmt)]


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            str(s): int(n)
            for s, n in conn.execute(select(c.status, func.count()).group_by(c.status))
        }
