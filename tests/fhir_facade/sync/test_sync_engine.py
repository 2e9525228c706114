"""The sync engine on both store backends, with a scripted source system.

The scripted source stands in for an external system's adapter (the adapters have their own
tests against the simulators and the real Orthanc); here the subject is the engine: atomic
batches with their cursor, idempotent upserts, identity linking, provenance, failures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from adapters.base import LINK_TAG_SYSTEM, MRN_SYSTEM, Batch, Rejected, mrn_reference, source_id
from fhir_facade.search.query import parse_search
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.sync import linker
from fhir_facade.sync.engine import cursor_key, sync_source
from fhir_facade.sync.runner import Runner


class ScriptedSource:
    """Yields the batches it is given after the cursor; can fail after N batches."""

    def __init__(self, name: str, batches: list[Batch], fail_after: int | None = None) -> None:
        self.name, self.base_url = name, f"http://{name}.test"
        self.batches, self.fail_after = batches, fail_after
        self.seen_cursors: list[str | None] = []

    def pull(self, cursor: str | None, *, batch_size: int = 200) -> Iterator[Batch]:
        self.seen_cursors.append(cursor)
        start = 0 if cursor is None else int(cursor)
        for n, batch in enumerate(self.batches[start:]):
            if self.fail_after is not None and n >= self.fail_after:
                raise ConnectionError(f"{self.name} went away")
            yield batch


def patient(mrn: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": source_id("emr", "Patient", mrn),
        "identifier": [{"system": MRN_SYSTEM, "value": mrn}],
        "name": [{"family": mrn}],
    }


def result(mrn: str, n: int, value: float = 1.0) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": source_id("lis", "Observation", f"{mrn}-{n}"),
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "subject": mrn_reference(mrn),
        "valueQuantity": {"value": value, "unit": "mg/dL"},
    }


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    s = SqlStore(database_url)
    yield s
    s.close()


def search(store: SqlStore, rtype: str, *pairs: tuple[str, str]) -> list[dict[str, Any]]:
    with store.unit() as u:
        q = parse_search(rtype, list(pairs))
        q.count = 1000
        return [orjson.loads(m.content or b"") for m in u.search(q).matches]


def test_batches_upsert_idempotently_and_persist_the_cursor(store: SqlStore) -> None:
    batches = [
        Batch([patient("A"), patient("B")], cursor="1"),
        Batch([result("A", 1), result("B", 1)], cursor="2"),
    ]
    first = sync_source(store, ScriptedSource("emr", batches))
    assert first.counts["Patient"].created == 2 and first.counts["Observation"].created == 2
    again = ScriptedSource("emr", batches)
    second = sync_source(store, again)
    assert again.seen_cursors == ["2"] and second.stored == 0
    replay = sync_source(store, ScriptedSource("emr2", batches))  # same records, new cursor
    assert replay.counts["Patient"].unchanged == 0  # other source tag → a real change
    with store.unit() as u:
        assert u.get_state(cursor_key("emr")) == "2"
        assert u.read("Patient", patient("A")["id"]).version_id == 2


def test_redelivered_records_make_no_new_versions(store: SqlStore) -> None:
    batch = [Batch([patient("A"), result("A", 1)], cursor=None)]
    sync_source(store, ScriptedSource("emr", batch))
    report = sync_source(store, ScriptedSource("emr", batch))
    assert report.counts["Patient"].unchanged == 1 and report.counts["Observation"].unchanged == 1
    obs = search(store, "Observation")
    assert len(obs) == 1 and obs[0]["meta"]["versionId"] == "1"


def test_mrn_references_link_to_the_patient(store: SqlStore) -> None:
    sync_source(store, ScriptedSource("emr", [Batch([patient("A")], cursor="1")]))
    sync_source(store, ScriptedSource("lis", [Batch([result("A", 1)], cursor="1")]))
    (obs,) = search(store, "Observation", ("patient", patient("A")["id"]))
    assert obs["subject"]["reference"] == f"Patient/{patient('A')['id']}"
    assert obs["subject"]["identifier"] == {"system": MRN_SYSTEM, "value": "A"}
    assert obs["meta"]["source"] == "http://lis.test"
    assert {"system": "urn:cdss:source", "code": "lis"} in obs["meta"]["tag"]


def test_unlinked_records_are_kept_and_linked_when_the_patient_arrives(store: SqlStore) -> None:
    report = sync_source(store, ScriptedSource("lis", [Batch([result("Z", 1)], cursor="1")]))
    assert report.unlinked and "MRN Z" in report.unlinked[0]
    (obs,) = search(store, "Observation", ("_tag", f"{LINK_TAG_SYSTEM}|unlinked"))
    assert "reference" not in obs["subject"]
    sync_source(store, ScriptedSource("emr", [Batch([patient("Z")], cursor="1")]))
    assert search(store, "Observation", ("_tag", f"{LINK_TAG_SYSTEM}|unlinked")) == []
    assert len(search(store, "Observation", ("patient", patient("Z")["id"]))) == 1


def test_an_mrn_is_searched_once_per_run_and_again_after_a_patient_changes(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_source(store, ScriptedSource("emr", [Batch([patient("A")], cursor="1")]))
    searched: list[str] = []

    def counting(rtype: str, pairs: list[tuple[str, str]]) -> Any:
        searched.extend(value for name, value in pairs if name == "identifier")
        return parse_search(rtype, pairs)

    monkeypatch.setattr(linker, "parse_search", counting)
    moved = {**patient("A"), "identifier": [{"system": MRN_SYSTEM, "value": "A2"}]}
    batches = [
        Batch([result("A", 1)], cursor="1"),
        Batch([result("A", 2)], cursor="2"),  # resolved from the run's cache: no search
        Batch([moved], cursor="3"),  # the patient's MRN changes: the cache is dropped
        Batch([result("A", 3)], cursor="4"),  # searched again, and no patient has MRN A now
    ]
    report = sync_source(store, ScriptedSource("lis", batches))
    assert searched == [f"{MRN_SYSTEM}|A"] * 3  # batch 1, batch 4, the final relink
    assert len(report.unlinked) == 1 and "MRN A" in report.unlinked[0]
    linked = search(store, "Observation", ("patient", patient("A")["id"]))
    assert len(linked) == 2


def test_a_failure_mid_run_keeps_whole_batches_and_resumes(store: SqlStore) -> None:
    batches = [Batch([patient(f"P{i}")], cursor=str(i + 1)) for i in range(3)]
    with pytest.raises(ConnectionError):
        sync_source(store, ScriptedSource("emr", batches, fail_after=2))
    assert len(search(store, "Patient")) == 2
    resumed = ScriptedSource("emr", batches)
    report = sync_source(store, resumed)
    assert resumed.seen_cursors == ["2"] and report.counts["Patient"].created == 1
    assert len(search(store, "Patient")) == 3


def test_invalid_and_unmappable_records_are_reported_not_dropped(store: SqlStore) -> None:
    bad = {"resourceType": "Patient", "id": "bad-1", "birthDate": "yesterday"}
    batch = Batch([patient("A"), bad], [Rejected("AnalysisRequest/X-1", "no MRN")], cursor="1")
    report = sync_source(store, ScriptedSource("emr", [batch]))
    assert report.counts["Patient"].created == 1 and report.counts["Patient"].rejected == 1
    assert report.counts["AnalysisRequest"].rejected == 1
    assert {r.source_ref for r in report.rejected} == {"Patient/bad-1", "AnalysisRequest/X-1"}
    with store.unit() as u:
        saved = orjson.loads(u.get_state("sync:emr:last_report") or "{}")
    assert len(saved["rejected"]) == 2


def test_each_batch_gets_a_provenance_naming_what_changed(store: SqlStore) -> None:
    sync_source(store, ScriptedSource("emr", [Batch([patient("A"), patient("B")], cursor="7")]))
    (prov,) = search(store, "Provenance")
    assert sorted(t["reference"] for t in prov["target"]) == sorted(
        f"Patient/{patient(m)['id']}" for m in "AB"
    )
    assert prov["entity"][0]["what"]["identifier"]["value"] == "7"
    sync_source(store, ScriptedSource("emr", [Batch([patient("A")], cursor="8")]))
    assert len(search(store, "Provenance")) == 1  # nothing changed: no new provenance


def test_the_runner_isolates_a_failing_source_and_opens_its_circuit(store: SqlStore) -> None:
    down = ScriptedSource("pacs", [Batch([patient("X")], cursor="1")], fail_after=0)
    up = ScriptedSource("emr", [Batch([patient("A")], cursor="1")])
    runner = Runner(store, [down, up], fail_max=2, reset_timeout=60)
    for _ in range(4):
        runner.run_once()
    assert len(down.seen_cursors) == 2  # then the breaker stops calling it
    assert runner.failures["pacs"] == "open"
    assert len(search(store, "Patient")) == 1


def test_a_batch_resolves_its_mrns_with_one_search_before_writing(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    dup = {**patient("D"), "id": source_id("emr", "Patient", "D-again")}
    odd = {**patient("x,y|z"), "id": source_id("emr", "Patient", "odd")}
    sync_source(store, ScriptedSource("emr", [Batch([patient(m) for m in "ABC"] + [dup, odd,
                patient("D")], cursor="1")]))  # fmt: skip
    searched: list[str] = []

    def counting(rtype: str, pairs: list[tuple[str, str]]) -> Any:
        searched.extend(value for name, value in pairs if name == "identifier")
        return parse_search(rtype, pairs)

    monkeypatch.setattr(linker, "parse_search", counting)
    results = [result(m, n) for n in range(3) for m in ("A", "B", "C", "D", "x,y|z", "Q")]
    report = sync_source(store, ScriptedSource("lis", [Batch(results, cursor="1")]))
    # one OR search for the whole batch (D: two patients share it, not linked; Q: unknown);
    # then only the final relink of the unlinked ones searches again
    assert searched[0].count(MRN_SYSTEM) == 6
    assert searched[1:] == [f"{MRN_SYSTEM}|D", f"{MRN_SYSTEM}|Q"]
    for mrn in ("A", "B", "C", "x,y|z"):
        pid = source_id("emr", "Patient", "odd" if mrn == "x,y|z" else mrn)
        assert len(search(store, "Observation", ("patient", pid))) == 3
    assert sorted(u.split(" (MRN ")[1] for u in report.unlinked) == ["D)"] * 3 + ["Q)"] * 3
