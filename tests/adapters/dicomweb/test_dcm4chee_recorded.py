"""The dicomweb profile against dcm4chee-arc's own answers (tests/fixtures/dcm4chee/README.md):
IS values as strings, attributes sent without a Value, and - in variants derived from the
recording - study results without ModalitiesInStudy or the count attributes, which make the
source ask at series level. A loopback stub serves the recordings under dcm4chee-arc's paths;
the sync engine stores what the source yields in a real SQLite store (the facade the source
de-duplicates and reconciles against)."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.base import Batch
from adapters.dicomweb.client import DicomwebClient
from adapters.dicomweb.settings import PacsSettings
from adapters.dicomweb.source import DicomwebSource
from adapters.dicomweb.wire import dicom_json
from adapters.orthanc.mapper import map_imaging_study
from adapters.orthanc.source import OrthancSource
from cdss.sources import SourceSettings, build_sources
from fhir_facade.errors import OperationOutcomeError
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.sync.engine import cursor_key, sync_source
from tests.support.server import serve

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dcm4chee"
STUDY_UID = "2.16.840.1.113995.3.110.3.0.10118.6000009.497166.721604"
SERIES_UID = "2.16.840.1.113995.3.110.3.0.10118.6000009.258169"
SM_STORAGE = "1.2.840.10008.5.1.4.1.1.77.1.6"
SERIES_KEYS = ("0020000D", "0020000E", "00080060", "00200011")
INSTANCE_KEYS = ("0020000D", "0020000E", "00080016", "00080018", "00200013")


def recorded(name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text())
    return found


def without(datasets: list[dict[str, Any]], *tags: str) -> list[dict[str, Any]]:
    """A derived variant: the recording with these attributes removed (a server omitting them)."""
    out = copy.deepcopy(datasets)
    for ds in out:
        for t in tags:
            ds.pop(t, None)
    return out


class Dcm4cheeStub:
    """dcm4chee-arc's DICOMweb paths answering with the recordings; QIDO honours limit/offset."""

    def __init__(self, studies: list[dict[str, Any]], *, series_counts: bool = True) -> None:
        self.studies = studies
        self.metadata = recorded("wado-instance-metadata.json")
        meta = self.metadata[0]
        series = {k: meta[k] for k in SERIES_KEYS}
        if series_counts:
            series["00201209"] = {"vr": "IS", "Value": ["1"]}
        self.series = [series]
        self.instances = [{k: meta[k] for k in INSTANCE_KEYS}]
        self.requests: list[str] = []

    def app(self) -> FastAPI:
        api = FastAPI()
        root = "/dcm4chee-arc/aets/DCM4CHEE/rs"

        def page(request: Request, items: list[dict[str, Any]]) -> JSONResponse:
            self.requests.append(f"{request.url.path.removeprefix(root)}?{request.url.query}")
            offset = int(request.query_params.get("offset", 0))
            limit = int(request.query_params.get("limit", 1000))
            return JSONResponse(items[offset : offset + limit], media_type="application/dicom+json")

        @api.get("/healthz")
        def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @api.get(root + "/studies")
        def studies(request: Request) -> JSONResponse:
            return page(request, self.studies)

        @api.get(root + "/studies/{study}/series")
        def series(study: str, request: Request) -> JSONResponse:
            return page(request, self.series if study == STUDY_UID else [])

        @api.get(root + "/studies/{study}/instances")
        def instances(study: str, request: Request) -> JSONResponse:
            return page(request, self.instances if study == STUDY_UID else [])

        @api.get(root + "/studies/{study}/series/{series}/instances/{sop}/metadata")
        def metadata(study: str, series: str, sop: str, request: Request) -> JSONResponse:
            self.requests.append(f"{request.url.path.removeprefix(root)}")
            return JSONResponse(self.metadata, media_type="application/dicom+json")

        return api


@pytest.fixture
def stub_url() -> Iterator[tuple[Dcm4cheeStub, str]]:
    stub = Dcm4cheeStub(recorded("qido-studies.json"))
    with serve(stub.app()) as base:
        yield stub, f"{base}/dcm4chee-arc/aets/DCM4CHEE/rs"


class Recorded:
    """The source as the engine drives it, keeping the batches it yielded."""

    def __init__(self, source: DicomwebSource) -> None:
        self.source, self.name, self.base_url = source, source.name, source.base_url
        self.batches: list[Batch] = []

    def attach_store(self, store: SqlStore) -> None:
        self.source.attach_store(store)

    def pull(self, cursor: str | None, *, batch_size: int = 200) -> Iterator[Batch]:
        for batch in self.source.pull(cursor, batch_size=batch_size):
            self.batches.append(batch)
            yield batch


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def pull(url: str, store: SqlStore, **kwargs: Any) -> list[Batch]:
    """One sync run of the dicomweb source into `store` (resuming from its cursor)."""
    client = DicomwebClient(url, backoff=0.01, page_size=10)
    source = Recorded(
        DicomwebSource(client, dicomweb_public_url="http://cdss/dicom-web", base_url=url, **kwargs)
    )
    try:
        sync_source(store, source)
        return source.batches
    finally:
        client.close()


def studies_in(batches: list[Batch]) -> list[dict[str, Any]]:
    return [r for b in batches for r in b.resources if r["resourceType"] == "ImagingStudy"]


def test_the_recordings_are_dicom_json() -> None:
    for name in ("qido-studies.json", "wado-instance-metadata.json"):
        assert dicom_json(recorded(name), name)


