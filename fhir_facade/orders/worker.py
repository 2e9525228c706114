"""The routing worker: delivers queued orders, cancels revoked ones, and brings status back.

Each step calls the target system outside any database transaction (a slow LIS never holds the
store's write lock), then records the outcome in one unit: outbox row and ServiceRequest change
together. A target that is down leaves the row due again after an exponential backoff. The same
code runs as a thread inside the app (`start`) and as `cdss orders run`; run one worker per store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from adapters.senaite.client import SenaiteError
from adapters.senaite.terminology import CLIENT_SAMPLE_ID_SYSTEM, SAMPLE_ID_SYSTEM
from fhir_facade import errors
from fhir_facade.orders import outbox, worklist
from fhir_facade.orders.config import OrderSettings
from fhir_facade.orders.intake import ACCESSION_SYSTEM, ACCESSION_TYPE, connection
from fhir_facade.orders.lab import LabRouter, NotReady, Permanent, make_client, order_status
from fhir_facade.orders.reports import ReportExporter
from fhir_facade.search.query import parse_search
from fhir_facade.store.base import Store, Unit

log = logging.getLogger(__name__)


Record = Callable[[Unit, "Tally"], None]


@dataclass(slots=True)
class Tally:
    routed: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    refused: int = 0
    completed: int = 0
    exported: int = 0  # DiagnosticReports sent to OpenEMR as documents
    errors: list[str] = field(default_factory=list)


class Worker:
    def __init__(self, store: Store, settings: OrderSettings, lab: LabRouter | None = None) -> None:
        self.store = store
        self.settings = settings
        self._lab = lab
        self._reports: ReportExporter | None = None
        self._next_poll = 0.0

    @property
    def lab(self) -> LabRouter:
        if self._lab is None:
            self._lab = LabRouter(make_client(self.settings), self.settings)
        return self._lab

    def close(self) -> None:
        if self._lab is not None:
            self._lab.client.close()
        if self._reports is not None:
            self._reports.close()

    @property
    def folder(self) -> Path:
        if self.settings.orders_worklists_dir is None:
            raise NotReady("CDSS_ORDERS_WORKLISTS_DIR is not set: imaging orders cannot be routed")
        return self.settings.orders_worklists_dir

    def run_once(self) -> Tally:
        """One round: deliver what is due (external calls in parallel, outside any transaction;
        then every outcome recorded in one unit), poll status when due, export reports."""
        tally = Tally()
        with self.store.read_unit() as unit:  # no write lock while there is nothing to do
            due = outbox.due(connection(unit), self.settings.orders_batch)
        if due:
            with ThreadPoolExecutor(self.settings.orders_concurrency) as pool:
                records = list(pool.map(self._step, due))
            try:
                with self.store.unit() as unit:
                    for record in records:
                        record(unit, tally)
            except errors.OperationOutcomeError as exc:  # e.g. an order edited meanwhile
                log.warning("order outcomes not recorded (%s); redelivered next round", exc)
                tally.errors.append(str(exc))
        if time.monotonic() >= self._next_poll:
            self._next_poll = time.monotonic() + self.settings.orders_status_poll_s
            self.poll(tally)
        if self.settings.reports_export and self.settings.openemr_url:
            self._reports = self._reports or ReportExporter(self.store, self.settings)
            tally.exported = self._reports.run_once()
        return tally

    def _step(self, row: outbox.Row) -> Record:
        """The external work for one row; returns how to record its outcome."""
        try:
            return self._route(row) if row.state == "queued" else self._cancel(row)
        except Permanent as exc:
            log.error("order %s cannot be routed: %s", row.order_id, exc)
            reason = str(exc)

            def failed(unit: Unit, tally: Tally) -> None:
                outbox.set_state(connection(unit), row.order_id, "failed", last_error=reason)
                tally.failed += 1

            return failed
        except (SenaiteError, OSError, NotReady) as exc:
            error = str(exc)

            def later(unit: Unit, tally: Tally) -> None:
                s = self.settings
                delay = outbox.retry_later(
                    connection(unit), row, error, s.orders_retry_base_s, s.orders_retry_max_s
                )
                log.warning("order %s: %s; retry in %.1f s", row.order_id, error, delay)
                tally.retried += 1
                tally.errors.append(error)

            return later

    def _route(self, row: outbox.Row) -> Record:
        payload = orjson.loads(row.payload)
        ident: dict[str, Any]
        if row.target == "lab":
            sample = self.lab.route(row.key, payload)
            ident = {"system": SAMPLE_ID_SYSTEM, "value": sample.id}
            ext_id, ext_uid = sample.id, sample.uid
        else:
            path = worklist.write(
                self.folder, row.order_id, row.key, payload, self.settings.orders_station_aet
            )
            ident = {"type": ACCESSION_TYPE, "system": ACCESSION_SYSTEM, "value": row.key}
            ext_id, ext_uid = path.name, None

        def routed(unit: Unit, tally: Tally) -> None:
            conn = connection(unit)
            current = outbox.get(conn, row.order_id)
            if current is None or current.state != "queued":  # revoked while we routed it
                state: outbox.State = "cancelling"
            else:
                state = "routed"
                _change(unit, row.order_id, lambda sr: _add_identifier(sr, ident))
            outbox.set_state(
                conn,
                row.order_id,
                state,
                external_id=ext_id,
                external_uid=ext_uid,
                last_error=None,
                next_at=outbox.now_us(),
            )
            tally.routed += 1

        return routed

    def _cancel(self, row: outbox.Row) -> Record:
        if row.target == "lab":
            why = self.lab.cancel(row.external_uid) if row.external_uid else None
        elif self._study_for(row.key) is not None:
            why = "the study has already been acquired"
        else:
            worklist.remove(self.folder, row.key)
            why = None
        log.info("order %s cancel downstream: %s", row.order_id, why or "done")

        def cancelled(unit: Unit, tally: Tally) -> None:
            if why is None:
                outbox.set_state(connection(unit), row.order_id, "cancelled", last_error=None)
                tally.cancelled += 1
            else:
                outbox.set_state(connection(unit), row.order_id, "cancel-refused", last_error=why)
                tally.refused += 1

        return cancelled

    def _study_for(self, accession: str) -> dict[str, Any] | None:
        with self.store.read_unit() as unit:
            query = parse_search("ImagingStudy", [("identifier", accession)])
            query.count, query.total = 1, "none"
            found = unit.search(query).matches
        content = found[0].content if found else None
        return orjson.loads(content) if content else None

    def poll(self, tally: Tally) -> None:
        """Status back: sample end states from SENAITE, study arrival from the synced studies."""
        with self.store.read_unit() as unit:
            routed = outbox.in_state(connection(unit), "routed")
        for row in routed:
            try:
                self._poll_one(row, tally)
            except (Permanent, errors.OperationOutcomeError) as exc:
                tally.errors.append(str(exc))
                log.error("order %s: %s", row.order_id, exc)
            except (SenaiteError, OSError, NotReady) as exc:
                tally.errors.append(str(exc))
                log.warning("order %s: status not available: %s", row.order_id, exc)
                return  # the target is down; try again on the next round

    def _poll_one(self, row: outbox.Row, tally: Tally) -> None:
        status: str | None = None
        study: dict[str, Any] | None = None
        if row.target == "lab" and row.external_uid:
            status = order_status(self.lab.state(row.external_uid))
        elif row.target == "imaging":
            study = self._study_for(row.key)
            status = "completed" if study is not None else None
        if status is None:
            return
        with self.store.unit() as unit:
            _change(unit, row.order_id, lambda sr: sr.__setitem__("status", status))
            if study is not None:
                _link_study(unit, study, row.order_id)
            if row.target == "lab":
                _link_results(unit, row.order_id)
            outbox.set_state(connection(unit), row.order_id, "closed")
        tally.completed += 1


def _add_identifier(sr: dict[str, Any], ident: dict[str, Any]) -> None:
    idents = sr.setdefault("identifier", [])
    if not any(i.get("system") == ident["system"] for i in idents):
        idents.append(ident)


def _change(unit: Unit, order_id: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """A new version of the order; nothing when it has been deleted meanwhile."""
    try:
        stored = unit.read("ServiceRequest", order_id)
    except errors.OperationOutcomeError:
        return
    sr: dict[str, Any] = orjson.loads(stored.content or b"{}")
    edit(sr)
    unit.update(sr, if_match=stored.version_id)  # never over a concurrent client's edit


def _link_study(unit: Unit, study: dict[str, Any], order_id: str) -> None:
    ref = {"reference": f"ServiceRequest/{order_id}"}
    if ref not in study.get("basedOn", []):
        study.setdefault("basedOn", []).append(ref)
        unit.update(study)


def _link_results(unit: Unit, order_id: str) -> None:
    """Point the synced results of the order's sample at the order too (`basedOn`).

    The sync maps a sample to its own ServiceRequest, which carries the ClientSampleID (= this
    order's id) as an identifier; its Observations and DiagnosticReport gain this order as a
    second `basedOn`. Done when the order closes; a later re-sync of a corrected result drops
    the extra reference (a sync-side link would keep it; not done here).
    """
    query = parse_search(
        "ServiceRequest", [("identifier", f"{CLIENT_SAMPLE_ID_SYSTEM}|{order_id}")]
    )
    ref = {"reference": f"ServiceRequest/{order_id}"}
    for synced in unit.search(query).matches:
        for rtype in ("Observation", "DiagnosticReport"):
            pairs = [("based-on", f"ServiceRequest/{synced.id}"), ("_count", "500")]
            for match in unit.search(parse_search(rtype, pairs)).matches:
                result: dict[str, Any] = orjson.loads(match.content or b"{}")
                if ref not in result.get("basedOn", []):
                    result.setdefault("basedOn", []).append(ref)
                    unit.update(result)


def start(store: Store, settings: OrderSettings, stop: threading.Event) -> threading.Thread:
    """The worker as a daemon thread of this process, until `stop` is set."""

    def loop() -> None:
        worker = Worker(store, settings)
        try:
            while not stop.is_set():
                try:
                    worker.run_once()
                except Exception:  # a bug must not kill the thread and strand the queue
                    log.exception("order worker round failed")
                stop.wait(settings.orders_poll_s)
        finally:
            worker.close()

    thread = threading.Thread(target=loop, name="cdss-orders", daemon=True)
    thread.start()
    return thread
