"""Prefetch: templates, and fulfilment (use, follow pages, refetch, fall back, or 412).

The fallback to the client's own FHIR server is tested for real: a second app instance is served
on loopback as that server, and it records the Authorization headers it receives, so the tests can
show that the client's token goes to an allow-listed fhirServer and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from cds_hooks import examples as ex
from cds_hooks.templates import TemplateError, check_template, render
from tests.cds_hooks.conftest import Harness, client_config
from tests.support.server import serve

IMAGING = "imaging-order-safety"
NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    "template",
    [
        "Patient/{{context.patientId}}",
        "Observation?patient={{context.patientId}}&code=http://loinc.org|2160-0,http://loinc.org|98979-8",
        "Observation?subject:Patient={{context.patientId}}&date=ge2020-01-01&_sort=-date&_count=5",
        "Practitioner/{{userPractitionerId}}",
        "Encounter/{{context.encounterId}}",
        "Condition?patient={{context.patientId}}&code:in=http://example.org/ValueSet/x",
    ],
)
def test_templates_in_the_recommended_subset_are_accepted(template: str) -> None:
    assert _accepted("order-sign", template)


def _accepted(hook: str, template: str) -> bool:
    try:
        check_template(hook, template)
    except TemplateError:
        return False
    return True


@pytest.mark.parametrize(
    ("hook", "template"),
    [
        ("order-sign", "ServiceRequest/{{context.draftOrders}}"),  # Library: SHALL NOT
        ("order-select", "ServiceRequest?_id={{context.selections}}"),  # Library: SHALL NOT
        ("order-select", "ServiceRequest/{{context.draftOrders}}"),  # Library: SHALL NOT
        ("appointment-book", "Appointment?_id={{context.appointments}}"),  # hook not served
        ("order-sign", "Patient/{{context.patientId.reference}}"),  # not root-level
        ("order-sign", "Patient/{{patientId}}"),  # must be context.name
        ("order-sign", "Patient/{{context.patientId}"),  # not delimited by {{ }}
        ("order-sign", "Observation?patient={{context.patientId}}&_include=Observation:subject"),
        ("order-sign", "Patient?name:contains=x"),
        ("order-sign", "Observation?date=ne2020-01-01"),
        ("order-sign", "Observation?patient.name=x"),
        ("order-sign", "not a query"),
    ],
)
def test_templates_outside_the_rules_fail_at_declaration(hook: str, template: str) -> None:
    with pytest.raises(TemplateError):
        check_template(hook, template)


def test_render_fills_url_encoded_tokens_and_user_identifiers() -> None:
    context = {"patientId": "p 1", "userId": "PractitionerRole/r1"}
    assert render("Patient/{{context.patientId}}", context) == "Patient/p%201"
    assert render("PractitionerRole/{{userPractitionerRoleId}}", context) == "PractitionerRole/r1"
    assert render("Practitioner/{{userPractitionerId}}", context) is None  # no such user here
    assert render("Encounter/{{context.encounterId}}", context) is None


def _drafts() -> list[dict[str, Any]]:
    return [ex.service_request("d1", "p1", ex.CT_CHEST_CONTRAST)]


def _kinds(resp: httpx.Response) -> set[str]:
    assert resp.status_code == 200, resp.text
    return {c["source"]["topic"]["code"] for c in resp.json()["cards"]}


def test_null_means_no_data_and_is_not_refetched(cds: Harness, put) -> None:
    put(cds.http, ex.patient("p1"), ex.contrast_allergy("a1", "p1"))
    prefetch = {"allergies": None, "renal": ex.bundle([ex.egfr("e1", "p1", 80, NOW)])}
    kinds = _kinds(
        cds.call(IMAGING, ex.order_request("order-sign", "p1", _drafts(), prefetch=prefetch))
    )
    assert "contrast-allergy" not in kinds  # the facade has it, but null was the client's answer


def test_absent_or_operation_outcome_is_fetched_from_the_facade(cds: Harness, put) -> None:
    put(cds.http, ex.patient("p1"), ex.contrast_allergy("a1", "p1"))
    failed = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    for prefetch in ({}, {"allergies": failed}):
        body = ex.order_request("order-sign", "p1", _drafts(), prefetch=prefetch)
        assert "contrast-allergy" in _kinds(cds.call(IMAGING, body))


def test_prefetched_resources_of_another_patient_are_dropped(cds: Harness) -> None:
    prefetch = {
        "patient": ex.patient("p1"),
        "allergies": ex.bundle([ex.contrast_allergy("a1", "someone-else")]),
        "renal": ex.bundle([ex.egfr("e1", "p1", 80, NOW)]),
        "medications": ex.bundle([]),
        "studies": ex.bundle([]),
        "orders": ex.bundle([]),
    }
    body = ex.order_request("order-sign", "p1", _drafts(), prefetch=prefetch)
    assert "contrast-allergy" not in _kinds(cds.call(IMAGING, body))


class Recorder:
    """ASGI middleware that records the Authorization header of every request it sees."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.seen: list[str | None] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            auth = headers.get(b"authorization")
            self.seen.append(auth.decode() if auth else None)
        await self.app(scope, receive, send)


@pytest.fixture
def ehr(tmp_path) -> Iterator[tuple[str, Recorder, TestClient]]:
    """A second app instance served on loopback: the CDS client's FHIR server."""
    from cdss.app import create_app
    from cdss.settings import load_settings

    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'ehr.db'}", data_dir=tmp_path / "ehr", secret_key="k"
    )
    app = create_app(settings)
    recorder = Recorder(app)
    wrapper = FastAPI()

    @wrapper.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    wrapper.mount("/", recorder)  # type: ignore[arg-type]
    with TestClient(app) as direct, serve(wrapper) as base:
        recorder.seen.clear()
        yield base, recorder, direct