def test_recorded_study_maps_to_an_imaging_study() -> None:
    mapping = map_imaging_study(
        recorded("qido-studies.json")[0],
        [],
        recorded("wado-instance-metadata.json"),
        dicomweb_public_url="http://cdss/dicom-web",
    )
    study = mapping.resource
    assert study["identifier"][0]["value"] == f"urn:oid:{STUDY_UID}"
    assert study["subject"]["identifier"]["value"] == "ccbaf3d29596b6d2"
    assert study["numberOfSeries"] == 1 and study["numberOfInstances"] == 1  # IS as strings
    assert [m["code"] for m in study["modality"]] == ["SM"]
    assert study["started"] == "2022-09-28"  # no zone anywhere: the date only
    assert "referrer" not in study  # sent as {"vr": "PN"}: no value, no element
    instance = study["series"][0]["instance"][0]
    assert instance["sopClass"]["code"] == f"urn:oid:{SM_STORAGE}"


def test_source_pulls_the_recorded_study_once(
    stub_url: tuple[Dcm4cheeStub, str], store: SqlStore
) -> None:
    stub, url = stub_url
    first = pull(url, store, fetchers=1)
    [study] = studies_in(first)
    assert study["series"][0]["uid"] == SERIES_UID and study["numberOfInstances"] == 1
    listing = stub.requests[0]
    assert listing.startswith("/studies?") and "includefield=" in listing
    assert "limit=10" in listing and "offset=0" in listing
    assert any(r.startswith("/studies?") and "offset=1" in r for r in stub.requests)  # paged on
    stub.requests.clear()
    again = pull(url, store, fetchers=1)  # an old StudyDate: de-duplicated by the facade
    assert studies_in(again) == []
    assert all(r.startswith("/studies?") for r in stub.requests)  # count known: no fetch


def test_missing_counts_and_modalities_fall_back_to_series_queries(store: SqlStore) -> None:
    bare = without(recorded("qido-studies.json"), "00080061", "00201206", "00201208")
    stub = Dcm4cheeStub(bare)
    with serve(stub.app()) as base:
        url = f"{base}/dcm4chee-arc/aets/DCM4CHEE/rs"
        first = pull(url, store, fetchers=1)
        [study] = studies_in(first)
        assert [m["code"] for m in study["modality"]] == ["SM"]  # from the series
        assert study["numberOfInstances"] == 1
        series_calls = [r for r in stub.requests if "/series?" in r]
        assert series_calls and stub.requests.index(series_calls[0]) < next(
            i for i, r in enumerate(stub.requests) if "/instances?" in r
        )
        stub.requests.clear()
        assert studies_in(pull(url, store, fetchers=1)) == []
        assert not any("/metadata" in r or "/instances?" in r for r in stub.requests)


def test_without_any_count_the_instances_are_counted(store: SqlStore) -> None:
    bare = without(recorded("qido-studies.json"), "00201206", "00201208")
    stub = Dcm4cheeStub(bare, series_counts=False)
    with serve(stub.app()) as base:
        [study] = studies_in(pull(f"{base}/dcm4chee-arc/aets/DCM4CHEE/rs", store, fetchers=1))
    assert study["numberOfInstances"] == 1
    assert sum("/instances?" in r for r in stub.requests) == 2  # counted, then paged to the end


def synced_copy(store: SqlStore, template: dict[str, Any], uid: str) -> None:
    """An ImagingStudy for `uid` in the facade, as if synced before and since gone."""
    study = copy.deepcopy(template)
    study["id"] = str(uuid.uuid5(uuid.NAMESPACE_OID, uid))
    study["identifier"][0]["value"] = f"urn:oid:{uid}"
    with store.unit() as unit:
        unit.update(study)


def test_a_listing_that_would_wipe_the_facade_is_refused(
    stub_url: tuple[Dcm4cheeStub, str], store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    _, url = stub_url
    [template] = studies_in(pull(url, store))
    assert template["identifier"][0]["system"] == "urn:dicom:uid"
    vanished = [f"1.2.3.{n}" for n in range(12)]
    for uid in vanished:
        synced_copy(store, template, uid)
    with store.unit() as unit:  # a reconciliation is due
        unit.set_state(cursor_key("pacs"), '{"v":2,"window_start":null}')
    for fraction, expected in ((0.5, 0), (1.0, 12)):
        with caplog.at_level(logging.ERROR):
            batches = pull(url, store, max_delete_fraction=fraction)
        deleted = [ref for b in batches for ref in getattr(b, "deleted", [])]
        assert len(deleted) == expected
        with store.unit() as unit:
            unit.set_state(cursor_key("pacs"), '{"v":2,"window_start":null}')
    assert "refusing to delete" in caplog.text
    for uid in vanished:  # deleted from the facade by the second run
        with pytest.raises(OperationOutcomeError) as gone, store.unit() as unit:
            unit.read("ImagingStudy", str(uuid.uuid5(uuid.NAMESPACE_OID, uid)))
        assert gone.value.status == 410


def test_build_sources_follows_the_pacs_profile() -> None:
    settings = SourceSettings(orthanc_url="http://orthanc:8042")
    [legacy] = build_sources(settings, pacs=PacsSettings())
    assert isinstance(legacy, OrthancSource)
    standard = PacsSettings(profile="dicomweb", url="http://pacs/dcm4chee-arc/aets/DCM4CHEE/rs")
    [polling] = build_sources(settings, only="pacs", pacs=standard)
    assert isinstance(polling, DicomwebSource) and polling.name == "pacs"
    assert polling.base_url == "http://pacs/dcm4chee-arc/aets/DCM4CHEE/rs"
    assert build_sources(settings, only="openemr", pacs=standard) == []
