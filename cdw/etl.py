"""Incremental ETL: the facade's `resources` table -> the OMOP CDW.

Reads per resource type by a (`last_updated`, pk) keyset from a watermark kept in the CDW,
in batches (constant memory), and for each source resource deletes the rows it produced
before (`cdw_source_row`) and inserts its new rows, in the same transaction as the new
watermark: a crash loses nothing and a re-run changes nothing. Each run re-reads a short
overlap before the watermark, because a facade transaction may commit after a later one
with an earlier `last_updated`; re-processing is idempotent, so the overlap is free.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    delete,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
)

from cdw import schema_ext
from cdw.mapping import Mapper
from cdw.migrations import upgrade
from cdw.observation_period import rebuild_observation_periods
from cdw.pseudonym import Pseudonymizer
from cdw.schema import metadata
from cdw.vocab import Mapped, Vocabulary, ensure_shipped
from fhir_facade.store.engine import make_engine
from fhir_facade.store.tables import resources

log = logging.getLogger(__name__)
TYPES = (
    "Patient", "Encounter", "Condition", "MedicationRequest", "ImagingStudy", "Observation",
    "ServiceRequest", "Procedure", "Specimen",
)  # fmt: skip
"""ImagingStudy before Observation: AI findings link to the study's image_occurrence rows."""
OVERLAP_US = 5_000_000
STATE_KEY = "watermark"
Progress = Callable[[int, int], None]


class EtlError(RuntimeError):
    """The ETL cannot start (no facade store at the configured URL)."""


@dataclass
class RunSummary:
    resources: int = 0
    deleted: int = 0
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unmapped: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(facade `Type/id`, message): for the operator's console only, never stored in the CDW."""


def _sqlite_cache(dbapi_conn: Any, _record: Any) -> None:
    # Row ids are keyed hashes, so inserts land at random places in every primary-key B-tree;
    # SQLite's default 2 MB page cache then thrashes as the CDW grows. 128 MB is a fixed bound.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA cache_size=-131072")
    cursor.close()


def cdw_engine(url: str) -> Engine:
    """An engine for the CDW: the store's engine settings, plus a larger SQLite page cache."""
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_cache)
    return engine


def _pk_column(table_name: str) -> str:
    return next(iter(metadata.tables[table_name].primary_key.columns)).name


def data_tables() -> list[str]:
    return [t for t in metadata.tables if not t.startswith("cdw_") and t not in _VOCAB]


_VOCAB = {"concept", "concept_relationship", "cdm_source"}


