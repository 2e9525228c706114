"""SMART scopes, v1 and v2, and the patient compartment: a `patient/` token never sees or writes
another patient's data, whether by read, search, _include/_revinclude, chained parameters,
history, vread, paging or a Bundle."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_facade.security.scopes import Access, Grant, parse_scope
from tests.fhir_facade.security.conftest import Issuer, ids, observation, seed


def test_parse_v1_and_v2_scopes() -> None:
    assert parse_scope("patient/Observation.read") == Grant(
        "patient", "Observation", frozenset("rs")
    )
    assert parse_scope("user/*.write") == Grant("user", "*", frozenset("cud"))
    assert parse_scope("system/*.*") == Grant("system", "*", frozenset("cruds"))
    assert parse_scope("patient/Observation.rs") == Grant("patient", "Observation", frozenset("rs"))
    assert parse_scope("user/Encounter.cruds") == Grant("user", "Encounter", frozenset("cruds"))
    for refused in (
        "patient/Observation.sr",
        "patient/Observation.",
        "launch/patient",
        "openid",
        "patient/Observation.rs?category=laboratory",
        "group/Patient.read",
    ):
        assert parse_scope(refused) is None, refused


def test_decisions_combine_grants_and_guard_the_audit() -> None:
    def access(*scopes: str, patient: str | None = "p1", admin: bool = False) -> Access:
        from fhir_facade.security.scopes import parse_scopes

        return Access(
            "i", "s", "c", scopes, patient=patient, admin=admin, grants=parse_scopes(scopes)
        )

    both = access("patient/*.rs", "user/Observation.rs")
    assert both.decide("Observation", "s") == "all"
    assert both.decide("Encounter", "s") == "patient"
    assert both.decide("Encounter", "c") == "deny"
    assert access("patient/*.rs", patient=None).decide("Observation", "r") == "deny"
    assert access("system/*.rs").decide("AuditEvent", "s") == "deny"  # wildcard never covers it
    assert access("system/AuditEvent.rs").decide("AuditEvent", "s") == "deny"  # not admin
    assert access("system/AuditEvent.rs", admin=True).decide("AuditEvent", "s") == "all"
    assert access("system/AuditEvent.cruds", admin=True).decide("AuditEvent", "c") == "deny"


@pytest.fixture
def seeded(secure_client: TestClient, issuer: Issuer) -> Iterator[TestClient]:
    seed(secure_client, issuer)
    yield secure_client


def _get(client: TestClient, h: dict[str, str], url: str, status: int = 200) -> dict:  # type: ignore[type-arg]
    resp = client.get(f"/fhir/{url}", headers=h)
    assert resp.status_code == status, f"{url}: {resp.status_code} {resp.text}"
    return resp.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("scope", ["patient/*.read", "patient/*.rs"])
def test_patient_scope_reads_only_its_compartment(
    seeded: TestClient, issuer: Issuer, scope: str
) -> None:
    h = issuer.headers(scope, patient="p1")
    assert _get(seeded, h, "Patient/p1")["id"] == "p1"
    assert _get(seeded, h, "Observation/o-p1")["id"] == "o-p1"
    for other in (
        "Patient/p2",
        "Observation/o-p2",
        "Encounter/e-p2",
        "Observation/o-p2/_history/1",
    ):
        assert _get(seeded, h, other, 404)["resourceType"] == "OperationOutcome"
    assert ids(_get(seeded, h, "Observation")) == ["Observation/o-p1"]
    assert ids(_get(seeded, h, "Patient")) == ["Patient/p1"]
    assert ids(_get(seeded, h, "Observation?patient=Patient/p2")) == []
    assert ids(_get(seeded, h, "Observation?subject=Patient/p2")) == []
    assert ids(_get(seeded, h, "Patient?_id=p2")) == []
    # a practitioner is nobody's patient data: visible to patient/*
    assert _get(seeded, h, "Practitioner/dr1")["id"] == "dr1"


def test_patient_scope_includes_chains_and_history(seeded: TestClient, issuer: Issuer) -> None:
    h = issuer.headers("patient/*.rs", patient="p1")
    included = _get(
        seeded, h, "Observation?_include=Observation:patient&_include=Observation:encounter"
    )
    assert ids(included) == ["Encounter/e-p1", "Observation/o-p1", "Patient/p1"]
    rev = _get(seeded, h, "Patient?_revinclude=Observation:patient&_revinclude=Encounter:patient")
    assert ids(rev) == ["Encounter/e-p1", "Observation/o-p1", "Patient/p1"]
    iterate = _get(
        seeded,
        h,
        "Encounter?_revinclude=Observation:encounter&_include:iterate=Observation:patient",
    )
    assert all(i.endswith("p1") for i in ids(iterate))
    chained = seeded.get("/fhir/Observation?subject:Patient.name=P2", headers=h)
    assert chained.status_code in (200, 400)
    if chained.status_code == 200:
        assert ids(chained.json()) in ([], ["Observation/o-p1"])
    for url in ("Observation/_history", "_history", "Observation/o-p2/_history"):
        history = _get(seeded, h, url)
        seen = [e["resource"] for e in history.get("entry", [])]
        assert all(
            r.get("subject", {}).get("reference", "Patient/p1") == "Patient/p1" for r in seen
        ), url
        assert all(r["id"] != "p2" for r in seen), url
    assert len(_get(seeded, h, "Observation/o-p1/_history")["entry"]) == 1


def test_post_search_is_confined_too(seeded: TestClient, issuer: Issuer) -> None:
    h = issuer.headers("patient/*.rs", patient="p1")
    form = {"subject": "Patient/p2"}
    resp = seeded.post("/fhir/Observation/_search", data=form, headers=h)
    assert resp.status_code == 200 and ids(resp.json()) == []
    everything = seeded.post("/fhir/Observation/_search", data={"status": "final"}, headers=h)
    assert ids(everything.json()) == ["Observation/o-p1"]


def test_paging_stays_in_the_compartment(seeded: TestClient, issuer: Issuer) -> None:
    system = issuer.headers("system/*.cruds")
    for _ in range(3):
        for pid in ("p1", "p2"):
            assert (
                seeded.post(
                    "/fhir/Observation", json=observation(None, pid), headers=system
                ).status_code
                == 201
            )
    # a cursor minted for an unrestricted search, replayed by the patient token
    page = _get(seeded, issuer.headers("user/*.rs"), "Observation?_count=2")
    nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
    h = issuer.headers("patient/*.rs", patient="p1")
    replayed = _get(seeded, h, "Observation?" + nxt.split("?", 1)[1])
    assert all(
        e["resource"]["subject"]["reference"] == "Patient/p1" for e in replayed.get("entry", [])
    )
    seen, url = [], "Observation?_count=2"
    while url:
        bundle = _get(seeded, h, url)
        seen += [e["resource"]["subject"]["reference"] for e in bundle.get("entry", [])]
        url = next(
            (ln["url"].split("/fhir/", 1)[1] for ln in bundle["link"] if ln["relation"] == "next"),
            "",
        )
    assert seen == ["Patient/p1"] * 4


def test_types_and_permissions_not_granted_are_403(seeded: TestClient, issuer: Issuer) -> None:
    obs_only = issuer.headers("patient/Observation.rs", patient="p1")
    for url in ("Encounter", "Patient/p1", "Encounter/e-p1/_history"):
        outcome = _get(seeded, obs_only, url, 403)
        assert outcome["issue"][0]["code"] == "forbidden"
    read_only = issuer.headers("patient/Observation.r", patient="p1")
    assert _get(seeded, read_only, "Observation/o-p1")["id"] == "o-p1"
    _get(seeded, read_only, "Observation", 403)
    no_patient = issuer.headers("patient/*.rs")
    assert "no patient" in _get(seeded, no_patient, "Observation", 403)["issue"][0]["diagnostics"]
    granular = issuer.headers("patient/Observation.rs?category=laboratory", patient="p1")
    _get(seeded, granular, "Observation", 403)
    resp = seeded.post("/fhir/Observation", json=observation(None, "p1"), headers=obs_only)
    assert resp.status_code == 403


def test_user_scopes_as_granted(seeded: TestClient, issuer: Issuer) -> None:
    h = issuer.headers("user/Observation.rs user/Patient.read")
    assert ids(_get(seeded, h, "Observation")) == ["Observation/o-p1", "Observation/o-p2"]
    assert _get(seeded, h, "Patient/p2")["id"] == "p2"
    _get(seeded, h, "Encounter", 403)
    # an include of a type not granted is taken out of the Bundle
    included = _get(
        seeded, h, "Observation?_include=Observation:encounter&_include=Observation:patient"
    )
    assert ids(included) == ["Observation/o-p1", "Observation/o-p2", "Patient/p1", "Patient/p2"]
    assert seeded.delete("/fhir/Observation/o-p1", headers=h).status_code == 403


@pytest.mark.parametrize(
    "scope", ["patient/Observation.write patient/Observation.read", "patient/Observation.cruds"]
)
def test_patient_scope_writes_only_its_compartment(
    seeded: TestClient, issuer: Issuer, scope: str
) -> None:
    h = issuer.headers(scope, patient="p1")
    created = seeded.post("/fhir/Observation", json=observation(None, "p1"), headers=h)
    assert created.status_code == 201, created.text
    assert (
        seeded.post("/fhir/Observation", json=observation(None, "p2"), headers=h).status_code == 403
    )
    # moving p2's observation to p1, or p1's to p2: both refused
    assert (
        seeded.put("/fhir/Observation/o-p2", json=observation("o-p2", "p1"), headers=h).status_code
        == 403
    )
    assert (
        seeded.put("/fhir/Observation/o-p1", json=observation("o-p1", "p2"), headers=h).status_code
        == 403
    )
    assert (
        seeded.put(
            "/fhir/Observation/o-p1", json=observation("o-p1", "p1", "718-7"), headers=h
        ).status_code
        == 200
    )
    assert seeded.delete("/fhir/Observation/o-p2", headers=h).status_code == 403
    conditional = seeded.post(
        "/fhir/Observation",
        json=observation(None, "p1"),
        headers=h | {"If-None-Exist": "code=2160-0"},
    )
    assert conditional.status_code == 403
    system = issuer.headers("system/*.rs")
    assert _get(seeded, system, "Observation/o-p2")["subject"]["reference"] == "Patient/p2"
    assert seeded.delete("/fhir/Observation/o-p1", headers=h).status_code == 204


def _bundle(*entries: dict) -> dict:  # type: ignore[type-arg]
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def test_patient_scope_bundles(seeded: TestClient, issuer: Issuer) -> None:
    h = issuer.headers("patient/Observation.cruds", patient="p1")

    def post(pid: str) -> dict[str, Any]:
        return {
            "resource": observation(None, pid),
            "request": {"method": "POST", "url": "Observation"},
        }

    ok = seeded.post("/fhir/", json=_bundle(post("p1")), headers=h)
    assert ok.status_code == 200, ok.text
    refused = seeded.post("/fhir/", json=_bundle(post("p1"), post("p2")), headers=h)
    assert refused.status_code == 403 and "entry 1" in refused.text
    for entry in (
        {"request": {"method": "GET", "url": "Observation?patient=Patient/p2"}},
        {"request": {"method": "DELETE", "url": "Observation/o-p2"}},
        {"request": {"method": "DELETE", "url": "Observation?code=2160-0"}},
        {
            "resource": observation("o-p2", "p1"),
            "request": {"method": "PUT", "url": "Observation/o-p2"},
        },
        {
            "resource": {
                "resourceType": "Encounter",
                "status": "planned",
                "class": {"code": "AMB"},
                "subject": {"reference": "Patient/p1"},
            },
            "request": {"method": "POST", "url": "Encounter"},
        },
    ):
        resp = seeded.post("/fhir/", json=_bundle(entry), headers=h)
        assert resp.status_code == 403, (entry, resp.text)
    system = issuer.headers("system/*.rs")
    observations = _get(seeded, system, "Observation?patient=Patient/p2")
    assert ids(observations) == ["Observation/o-p2"]  # nothing of p2's changed


def test_batch_reads_are_filtered_for_user_scopes(seeded: TestClient, issuer: Issuer) -> None:
    h = issuer.headers("user/Observation.rs")
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Observation?_include=Observation:encounter"}},
        ],
    }
    resp = seeded.post("/fhir/", json=batch, headers=h)
    assert resp.status_code == 200, resp.text
    inner = resp.json()["entry"][0]["resource"]
    assert ids(inner) == ["Observation/o-p1", "Observation/o-p2"]
    batch["entry"].append({"request": {"method": "GET", "url": "Encounter"}})
    assert seeded.post("/fhir/", json=batch, headers=h).status_code == 403
