"""Fixtures of the order tests: a facade with order intake on, a linked patient, and a SENAITE
simulator on loopback with the ordering client and contact the lab would have set up."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from adapters.base import MRN_SYSTEM
from fhir_facade.api.app import create_facade
from fhir_facade.api.state import FacadeState
from fhir_facade.orders import hook, outbox
from fhir_facade.orders.config import OrderSettings
from fhir_facade.orders.intake import connection
from fhir_facade.store.sql_store import SqlStore
from simulators.senaite import create_senaite_app
from tests.support.server import serve

LOINC = "http://loinc.org"
API = "/senaite/@@API/senaite/v1"
ADMIN = ("admin", "admin")


@pytest.fixture(autouse=True)
def orders_on() -> Iterator[None]:
    hook.install(True)
    yield
    hook.install(False)


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    """On SQLite and on a real PostgreSQL (tests/conftest.py's `database_url`)."""
    s = SqlStore(database_url)
    yield s
    s.close()


@pytest.fixture
def fhir(store: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_facade(FacadeState(store, b"k"))) as c:
        yield c


def make_patient(fhir: TestClient, mrn: str | None = "MRN-100", **extra: Any) -> str:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": "Doe", "given": ["Jane"]}],
        "birthDate": "1960-02-03",
        "gender": "female",
        **extra,
    }
    if mrn:
        body["identifier"] = [{"system": MRN_SYSTEM, "value": mrn}]
    answer = fhir.post("/Patient", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


@pytest.fixture
def patient_id(fhir: TestClient) -> str:
    return make_patient(fhir)


def order(
    patient: str, code: str = "2160-0", *, ident: str | None = "ORD-1", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "requester": {"reference": "Practitioner/dr-1", "display": "Dr One"},
        **extra,
    }
    if ident:
        body["identifier"] = [{"system": "urn:hospital:placer", "value": ident}]
    return body


def rows(store: SqlStore) -> list[outbox.Row]:
    with store.unit() as unit:
        return outbox.listing(connection(unit))


def read(fhir: TestClient, id: str) -> dict[str, Any]:
    answer = fhir.get(f"/ServiceRequest/{id}")
    assert answer.status_code == 200, answer.text
    return dict(orjson.loads(answer.content))


@dataclass
class Lis:
    url: str  # the site, e.g. http://127.0.0.1:PORT/senaite
    http: httpx.Client  # on the JSON API, as admin

    def samples(self) -> list[dict[str, Any]]:
        found = self.http.get("AnalysisRequest", params={"complete": "yes", "limit": 100})
        return list(found.json()["items"])

    def update(self, record: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post("update", json=record)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


@pytest.fixture
def lis() -> Iterator[Lis]:
    with (
        serve(create_senaite_app(), ready_path=f"{API}/version") as base,
        httpx.Client(base_url=f"{base}{API}/", auth=ADMIN, timeout=10) as http,
    ):
        client = http.post(
            "create", json={"portal_type": "Client", "Name": "OPD", "ClientID": "OPD"}
        ).json()["items"][0]["uid"]
        contact = {"portal_type": "Contact", "parent_uid": client, "Firstname": "W", "Surname": "C"}
        http.post("create", json=contact).raise_for_status()
        yield Lis(f"{base}/senaite", http)


def settings(tmp_path: Path, senaite_url: str | None = None, **extra: Any) -> OrderSettings:
    return OrderSettings(
        senaite_url=senaite_url,
        orders_worklists_dir=tmp_path / "worklists",
        orders_retry_base_s=0.01,
        orders_retry_max_s=0.05,
        orders_timeout_s=2.0,
        orders_status_poll_s=0.0,  # every round, so tests see status back at once
        **extra,
    )