class _CdwImages:
    """`ImageIndex` over the CDW being written (the person_id index narrows it to a few rows)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def series(self, person_id: int, procedure_id: int, series_uid: str) -> int | None:
        io = schema_ext.image_occurrence.c
        found = self.conn.execute(
            select(io.image_occurrence_id).where(
                io.person_id == person_id,
                io.procedure_occurrence_id == procedure_id,
                io.image_series_uid == series_uid,
            )
        ).scalar()
        return int(found) if found is not None else None


class Etl:
    def __init__(
        self,
        source_url: str,
        cdw_url: str,
        pz: Pseudonymizer,
        *,
        batch_size: int = 500,
        birth_precision: Literal["year", "month"] = "year",
        overlap_us: int = OVERLAP_US,
        commit_every: int = 5_000,
    ) -> None:
        self.source: Engine = make_engine(source_url)
        self.cdw: Engine = cdw_engine(cdw_url)
        self.pz = pz
        self.batch_size = batch_size
        self.overlap_us = overlap_us
        # Batches bound memory; commits are fewer: each commit writes every page the batch
        # touched, and with keyed-hash row ids a small batch touches as many pages as rows
        # once the CDW's B-trees outgrow it, so per-batch commits made time per patient grow.
        self.commit_every = commit_every
        self._concepts: dict[tuple[str, str], Mapped] = {}  # lookups, cached for one run
        self.birth_precision: Literal["year", "month"] = birth_precision
        upgrade(self.cdw)
        with self.cdw.begin() as conn:
            ensure_shipped(conn)

    def close(self) -> None:
        self.source.dispose()
        self.cdw.dispose()

    def watermarks(self, conn: Connection) -> dict[str, list[int]]:
        raw = conn.execute(
            select(schema_ext.cdw_state.c.value).where(schema_ext.cdw_state.c.key == STATE_KEY)
        ).scalar()
        return dict(orjson.loads(raw)) if raw else {}

    def _save(self, conn: Connection, key: str, value: Any) -> None:
        state = schema_ext.cdw_state
        conn.execute(delete(state).where(state.c.key == key))
        conn.execute(insert(state).values(key=key, value=orjson.dumps(value).decode()))

    def reset(self) -> None:
        """Empty every data and bookkeeping table (for `--full`); vocabulary stays."""
        with self.cdw.begin() as conn:
            for name in [*data_tables(), "cdw_source_row", "cdw_unmapped", "cdw_state"]:
                conn.execute(delete(metadata.tables[name]))

    def _pending(self, start: dict[str, list[int]]) -> int:
        if not inspect(self.source).has_table("resources"):
            raise EtlError(f"no FHIR facade store at {self.source.url!r} (run `cdss sync` first)")
        with self.source.connect() as conn:
            return sum(
                conn.execute(
                    select(func.count()).select_from(resources).where(self._after(t, start))
                ).scalar_one()
                for t in TYPES
            )

    def _after(self, res_type: str, start: dict[str, list[int]]) -> Any:
        lu, pk = start.get(res_type, [0, 0])
        c = resources.c
        return and_(
            c.res_type == res_type,
            or_(c.last_updated > lu, and_(c.last_updated == lu, c.pk > pk)),
        )

    def _batches(self, res_type: str, start: dict[str, list[int]]) -> Iterator[list[Any]]:
        position = dict(start)
        c = resources.c
        while True:
            with self.source.connect() as conn:
                batch = list(
                    conn.execute(
                        select(c.pk, c.res_id, c.last_updated, c.deleted, c.content)
                        .where(self._after(res_type, position))
                        .order_by(c.last_updated, c.pk)
                        .limit(self.batch_size)
                    )
                )
            if not batch:
                return
            yield batch
            position[res_type] = [batch[-1].last_updated, batch[-1].pk]

    def run(
        self, *, full: bool = False, since: int | None = None, progress: Progress | None = None
    ) -> RunSummary:
        """One incremental pass; `since` (µs) re-reads from that instant, `full` from scratch."""
        if full:
            self.reset()
        with self.cdw.connect() as conn:
            marks = self.watermarks(conn)
        if since is not None:
            start = {t: [since - 1, 1 << 62] for t in TYPES}
        else:
            start = {
                t: [v[0] - self.overlap_us, 0] if self.overlap_us else list(v)
                for t, v in marks.items()
            }
        total, done, summary = self._pending(start), 0, RunSummary()
        self._concepts = {}
        with self.cdw.connect() as conn:
            tx, uncommitted = conn.begin(), 0
            for res_type in TYPES:
                for batch in self._batches(res_type, start):
                    self._apply(conn, res_type, batch, summary)
                    last = batch[-1]
                    marks[res_type] = max(marks.get(res_type, [0, 0]), [last.last_updated, last.pk])
                    self._save(conn, STATE_KEY, marks)
                    done, uncommitted = done + len(batch), uncommitted + len(batch)
                    if uncommitted >= self.commit_every:
                        tx.commit()
                        tx, uncommitted = conn.begin(), 0
                    if progress:
                        progress(done, total)
            tx.commit()  # an exception before this rolls back to the last commit's watermark
        with self.cdw.begin() as conn:
            rebuild_observation_periods(conn)
            self._save(conn, "last_run", {
                "resources": summary.resources, "deleted": summary.deleted,
                "rows": dict(summary.rows), "unmapped": summary.unmapped,
                "errors": [self.pz.source_key(*k.split("/", 1)) for k, _ in summary.errors],
            })  # fmt: skip
        return summary

    def _apply(self, conn: Connection, res_type: str, batch: list[Any], s: RunSummary) -> None:
        mapper = Mapper(
            self.pz, Vocabulary(conn, self._concepts), self.birth_precision, _CdwImages(conn)
        )
        keys = [self.pz.source_key(res_type, b.res_id) for b in batch]
        self._forget(conn, keys)
        inserts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        sources: list[dict[str, Any]] = []
        unmapped: list[dict[str, Any]] = []
        for key, b in zip(keys, batch, strict=True):
            s.resources += 1
            if b.deleted or b.content is None:
                s.deleted += 1
                continue
            result = mapper.map(orjson.loads(b.content))
            if result.error:
                s.errors.append((f"{res_type}/{b.res_id}", result.error))
            for table, rows in result.rows.items():
                pk = _pk_column(table)
                inserts[table].extend(rows)
                sources.extend(
                    {"source_key": key, "table_name": table, "row_id": r[pk]} for r in rows
                )
                s.rows[table] += len(rows)
            unmapped.extend(
                {"source_key": key, "table_name": t, "vocabulary": v[:64], "code": c[:64]}
                for t, v, c in result.unmapped
            )
            s.unmapped += len(result.unmapped)
        for table, rows in inserts.items():
            conn.execute(insert(metadata.tables[table]), rows)
        if sources:
            conn.execute(insert(schema_ext.cdw_source_row), sources)
        if unmapped:
            conn.execute(insert(schema_ext.cdw_unmapped), unmapped)

    def _forget(self, conn: Connection, keys: list[str]) -> None:
        """Delete the rows these source resources produced last time (update or delete)."""
        src = schema_ext.cdw_source_row
        old: dict[str, list[int]] = defaultdict(list)
        for table, row_id in conn.execute(
            select(src.c.table_name, src.c.row_id).where(src.c.source_key.in_(keys))
        ):
            old[table].append(row_id)
        for table, ids in old.items():
            t = metadata.tables[table]
            conn.execute(delete(t).where(t.c[_pk_column(table)].in_(ids)))
        conn.execute(delete(src).where(src.c.source_key.in_(keys)))
        un = schema_ext.cdw_unmapped
        conn.execute(delete(un).where(un.c.source_key.in_(keys)))