def _lend_token(
    body: dict[str, Any], server: str, token: str = "lent-fhir-token"
) -> dict[str, Any]:
    body["fhirServer"] = server
    body["fhirAuthorization"] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 30,
        "scope": "user/*.read",
        "subject": "cdss",
    }
    return body


def test_missing_data_comes_from_an_allow_listed_fhir_server_with_the_lent_token(
    make_app, keys, ehr, put
) -> None:
    base, recorder, direct = ehr
    put(direct, ex.patient("p1"), ex.contrast_allergy("a1", "p1"), ex.egfr("e1", "p1", 80, NOW))
    server = f"{base}/fhir"
    app = make_app(clients=[client_config(keys, fhir_servers=[server])])
    with TestClient(app) as http:
        cds = Harness(http, keys.ec)
        body = _lend_token(ex.order_request("order-sign", "p1", _drafts()), server)
        assert "contrast-allergy" in _kinds(cds.call(IMAGING, body))
        assert recorder.seen and set(recorder.seen) == {"Bearer lent-fhir-token"}
        # the local facade has nothing: the data really came from the client's server
        assert http.get("/fhir/AllergyIntolerance").json().get("entry") is None


def test_a_server_not_allow_listed_never_sees_the_token(cds: Harness, ehr, put) -> None:
    base, recorder, direct = ehr
    put(direct, ex.patient("p1"), ex.contrast_allergy("a1", "p1"))
    put(cds.http, ex.patient("p1"))  # the local facade: no allergy
    body = _lend_token(ex.order_request("order-sign", "p1", _drafts()), f"{base}/fhir")
    kinds = _kinds(cds.call(IMAGING, body))
    assert "contrast-allergy" not in kinds  # answered from the local facade
    assert recorder.seen == []  # not a single request reached the unlisted server


def test_a_paginated_prefetch_bundle_is_followed_on_the_allow_listed_server(
    make_app, keys, ehr, put
) -> None:
    base, recorder, direct = ehr
    peanut = {**ex.contrast_allergy("a0", "p1"), "code": {"text": "Peanut"}}
    put(direct, peanut, ex.contrast_allergy("a1", "p1"))  # the contrast allergy is on page 2
    server = f"{base}/fhir"
    first = direct.get("/fhir/AllergyIntolerance?patient=p1&_count=1").json()
    links = [{**x, "url": x["url"].replace("http://testserver", base)} for x in first["link"]]
    first = {**first, "link": links}
    assert first["entry"][0]["resource"]["id"] == "a0"
    assert any(x["relation"] == "next" for x in links)
    prefetch = {
        "patient": ex.patient("p1"),
        "renal": ex.bundle([ex.egfr("e1", "p1", 80, NOW)]),
        "allergies": first,
        "medications": ex.bundle([]),
        "studies": ex.bundle([]),
        "orders": ex.bundle([]),
        "aiFindings": ex.bundle([]),  # else fetched too: this test counts page fetches
    }
    app = make_app(clients=[client_config(keys, fhir_servers=[server])])
    with TestClient(app) as http:
        body = ex.order_request("order-sign", "p1", _drafts(), prefetch=prefetch)
        kinds = _kinds(Harness(http, keys.ec).call(IMAGING, _lend_token(body, server)))
    assert "contrast-allergy" in kinds
    assert recorder.seen == ["Bearer lent-fhir-token"]  # one page fetched, with the lent token


def test_a_next_link_that_cannot_be_followed_falls_back_to_a_fetch(cds: Harness, put) -> None:
    put(cds.http, ex.patient("p1"), ex.contrast_allergy("a1", "p1"))
    partial = {
        **ex.bundle([]),
        "link": [{"relation": "next", "url": "https://elsewhere.example/fhir/x?page=2"}],
    }
    body = ex.order_request("order-sign", "p1", _drafts(), prefetch={"allergies": partial})
    assert "contrast-allergy" in _kinds(cds.call(IMAGING, body))  # from the facade, whole


def test_an_unreachable_allow_listed_server_is_412_within_the_budget(make_app, keys) -> None:
    from tests.support.postgres import free_port

    server = f"http://127.0.0.1:{free_port()}/fhir"  # nothing listens there
    app = make_app(clients=[client_config(keys, fhir_servers=[server])])
    with TestClient(app) as http:
        body = _lend_token(ex.order_request("order-sign", "p1", _drafts()), server)
        started = datetime.now(UTC)
        resp = Harness(http, keys.ec).call(IMAGING, body)
        elapsed = (datetime.now(UTC) - started).total_seconds()
    assert resp.status_code == 412
    assert elapsed < 2.0


def test_a_slow_server_is_cut_off_by_the_fetch_budget(make_app, keys) -> None:
    import time

    slow = FastAPI()

    @slow.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @slow.get("/fhir/{rest:path}")
    def anything(rest: str, request: Request) -> dict[str, Any]:
        time.sleep(2)
        return {"resourceType": "Bundle", "type": "searchset"}

    with serve(slow) as base:
        server = f"{base}/fhir"
        app = make_app(clients=[client_config(keys, fhir_servers=[server])], cds_fetch_budget_s=0.3)
        with TestClient(app) as http:
            body = _lend_token(ex.order_request("order-sign", "p1", _drafts()), server)
            started = time.monotonic()
            resp = Harness(http, keys.ec).call(IMAGING, body)
            assert resp.status_code == 412
            assert time.monotonic() - started < 1.5
            assert "time budget" in resp.json()["issue"][0]["diagnostics"] or "Timeout" in resp.text
