"""OrthancSource over a client that replays the captured Orthanc 1.10.1 answers: which changes
count, batching and cursors, restarts, rejects and failures, without a server.

The captured log has two StableStudy entries for one study (a second instance arrived after the
first became stable), so a pull maps that study once, from the later entry.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Any, cast

import pytest

from adapters.base import Batch
from adapters.orthanc.client import OrthancClient, OrthancNotFound, OrthancUnavailable
from adapters.orthanc.payloads import ChangesPage, OrthancStudy, tag, text
from adapters.orthanc.source import OrthancSource
from fhir_facade.fhir import validate

CAPTURED = Path(__file__).parent / "captured"
GOLDEN = Path(__file__).parent / "golden"
STUDY_ID = "b7fa5fb2-cb90bbc7-d135740c-27d81683-04fe2dc2"


def captured(name: str) -> Any:
    return json.loads((CAPTURED / name).read_text())


class ReplayClient:
    """The OrthancClient calls the source makes, answered from the captured payloads."""

    def __init__(self) -> None:
        self.log: list[dict[str, Any]] = captured("changes.json")["Changes"]
        self.study_json: dict[str, Any] = captured("study.json")
        self.qido_study: list[dict[str, Any]] = captured("qido-studies-includefield.json")
        self.calls: list[str] = []
        self.fail_on: str | None = None

    def _record(self, name: str) -> None:
        self.calls.append(name)
        if name == self.fail_on:
            raise OrthancUnavailable(f"Orthanc at http://replay: {name} failed after 4 attempts")

    def changes(self, since: int = 0, *, limit: int = 100) -> ChangesPage:
        self._record("changes")
        after = [c for c in self.log if c["Seq"] > since]
        page = after[:limit]
        last = page[-1]["Seq"] if page else (self.log[-1]["Seq"] if self.log else 0)
        return ChangesPage.from_json({"Changes": page, "Done": len(after) <= limit, "Last": last})

    def study(self, orthanc_id: str) -> OrthancStudy:
        self._record("study")
        if orthanc_id != self.study_json["ID"]:
            raise OrthancNotFound("Orthanc at http://replay: GET /studies/x: not found (404)")
        return OrthancStudy.from_json(self.study_json)

    def search_for_studies(self, **_: Any) -> list[dict[str, Any]]:
        self._record("qido-studies")
        return copy.deepcopy(self.qido_study)

    def search_for_series(self, study_uid: str, **_: Any) -> list[dict[str, Any]]:
        self._record("qido-series")
        return cast(list[dict[str, Any]], captured("qido-series.json"))

    def search_for_instances(self, study_uid: str, *_: Any, **__: Any) -> list[dict[str, Any]]:
        self._record("qido-instances")
        return cast(list[dict[str, Any]], captured("qido-instances.json"))

    def retrieve_instance_metadata(self, study: str, series: str, sop: str) -> dict[str, Any]:
        self._record("wado-metadata")
        found = [
            m for m in captured("wado-study-metadata.json") if text(m, "SOPInstanceUID") == sop
        ]
        return cast(dict[str, Any], found[0])


def source(client: ReplayClient, **kw: Any) -> OrthancSource:
    return OrthancSource(
        cast(OrthancClient, client),
        dicomweb_public_url="https://cdss.example.org/dicom-web",
        base_url="http://orthanc.internal:8042",
        **kw,
    )


def as_json(batches: list[Batch]) -> list[dict[str, Any]]:
    return [
        {
            "cursor": b.cursor,
            "resources": b.resources,
            "rejected": [[r.source_ref, r.reason] for r in b.rejected],
        }
        for b in batches
    ]


def test_full_pull_maps_the_study_once_from_its_last_stable_study() -> None:
    client = ReplayClient()
    batches = list(source(client).pull(None))
    path = GOLDEN / "batches-replay.json"
    if os.environ.get("CDSS_UPDATE_GOLDEN"):
        path.write_text(json.dumps(as_json(batches), indent=2) + "\n")
    assert as_json(batches) == json.loads(path.read_text())
    assert len(batches) == 1 and batches[0].cursor == "11"
    assert [r["resourceType"] for r in batches[0].resources] == ["Endpoint", "ImagingStudy"]
    for resource in batches[0].resources:
        assert validate(resource) == resource
    assert client.calls.count("study") == 1
    study = batches[0].resources[1]
    assert study["series"][0]["bodySite"]["code"] == "816094009"  # from the WADO-RS metadata


def test_paging_through_the_log_gives_the_same_result() -> None:
    whole = as_json(list(source(ReplayClient()).pull(None)))
    client = ReplayClient()
    assert as_json(list(source(client, page_size=2).pull(None))) == whole
    assert client.calls.count("changes") == 6


def test_incremental_pulls() -> None:
    assert list(source(ReplayClient()).pull("11")) == []  # nothing new
    again = list(source(ReplayClient()).pull("6"))  # the later StableStudy (Seq 10) is ahead
    assert [b.cursor for b in again] == ["11"]
    assert again[0].resources[1]["resourceType"] == "ImagingStudy"
    quiet = list(source(ReplayClient()).pull("10"))  # only StablePatient left: cursor moves
    assert [(b.cursor, b.resources, b.rejected) for b in quiet] == [("11", [], [])]


def test_small_batches_carry_the_seq_of_their_last_study() -> None:
    batches = list(source(ReplayClient()).pull(None, batch_size=2))
    assert [(b.cursor, len(b.resources)) for b in batches] == [("10", 2), ("11", 0)]
    # batch_size 1: the Endpoint goes alone, with the Seq before the study that needs it
    batches = list(source(ReplayClient()).pull(None, batch_size=1))
    kinds = [(b.cursor, [r["resourceType"] for r in b.resources]) for b in batches]
    assert kinds == [("9", ["Endpoint"]), ("10", ["ImagingStudy"]), ("11", [])]


def test_a_log_behind_the_cursor_is_read_again_from_the_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        batches = list(source(ReplayClient()).pull("500"))
    assert [b.cursor for b in batches] == ["11"]
    assert len(batches[0].resources) == 2
    assert "before the cursor 500" in caplog.text


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5"])
def test_a_malformed_cursor_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        list(source(ReplayClient()).pull(bad))


def test_a_study_deleted_after_its_stable_study_is_skipped() -> None:
    client = ReplayClient()
    client.study_json = {**client.study_json, "ID": "another-study"}
    batches = list(source(client).pull(None))
    assert [(b.cursor, b.resources, b.rejected) for b in batches] == [("11", [], [])]


def test_a_study_without_patient_id_is_rejected_not_dropped() -> None:
    client = ReplayClient()
    for ds in client.qido_study:
        del ds[tag("PatientID")]
    client.study_json["PatientMainDicomTags"].pop("PatientID")
    src = source(client)
    original = client.search_for_instances

    def without_patient(study_uid: str, *a: Any, **kw: Any) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in i.items() if k != tag("PatientID")}
            for i in original(study_uid, *a, **kw)
        ]

    client.search_for_instances = without_patient  # type: ignore[method-assign]
    client.retrieve_instance_metadata = lambda *a: {}  # type: ignore[method-assign]
    batches = list(src.pull(None))
    assert len(batches) == 1 and batches[0].resources == []
    rejected = batches[0].rejected
    assert [r.source_ref for r in rejected] == [f"/studies/{STUDY_ID}"]
    assert "PatientID" in rejected[0].reason
    assert batches[0].cursor == "11"


def test_a_failure_mid_study_yields_no_batch() -> None:
    client = ReplayClient()
    client.fail_on = "qido-series"
    pulled: list[Batch] = []
    with pytest.raises(OrthancUnavailable):
        for batch in source(client).pull(None):
            pulled.append(batch)
    assert pulled == []
