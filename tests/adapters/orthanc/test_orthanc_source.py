"""OrthancSource against a real Orthanc: synthetic CT series in, ImagingStudy batches out, with
the cursor following Orthanc's change log. Each test gets a fresh, empty Orthanc."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from typing import Any

import fhirclient.models.imagingstudy as r4_imagingstudy
import pytest
from pydicom.dataset import Dataset

from adapters.base import MRN_SYSTEM, Batch, source_id
from adapters.orthanc.client import OrthancClient, OrthancUnavailable
from adapters.orthanc.mapper import endpoint_id
from adapters.orthanc.source import OrthancSource
from fhir_facade.fhir import validate
from tests.support import orthanc
from tests.support.dicom import CT_IMAGE_STORAGE, CtSeriesSpec, ct_series, to_bytes

PUBLIC = "http://127.0.0.1:8000/dicom-web"


@pytest.fixture
def server() -> Iterator[orthanc.OrthancServer]:
    reason = orthanc.available()
    if reason is not None:
        pytest.fail(f"Orthanc is required for the Orthanc adapter tests: {reason}")
    with orthanc.orthanc(dicom_server=False) as running:
        yield running


@pytest.fixture
def client(server: orthanc.OrthancServer) -> Iterator[OrthancClient]:
    with OrthancClient(server.url, auth=server.auth, timeout=5, attempts=3, backoff=0.05) as c:
        yield c


@pytest.fixture
def source(server: orthanc.OrthancServer, client: OrthancClient) -> OrthancSource:
    return OrthancSource(client, dicomweb_public_url=PUBLIC, base_url=server.url, timezone=UTC)


def send(client: OrthancClient, datasets: list[Dataset]) -> None:
    for ds in datasets:
        client.upload(to_bytes(ds))


def stable(server: orthanc.OrthancServer, studies: int = 1, since: int = 0) -> int:
    """Wait until `studies` StableStudy entries follow `since`; the log's last Seq by then."""
    orthanc.wait_for_changes(server, "StableStudy", count=studies, since=since)
    orthanc.wait_for_changes(server, "StablePatient", count=studies, since=since)
    with OrthancClient(server.url, auth=server.auth) as c:
        return c.changes(since, limit=1000).last


def procedure(code: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code, scheme, meaning
    return item


def studies(batches: list[Batch]) -> list[dict[str, Any]]:
    return [r for b in batches for r in b.resources if r["resourceType"] == "ImagingStudy"]


def test_a_ct_series_becomes_one_imaging_study(
    server: orthanc.OrthancServer, client: OrthancClient, source: OrthancSource
) -> None:
    spec = CtSeriesSpec(
        patient_id="MRN-1001",
        patient_name="DOE^JANE",
        accession_number="A-1",
        slices=6,
        series_number=3,
        body_part="CHEST",
    )
    datasets = ct_series(spec)
    for ds in datasets:  # QIDO never returns sequences: this comes from WADO-RS metadata
        ds.ProcedureCodeSequence = [procedure("24627-2", "LN", "CT Chest")]
        ds.TimezoneOffsetFromUTC = "+0100"
    send(client, datasets)
    last = stable(server)

    batches = list(source.pull(None))
    assert [b.cursor for b in batches] == [str(last)]
    assert [b.rejected for b in batches] == [[]]
    endpoint, study = batches[0].resources
    for resource in (endpoint, study):
        assert validate(resource) == resource
    r4_imagingstudy.ImagingStudy(study, strict=True)
    assert endpoint["address"] == PUBLIC and endpoint["id"] == endpoint_id(PUBLIC)

    assert study["id"] == source_id("orthanc", "ImagingStudy", spec.study_uid)
    assert study["identifier"][0]["value"] == f"urn:oid:{spec.study_uid}"
    assert study["identifier"][1]["value"] == "A-1"
    assert study["subject"]["identifier"] == {"system": MRN_SYSTEM, "value": "MRN-1001"}
    assert study["subject"]["display"] == "JANE DOE"
    assert study["started"] == "2024-01-15T10:15:00+01:00"  # the study's own offset wins
    assert study["procedureCode"][0]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "24627-2",
        "display": "CT Chest",
    }
    assert study["description"] == spec.study_description
    assert [m["code"] for m in study["modality"]] == ["CT"]
    assert (study["numberOfSeries"], study["numberOfInstances"]) == (1, 6)
    assert study["meta"]["source"] == server.url
    (series,) = study["series"]
    assert series["uid"] == spec.series_uid and series["number"] == 3
    assert series["modality"]["code"] == "CT" and series["numberOfInstances"] == 6
    assert series["bodySite"]["code"] == "816094009"
    assert [i["number"] for i in series["instance"]] == [1, 2, 3, 4, 5, 6]
    assert {i["sopClass"]["code"] for i in series["instance"]} == {f"urn:oid:{CT_IMAGE_STORAGE}"}


