"""OpenEMRSource against the OpenEMR simulator served for real on loopback.

The sync's client registers as a SMART Backend Services client over HTTP and gets its tokens
with an RS384 client assertion (adapters.openemr.auth), as it would from a real OpenEMR. One
fake clock drives the simulator's records, its token lifetimes and the client's token cache, so
tests can make time pass. A middleware on the simulator injects faults (5xx, 401) on demand.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from adapters.base import MRN_SYSTEM, Batch
from adapters.openemr.auth import (
    BackendServicesAuth,
    PasswordGrantAuth,
    make_rsa_jwk,
    register_backend_client,
    register_client,
)
from adapters.openemr.client import OpenEMRClient, OpenEMRError
from adapters.openemr.source import DEFAULT_TYPES, OpenEMRSource, parse_cursor
from fhir_facade.fhir import validate
from simulators.openemr import catalog
from simulators.openemr.app import create_openemr_app
from simulators.openemr.oauth import UserAccount
from simulators.openemr.store import OpenEMRStore
from tests.support import server as server_support
from tests.support.postgres import free_port

FHIR = "/apis/default/fhir"
ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"
SYSTEM_SCOPES = " ".join(f"system/{t}.rs" for t in DEFAULT_TYPES)


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += seconds


@dataclass
class Faults:
    """Answers the next requests to a path with the planned statuses; logs every answer."""

    plan: dict[str, list[int]] = field(default_factory=dict)
    seen: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        planned = self.plan.get(request.url.path)
        if planned:
            status = planned.pop(0)
            response: Response = JSONResponse({"error": "injected", "code": status}, status)
        else:
            response = await call_next(request)
        self.seen.append((request.url.path, response.status_code))
        return response

    def count(self, path: str, status: int | None = None) -> int:
        return sum(1 for p, s in self.seen if p == path and status in (None, s))


@dataclass
class Sim:
    base: str
    app: FastAPI
    clock: Clock
    faults: Faults

    @property
    def store(self) -> OpenEMRStore:
        store: OpenEMRStore = self.app.state.store
        return store


def seed(store: OpenEMRStore, clock: Clock) -> None:
    doc = store.insert("users", {"fname": "Gregory", "lname": "House", "npi": "1234567893"})
    clock.tick()
    for pid, puuid in ((1, ALICE), (2, BOB), (3, "33333333-3333-4333-8333-333333333333")):
        patient = {"uuid": puuid, "pid": pid, "pubpid": f"SYN-000{pid}", "fname": f"P{pid}"}
        store.insert(
            "patient_data", patient | {"lname": "Test", "sex": "Female", "DOB": "1960-01-01"}
        )
        store.insert(
            "form_encounter",
            {"pid": pid, "encounter": pid, "date": "2024-01-02"} | {"provider_id": doc["id"]},
        )
        store.insert(
            "form_vitals", {"pid": pid, "date": "2024-01-02 09:00:00", "bps": "120", "bpd": "80"}
        )
        store.insert(
            "lists",
            {"pid": pid, "type": "medical_problem", "title": "COPD"}
            | {"begdate": "2020-01-01", "diagnosis": "ICD10:J44.9"},
        )
        store.insert("history_data", {"pid": pid, "date": "2024-01-02", "tobacco": "|x||4"})
        clock.tick()
    lab = store.insert("procedure_providers", {"name": "Central lab"})
    order = store.insert(
        "procedure_order",
        {"patient_id": 1, "lab_id": lab["ppid"]}
        | {
            "procedure_code": "2160-0",
            "procedure_name": "Creatinine",
            "date_ordered": "2024-01-02",
        },
    )
    report = store.insert(
        "procedure_report",
        {"procedure_order_id": order["procedure_order_id"]}
        | {"report_status": "final", "date_report": "2024-01-03 08:00:00"},
    )
    store.insert(
        "procedure_result",
        {"procedure_report_id": report["procedure_report_id"]}
        | {"result_code": "2160-0", "result_text": "Creatinine", "result": "0.9", "units": "mg/dL"},
    )
    store.insert(
        "procedure_specimen",
        {"procedure_order_id": order["procedure_order_id"]}
        | {"specimen_identifier": "S-1", "specimen_type_code": "122555007"},
    )
    clock.tick()


def in_simulator(store: OpenEMRStore) -> int:
    return sum(len(catalog.collect(store, catalog.KINDS[t])) for t in DEFAULT_TYPES)


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    port = free_port()
    monkeypatch.setattr(server_support, "free_port", lambda: port)
    base, clock, faults = f"http://127.0.0.1:{port}", Clock(), Faults()
    alice = UserAccount("alice", "pw", f"Patient/{ALICE}", role="patient", email="a@x.org")
    admin = UserAccount("admin", "pass", "Practitioner/00000000-0000-4000-8000-00000000000a")
    app = create_openemr_app(public_base=base, clock=clock, users={"admin": admin, "alice": alice})
    app.middleware("http")(faults)
    seed(app.state.store, clock)
    with server_support.serve(app, ready_path=f"{FHIR}/metadata") as url:
        assert url == base
        yield Sim(base, app, clock, faults)


@pytest.fixture
def auth(sim: Sim) -> Iterator[BackendServicesAuth]:
    keys = make_rsa_jwk()
    oauth = f"{sim.base}/oauth2/default"
    client = register_backend_client(
        oauth, client_name="cdss sync", scopes=SYSTEM_SCOPES, jwks=keys.jwks
    )
    provider = BackendServicesAuth(
        f"{oauth}/token", client.client_id, keys.private_jwk, scopes=SYSTEM_SCOPES, clock=sim.clock
    )
    yield provider
    provider.close()


@pytest.fixture
def source(sim: Sim, auth: BackendServicesAuth) -> Iterator[OpenEMRSource]:
    with OpenEMRClient(f"{sim.base}{FHIR}", auth, backoff=0, attempts=3) as client:
        yield OpenEMRSource(client, base_url=f"{sim.base}{FHIR}")


def resources_of(batches: list[Batch]) -> list[dict[str, Any]]:
    return [r for b in batches for r in b.resources]


def test_full_pull_in_batches(sim: Sim, source: OpenEMRSource) -> None:
    batches = list(source.pull(None, batch_size=4))
    pulled = resources_of(batches)
    assert len(pulled) == in_simulator(sim.store)
    assert all(len(b.resources) + len(b.rejected) <= 4 for b in batches)
    assert not any(b.rejected for b in batches)
    order = list(dict.fromkeys(r["resourceType"] for r in pulled))
    assert order[:2] == ["Patient", "Practitioner"]
    assert set(order) == {"Patient", "Practitioner", "Organization", "Encounter", "Condition"} | {
        "Observation",
        "ServiceRequest",
        "Specimen",
        "DiagnosticReport",
    }
    for resource in pulled:
        assert validate(resource) == resource
    mrns = {
        i["value"]
        for r in pulled
        if r["resourceType"] == "Patient"
        for i in r["identifier"]
        if i["system"] == MRN_SYSTEM
    }
    assert mrns == {"SYN-0001", "SYN-0002", "SYN-0003"}
    cursor = parse_cursor(batches[-1].cursor)
    assert set(cursor) >= {"Patient", "Practitioner", "Observation"}
    assert cursor["Patient"].endswith("+00:00")


def test_incremental_pull_by_last_updated(sim: Sim, source: OpenEMRSource) -> None:
    first = list(source.pull(None, batch_size=50))
    cursor = first[-1].cursor
    sim.clock.tick(10)
    new = sim.store.insert(
        "patient_data", {"pid": 9, "pubpid": "SYN-0009", "fname": "New", "lname": "One"}
    )
    problem = sim.store.insert(
        "lists",
        {"pid": 1, "type": "medical_problem", "title": "Hypertension"} | {"begdate": "2023-01-01"},
    )
    sim.clock.tick()
    second = resources_of(list(source.pull(cursor, batch_size=50)))
    got = {(r["resourceType"], r["id"]) for r in second}
    assert {("Patient", new["uuid"]), ("Condition", problem["uuid"])} <= got
    assert len(second) < len(resources_of(first))
    last_seen = parse_cursor(cursor)
    for resource_type, rid in got - {("Patient", new["uuid"]), ("Condition", problem["uuid"])}:
        # the only re-deliveries: resources of the very second the previous pull ended on
        (raw,) = [
            r for r in catalog.collect(sim.store, catalog.KINDS[resource_type]) if r["id"] == rid
        ]
        assert raw["meta"]["lastUpdated"] == last_seen[resource_type]


def test_unmappable_records_are_rejected_not_dropped(sim: Sim, source: OpenEMRSource) -> None:
    bad = sim.store.insert("procedure_order", {"patient_id": 2, "order_intent": "not  a code"})
    batches = list(source.pull(None))
    rejected = [r for b in batches for r in b.rejected]
    assert [r.source_ref for r in rejected] == [f"ServiceRequest/{bad['uuid']}"]
    assert "intent" in rejected[0].reason


def test_token_expiring_mid_sync_is_renewed(sim: Sim, source: OpenEMRSource) -> None:
    token_path = "/oauth2/default/token"
    pulling = source.pull(None, batch_size=3)
    batches = [next(pulling)]
    assert sim.faults.count(token_path) == 1
    sim.clock.tick(301)  # client_credentials tokens live 300 s
    batches += list(pulling)
    assert sim.faults.count(token_path) == 2
    assert len(resources_of(batches)) == in_simulator(sim.store)


def test_revoked_token_gets_one_retry(
    sim: Sim, source: OpenEMRSource, auth: BackendServicesAuth
) -> None:
    pulling = source.pull(None, batch_size=3)
    batches = [next(pulling)]
    assert sim.app.state.oauth.revoke(auth.token())
    batches += list(pulling)
    assert any(status == 401 for _p, status in sim.faults.seen)
    assert len(resources_of(batches)) == in_simulator(sim.store)


def test_injected_401_then_success(sim: Sim, source: OpenEMRSource) -> None:
    sim.faults.plan[f"{FHIR}/Encounter"] = [401]
    assert len(resources_of(list(source.pull(None)))) == in_simulator(sim.store)
    assert sim.faults.count(f"{FHIR}/Encounter") == 2


def test_5xx_are_retried(sim: Sim, source: OpenEMRSource) -> None:
    sim.faults.plan[f"{FHIR}/Observation"] = [503, 502]
    assert len(resources_of(list(source.pull(None)))) == in_simulator(sim.store)
    assert sim.faults.count(f"{FHIR}/Observation", 503) == 1
    assert sim.faults.count(f"{FHIR}/Observation", 200) == 1


def test_persistent_5xx_stops_the_pull_after_the_stored_batches(
    sim: Sim, source: OpenEMRSource
) -> None:
    sim.faults.plan[f"{FHIR}/Observation"] = [500] * 10
    pulling = source.pull(None, batch_size=100)
    done: list[Batch] = []
    with pytest.raises(OpenEMRError) as caught:
        for batch in pulling:
            done.append(batch)
    assert caught.value.status == 500
    assert sim.faults.count(f"{FHIR}/Observation", 500) == 3  # bounded
    assert "Observation" not in parse_cursor(done[-1].cursor)
    assert "Condition" in parse_cursor(done[-1].cursor)


def test_patient_token_cannot_read_another_patient(sim: Sim) -> None:
    oauth = f"{sim.base}/oauth2/default"
    scopes = "openid patient/Patient.rs patient/Observation.rs"
    client = register_client(
        oauth,
        {"application_type": "private", "client_name": "portal", "redirect_uris": ["http://x/cb"]}
        | {"scope": scopes, "token_endpoint_auth_method": "client_secret_post"},
    )
    patient_auth = PasswordGrantAuth(
        f"{oauth}/token",
        client_id=client.client_id,
        client_secret=client.client_secret,
        username="alice",
        password="pw",
        user_role="patient",
        email="a@x.org",
        scopes=scopes,
        clock=sim.clock,
    )
    with OpenEMRClient(f"{sim.base}{FHIR}", patient_auth, backoff=0) as emr:
        own = emr.read("Patient", ALICE)
        assert own is not None and own["id"] == ALICE
        with pytest.raises(OpenEMRError) as caught:
            emr.read("Patient", BOB)
        assert caught.value.status == 403
        observations = emr.search("Observation").resources
        assert observations
        assert {o["subject"]["reference"] for o in observations} == {f"Patient/{ALICE}"}
        assert emr.search("Observation", {"patient": BOB}).resources == []
        with pytest.raises(OpenEMRError) as denied:
            emr.search("Condition")
        assert denied.value.status == 403
    patient_auth.close()


def test_cursor_is_json_of_types(source: OpenEMRSource) -> None:
    batches = list(source.pull(json.dumps({"Patient": "2100-01-01T00:00:00+00:00"})))
    assert not any(r["resourceType"] == "Patient" for r in resources_of(batches))
    with pytest.raises(ValueError):
        list(source.pull("[1, 2]"))
