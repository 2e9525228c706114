"""The audit recorder: batches written by the writer process (one per server process, shared by
its apps), through the store (so validated), and in this process when that process fails."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest

from cds_hooks import recorder as rec
from cds_hooks.audit import audit_event
from cds_hooks.auth import ClientIdentity
from cds_hooks.feedback import FeedbackStore
from cds_hooks.recorder import Record, Recorder
from fhir_facade.search.query import parse_search
from fhir_facade.store.sql_store import SqlStore

CLIENT = ClientIdentity(iss="https://ehr.example.org/", sub="ehr", jti="j-1")


def _event(instance: str, status: int = 200) -> dict[str, Any]:
    return audit_event(
        event="cds-service-call",
        action="E",
        status=status,
        client=CLIENT,
        service_id="imaging-order-safety",
        hook="order-sign",
        hook_instance=instance,
        patient_id="p1",
        user_id="Practitioner/u1",
        details=[("status", str(status))],
    )


def _card_row(uuid: str) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "service_id": "imaging-order-safety",
        "hook": "order-sign",
        "hook_instance": "h",
        "kind": "contrast-allergy",
        "indicator": "critical",
        "patient_id": "p1",
        "order_ref": "ServiceRequest/d1",
        "iss": CLIENT.iss,
        "suggestions": "[]",
        "issued_us": 1,
    }


def _instances(store: SqlStore) -> list[str]:
    with store.read_unit() as unit:
        page = unit.search(parse_search("AuditEvent", [("_count", "100")]))
    events = [orjson.loads(m.content) for m in page.matches if m.content]
    return sorted(e["entity"][0]["what"]["identifier"]["value"] for e in events)


@pytest.fixture
def stores(database_url: str) -> Any:
    store, feedback = SqlStore(database_url), FeedbackStore(database_url)
    yield database_url, store, feedback
    store.close()
    feedback.close()


def test_the_writer_process_writes_validated_events_and_cards(stores: Any) -> None:
    url, store, feedback = stores
    recorder = Recorder(store, feedback, database_url=url)
    try:
        for i in range(20):
            recorder.submit(Record(_event(f"h-{i:02d}"), [_card_row(f"c-{i}")]))
        recorder.flush()
        assert not recorder.pending()
        assert isinstance(recorder.writer, rec.ProcessWriter) and not recorder.writer._broken
        assert _instances(store) == [f"h-{i:02d}" for i in range(20)]
        assert set(feedback.suggestions_of([f"c-{i}" for i in range(20)])) == {
            f"c-{i}" for i in range(20)
        }
    finally:
        recorder.close()


def test_one_writer_process_serves_every_app_and_outlives_each(stores: Any, tmp_path: Path) -> None:
    url, store, feedback = stores
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    other_store, other_feedback = SqlStore(other_url), FeedbackStore(other_url)
    first = Recorder(store, feedback, database_url=url)
    second = Recorder(other_store, other_feedback, database_url=other_url)
    try:
        first.submit(Record(_event("first")))
        second.submit(Record(_event("second")))
        first.flush()
        second.flush()
        assert first.writer._child is second.writer._child is rec._SHARED  # type: ignore[attr-defined]
        first.close()  # the child forgets that database, and goes on serving the other
        second.submit(Record(_event("second-again")))
        second.flush()
        assert _instances(store) == ["first"]
        assert _instances(other_store) == ["second", "second-again"]
    finally:
        second.close()
        other_store.close()
        other_feedback.close()


def test_an_invalid_event_costs_only_itself_its_record(
    stores: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url, store, feedback = stores
    bad = _event("bad")
    bad["recorded"] = "yesterday"  # not an instant: the store refuses it
    recorder = Recorder(store, feedback, database_url=url)
    try:
        with caplog.at_level(logging.ERROR):
            for event in (_event("a"), bad, _event("b")):
                recorder.submit(Record(event))
            recorder.flush()
        assert _instances(store) == ["a", "b"]
        assert any("could not write an AuditEvent" in r.getMessage() for r in caplog.records)
    finally:
        recorder.close()


def test_a_writer_that_cannot_start_leaves_the_writing_to_this_process(
    stores: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url, store, feedback = stores

    def cannot_start() -> Any:
        raise OSError("no processes here")

    monkeypatch.setattr(rec, "_writer_process", cannot_start)
    recorder = Recorder(store, feedback, database_url=url)
    try:
        with caplog.at_level(logging.ERROR):
            recorder.submit(Record(_event("local")))
            recorder.flush()
        assert _instances(store) == ["local"]
        assert any("writing in the server process" in r.getMessage() for r in caplog.records)
    finally:
        recorder.close()


def test_a_writer_that_died_between_batches_is_started_again(stores: Any) -> None:
    url, store, feedback = stores
    recorder = Recorder(store, feedback, database_url=url)
    try:
        recorder.submit(Record(_event("before")))
        recorder.flush()
        dead = rec._writer_process()
        dead._proc.kill()
        dead._proc.wait()
        recorder.submit(Record(_event("after")))
        recorder.flush()
        assert _instances(store) == ["after", "before"]
        assert rec._writer_process() is not dead and not recorder.writer._broken  # type: ignore[attr-defined]
    finally:
        recorder.close()


def test_a_writer_lost_during_a_batch_leaves_the_writing_to_this_process(
    stores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, store, feedback = stores
    recorder = Recorder(store, feedback, database_url=url)

    def lost(self: Any, document: Any) -> Any:
        raise EOFError("the audit writer process exited (-9)")

    try:
        monkeypatch.setattr(rec._WriterProcess, "request", lost)
        recorder.submit(Record(_event("during")))
        recorder.flush()
        recorder.submit(Record(_event("later")))
        recorder.flush()
        assert _instances(store) == ["during", "later"]
        assert recorder.writer._broken  # type: ignore[attr-defined]
    finally:
        recorder.close()


def test_the_thread_writer_needs_no_process(stores: Any) -> None:
    _url, store, feedback = stores
    recorder = Recorder(store, feedback)
    try:
        recorder.submit(Record(_event("thread")))
        recorder.flush()
        assert isinstance(recorder.writer, rec.LocalWriter)
        assert _instances(store) == ["thread"]
    finally:
        recorder.close()