def test_incremental_pulls_follow_the_cursor(
    server: orthanc.OrthancServer, client: OrthancClient, source: OrthancSource
) -> None:
    first = CtSeriesSpec(patient_id="MRN-2001", accession_number="A-21")
    send(client, ct_series(first))
    early = list(source.pull(None))  # NewStudy is logged, but the study is not stable yet
    assert studies(early) == [] and early[-1].cursor is not None
    stable(server)
    batches = list(source.pull(early[-1].cursor))
    assert len(studies(batches)) == 1
    cursor = batches[-1].cursor
    assert cursor is not None

    assert list(source.pull(cursor)) == []  # nothing new since

    second = CtSeriesSpec(patient_id="MRN-2002", accession_number="A-22", body_part="HEAD")
    send(client, ct_series(second))
    last = stable(server, since=int(cursor))
    batches = list(source.pull(cursor))
    assert [b.cursor for b in batches] == [str(last)]
    (study,) = studies(batches)
    assert study["identifier"][0]["value"] == f"urn:oid:{second.study_uid}"
    assert study["series"][0]["bodySite"]["code"] == "69536005"
    assert list(source.pull(str(last))) == []


def test_a_new_series_makes_the_study_stable_again(
    server: orthanc.OrthancServer, client: OrthancClient, source: OrthancSource
) -> None:
    spec = CtSeriesSpec(patient_id="MRN-3001", slices=2)
    send(client, ct_series(spec))
    cursor = str(stable(server))
    list(source.pull(None))
    more = CtSeriesSpec(
        patient_id="MRN-3001",
        study_uid=spec.study_uid,
        series_number=2,
        slices=3,
        body_part="ABDOMEN",
        laterality="R",
        series_description="AXIAL ABD",
    )
    send(client, ct_series(more))
    stable(server, since=int(cursor))
    (study,) = studies(list(source.pull(cursor)))
    assert (study["numberOfSeries"], study["numberOfInstances"]) == (2, 5)
    assert [s["number"] for s in study["series"]] == [1, 2]
    assert study["series"][1]["laterality"]["code"] == "24028007"
    assert study["series"][1]["bodySite"]["code"] == "818981001"


def test_a_study_without_patient_id_is_rejected(
    server: orthanc.OrthancServer, client: OrthancClient, source: OrthancSource
) -> None:
    anonymous = ct_series(CtSeriesSpec(slices=1))
    del anonymous[0].PatientID
    send(client, anonymous)
    send(client, ct_series(CtSeriesSpec(patient_id="MRN-4001")))
    last = stable(server, studies=2)
    batches = list(source.pull(None))
    assert batches[-1].cursor == str(last)
    rejected = [r for b in batches for r in b.rejected]
    assert len(rejected) == 1 and "PatientID" in rejected[0].reason
    assert rejected[0].source_ref.startswith("/studies/")
    assert [s["subject"]["identifier"]["value"] for s in studies(batches)] == ["MRN-4001"]


def test_orthanc_stopped_mid_pull_raises_and_keeps_the_cursor(
    server: orthanc.OrthancServer, client: OrthancClient
) -> None:
    for n in (1, 2):
        send(client, ct_series(CtSeriesSpec(patient_id=f"MRN-500{n}", slices=2)))
    stable(server, studies=2)
    log = client.changes(0, limit=1000).changes
    first_stable = next(c.seq for c in log if c.change_type == "StableStudy")

    one_by_one = OrthancSource(  # no read-ahead: the second study is fetched after the stop
        client, dicomweb_public_url=PUBLIC, base_url=server.url, timezone=UTC, fetchers=1
    )
    pull = one_by_one.pull(None, batch_size=2)  # [Endpoint, first study], then the second
    first = next(pull)
    assert first.cursor == str(first_stable) and len(studies([first])) == 1
    server.stop()
    with pytest.raises(OrthancUnavailable, match="after 3 attempts"):
        next(pull)  # the second study cannot be fetched: no batch, the cursor stays at `first`
