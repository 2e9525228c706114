"""SenaiteSource against the simulator served on loopback: full, incremental and paged pulls."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from adapters.base import Batch
from adapters.senaite.client import Page, Params, SenaiteClient
from adapters.senaite.refs import resource_id
from adapters.senaite.source import CursorKey, SenaiteSource
from fhir_facade.fhir import validate
from simulators.senaite import SenaiteState, create_senaite_app
from tests.adapters.senaite.senaite_adapter_support import Clock, LabDriver
from tests.support.server import serve

READY = "/senaite/@@API/senaite/v1/version"


class Site:
    def __init__(self, api_url: str, state: SenaiteState, clock: Clock) -> None:
        self.api_url = api_url
        self.state = state
        self.clock = clock
        self.client = SenaiteClient(api_url, username="admin", password="admin", backoff=0.01)
        self.lab = LabDriver(self.client, clock)

    def source(self, page_size: int = 100) -> SenaiteSource:
        client = SenaiteClient(
            self.api_url, username="admin", password="admin", page_size=page_size, backoff=0.01
        )
        return SenaiteSource(client, base_url="http://lims.example/senaite")


@pytest.fixture
def site() -> Iterator[Site]:
    clock = Clock()
    app = create_senaite_app(clock=clock)
    with serve(app, ready_path=READY) as base:
        yield Site(base + "/senaite/@@API/senaite/v1", app.state.senaite, clock)


def pull_all(source: SenaiteSource, cursor: str | None, batch_size: int = 200) -> list[Batch]:
    return list(source.pull(cursor, batch_size=batch_size))


def resources(batches: list[Batch]) -> list[dict[str, Any]]:
    return [r for b in batches for r in b.resources]


def ids_of(batches: list[Batch], resource_type: str) -> list[str]:
    return [r["id"] for r in resources(batches) if r["resourceType"] == resource_type]


def request_id(sample: dict[str, Any]) -> str:
    return resource_id("ServiceRequest", sample["uid"])


def test_full_then_incremental_pull(site: Site) -> None:
    lab = site.lab
    published = [lab.published({"CREA": "1.0", "K": "4.1"}, mrn=f"MRN-{n}") for n in range(3)]
    due = lab.sample(["HGB"], mrn="MRN-9", sample_type="Whole blood")
    source = site.source()
    first = pull_all(source, None)
    for resource in resources(first):
        assert validate(resource) == resource
        assert resource["meta"]["source"] == "http://lims.example/senaite"
    assert sorted(ids_of(first, "ServiceRequest")) == sorted(
        request_id(s) for s in [*published, due]
    )
    assert len(ids_of(first, "DiagnosticReport")) == 3
    assert len(ids_of(first, "Observation")) == 6
    cursor = first[-1].cursor
    assert cursor is not None and cursor.endswith(due["uid"])
    assert pull_all(source, cursor) == []

    lab.transition(published[1]["uid"], "invalidate")
    again = pull_all(source, cursor)
    assert ids_of(again, "ServiceRequest") == [request_id(published[1])]
    report = next(r for r in resources(again) if r["resourceType"] == "DiagnosticReport")
    assert report["status"] == "entered-in-error"
    assert pull_all(source, again[-1].cursor) == []


def test_paging_across_pages_with_samples_sharing_a_minute(site: Site) -> None:
    samples = [site.lab.sample(["GLU"], mrn=f"MRN-{n}") for n in range(9)]
    site.clock.advance(-30)  # later edits land in the same minute, out of creation order
    for sample in reversed(samples[:4]):
        site.lab.transition(sample["uid"], "receive")
    batches = pull_all(site.source(page_size=2), None, batch_size=4)
    got = ids_of(batches, "ServiceRequest")
    assert sorted(got) == sorted(request_id(s) for s in samples) and len(got) == 9
    cursors = [CursorKey.decode(b.cursor) for b in batches if b.cursor]
    assert cursors == sorted(cursors)
    assert all(len(b.resources) <= 4 for b in batches)


def test_a_sample_modified_mid_scan_does_not_hide_the_next_one(site: Site) -> None:
    samples = []
    for n in range(6):
        samples.append(site.lab.sample(["NA"], mrn=f"MRN-{n}"))
        site.clock.advance(61)  # one minute each

    class Meddling(SenaiteClient):
        calls = 0

        def search_page(
            self,
            resource: str,
            params: Params | None = None,
            *,
            b_start: int = 0,
            limit: int | None = None,
        ) -> Page:
            page = super().search_page(resource, params, b_start=b_start, limit=limit)
            if resource == "AnalysisRequest" and Meddling.calls == 0:
                site.lab.transition(samples[0]["uid"], "receive")  # moves to the end
            Meddling.calls += resource == "AnalysisRequest"
            return page

    client = Meddling(site.api_url, username="admin", password="admin", page_size=2)
    source = SenaiteSource(client, base_url="http://lims.example/senaite")
    got = ids_of(pull_all(source, None), "ServiceRequest")
    assert set(got) == {request_id(s) for s in samples}
    assert got.count(request_id(samples[0])) == 2  # seen before and after its change


def test_analyses_fetched_for_a_group_of_samples_land_on_their_sample(site: Site) -> None:
    for n in range(5):
        site.lab.published({"CREA": f"1.{n}", "K": "4.1"}, mrn=f"MRN-{n}")
    whole = resources(pull_all(site.source(), None))
    in_pairs = SenaiteSource(site.source().client, base_url=site.source().base_url, group_size=2)
    assert resources(pull_all(in_pairs, None)) == whole
    reports = [r for r in whole if r["resourceType"] == "DiagnosticReport"]
    assert len(reports) == 5 and all(len(r["result"]) == 2 for r in reports)
    values = sorted(
        o["valueQuantity"]["value"] for o in whole if o["resourceType"] == "Observation"
    )
    assert values == [1.0, 1.1, 1.2, 1.3, 1.4] + [4.1] * 5


def test_the_client_retries_through_a_flaky_pull(site: Site) -> None:
    site.lab.published({"PSA": "2.1"})
    site.state.inject_failures(2, status=503)
    batches = pull_all(site.source(), None)
    assert len(ids_of(batches, "Observation")) == 1


def test_a_sample_larger_than_a_batch_is_split_without_moving_the_cursor(site: Site) -> None:
    site.lab.published({"CREA": "1", "K": "4", "NA": "140", "ALT": "20", "AST": "22"})
    batches = pull_all(site.source(), "2024-10-07T00:00:00+00:00|0", batch_size=3)
    assert [len(b.resources) for b in batches] == [3, 3, 2]
    assert [b.cursor for b in batches[:2]] == ["2024-10-07T00:00:00+00:00|0"] * 2
    assert batches[2].cursor is not None and batches[2].cursor != batches[0].cursor


def test_a_retraction_withdraws_the_reported_result(site: Site) -> None:
    lab = site.lab
    sample = lab.sample(["CRP"])
    lab.results(sample, {"CRP": "80"}, verify=False)
    source = site.source()
    first = pull_all(source, None)
    original = next(r for r in resources(first) if r["resourceType"] == "Observation")
    assert original["status"] == "registered"
    lab.transition(lab.analyses(sample)["CRP"]["uid"], "retract")
    second = {r["id"]: r for r in resources(pull_all(source, first[-1].cursor))}
    assert second[original["id"]]["status"] == "entered-in-error"


def test_cursor_round_trip_and_bad_cursors() -> None:
    key = CursorKey(datetime(2024, 10, 7, 8, 0, tzinfo=UTC), "f" * 32)
    assert CursorKey.decode(key.encode()) == key
    for bad in ("", "2024-10-07T08:00:00+00:00", "nonsense|abc", "2024-10-07T08:00:00|abc"):
        with pytest.raises(ValueError):
            CursorKey.decode(bad)


def _mock_senaite(
    samples: list[dict[str, Any]], analyses: list[dict[str, Any]]
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/users/current"):
            return httpx.Response(200, json={"items": [{"username": "u", "authenticated": True}]})
        items = samples if path.endswith("/AnalysisRequest") else analyses
        return httpx.Response(200, json={"count": len(items), "items": items})

    return httpx.MockTransport(handler)


def test_malformed_payloads_become_rejected_entries() -> None:
    good = {
        "uid": "1" * 32,
        "id": "SER-1",
        "modified": "2024-10-07T08:00:00+00:00",
        "review_state": "published",
        "MedicalRecordNumber": {"value": "MRN-1"},
    }
    samples = [
        good,
        {"uid": "2" * 32, "modified": "2024-10-07T08:00:01+00:00"},  # no id
        {"uid": "3" * 32, "id": "SER-3"},  # no modified: cannot be ordered
        {**good, "uid": "4" * 32, "id": "SER-4", "MedicalRecordNumber": None},
    ]
    analysis = {"id": "K", "Keyword": "K", "review_state": "published", "Result": "4"}
    analyses = [{**analysis, "parent_uid": "1" * 32}]  # of the good sample
    client = SenaiteClient(
        "http://lims/senaite/@@API/senaite/v1",
        username="u",
        password="p",
        transport=_mock_senaite(samples, analyses),
    )
    source = SenaiteSource(client, base_url="http://lims/senaite")
    batches = pull_all(source, None)
    rejected = {r.source_ref: r.reason for b in batches for r in b.rejected}
    assert set(rejected) == {
        "AnalysisRequest/SER-3",
        "Analysis/K",
        f"AnalysisRequest/{'2' * 32}",
        "AnalysisRequest/SER-4",
    }
    assert "malformed sample" in rejected[f"AnalysisRequest/{'2' * 32}"]
    assert "malformed analysis" in rejected["Analysis/K"]
    assert [r["resourceType"] for r in resources(batches)] == [
        "ServiceRequest",
        "Specimen",
        "DiagnosticReport",
    ]
    assert batches[-1].cursor == f"2024-10-07T08:00:01+00:00|{'2' * 32}"
    assert source.deviations.counts["sample-without-uid-or-modified"] == 1
