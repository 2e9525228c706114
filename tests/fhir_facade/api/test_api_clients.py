"""Independent FHIR clients against the live server (uvicorn on loopback): fhirpy drives CRUD,
search and paging; the strict R4 models of `fhirclient` check every resource and Bundle the
server serves (they catch R4 type errors that the server's R4B validation lets through)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound

from tests.fhir_facade import factories as f

PAT = "urn:uuid:6a1f0c2e-2222-4b7c-8d2e-000000000001"


def _fhirpy(live_base: str) -> AsyncFHIRClient:
    return AsyncFHIRClient(f"{live_base}/fhir")


async def test_fhirpy_crud(live_base: str) -> None:
    client = _fhirpy(live_base)
    pat = client.resource(
        "Patient", **{k: v for k, v in f.patient("Fhirpy", ["Ada"]).items() if k != "resourceType"}
    )
    pat["birthDate"] = "1990-01-01"
    await pat.save()
    assert pat.id and pat["meta"]["versionId"] == "1"
    f.validate_r4(pat.serialize())

    read = await client.reference("Patient", pat.id).to_resource()
    assert read.serialize() == pat.serialize()

    pat["active"] = True
    await pat.save()  # an update: PUT with the id
    assert pat["meta"]["versionId"] == "2" and pat["active"] is True
    f.validate_r4(pat.serialize())

    obs = client.resource(
        "Observation",
        status="final",
        code={"coding": [{"system": f.LOINC, "code": "2345-7"}]},
        subject=pat.to_reference(),
        valueQuantity=f.quantity(5.4),
    )
    await obs.save()
    found = await client.resources("Observation").search(patient=pat.id).fetch()
    assert [o.id for o in found] == [obs.id]
    assert found[0]["subject"]["reference"] == f"Patient/{pat.id}"
    first = await client.resources("Patient").search(_id=pat.id).first()
    assert first is not None and first["meta"]["versionId"] == "2"

    bad = client.resource("Patient", birthDate="not-a-date")
    with pytest.raises(OperationOutcome):
        await bad.save()

    await obs.delete()
    await pat.delete()
    with pytest.raises(ResourceNotFound):  # 410 Gone
        await client.reference("Patient", pat.id).to_resource()
    assert await client.resources("Patient").search(family="fhirpy").count() == 0


async def test_fhirpy_search_sort_limit_and_fetch_all(live_base: str) -> None:
    client = _fhirpy(live_base)
    for year in (1971, 1990, 1985, 2001, 1960, 1999):
        await client.resource(
            "Patient", name=[{"family": "Sorter"}], birthDate=f"{year}-06-01"
        ).save()
    for i in (4, 17, 9, 0, 22, 13, 1, 8, 20, 3, 15, 11, 6, 19, 2, 10, 21, 5, 12, 18, 7, 16, 14):
        await client.resource("Patient", name=[{"family": "Pager", "given": [f"G{i:02d}"]}]).save()

    newest = (
        await client.resources("Patient")
        .search(family="sorter")
        .sort("-birthdate")
        .limit(3)
        .fetch()
    )
    assert [p["birthDate"][:4] for p in newest] == ["2001", "1999", "1990"]
    older = (
        await client.resources("Patient")
        .search(family="sorter", birthdate="lt1980")
        .sort("birthdate")
        .fetch()
    )
    assert [p["birthDate"][:4] for p in older] == ["1960", "1971"]
    assert await client.resources("Patient").search(family="sorter").count() == 6

    everyone = (
        await client.resources("Patient").search(family="pager").sort("given").limit(5).fetch_all()
    )
    givens = [p["name"][0]["given"][0] for p in everyone]
    assert givens == [f"G{i:02d}" for i in range(23)]  # 5 pages, each resource once, in order
    for p in everyone:
        f.validate_r4(p.serialize())


async def test_every_served_resource_is_strict_r4(live_base: str) -> None:
    """Create one resource of each supported type, then check with fhirclient's strict R4 models
    every read, vread, search Bundle and entry, and history Bundle the server answers with."""
    resources = f.one_of_each(PAT)
    entries = [f.post_entry(resources[0], PAT)] + [f.post_entry(r) for r in resources[1:]]
    async with httpx.AsyncClient(base_url=f"{live_base}/fhir") as http:
        resp = await http.post(
            "/", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}
        )
        created = f.json_of(resp, 200)
        f.validate_r4(created)
        assert len(created["entry"]) == 15

        served: list[dict[str, Any]] = []
        for entry in created["entry"]:
            rtype, rid = entry["response"]["location"].split("/")[:2]
            served.append(f.json_of(await http.get(f"/{rtype}/{rid}"), 200))
            served.append(f.json_of(await http.get(f"/{rtype}/{rid}/_history/1"), 200))
            bundle = f.json_of(await http.get(f"/{rtype}", params={"_count": "5"}), 200)
            f.validate_r4(bundle)
            served += [e["resource"] for e in bundle["entry"]]
            assert [e["resource"]["id"] for e in bundle["entry"]] == [rid]
        included = f.json_of(
            await http.get("/Patient", params={"_revinclude": "Observation:patient"}), 200
        )
        f.validate_r4(included)
        served += [e["resource"] for e in included["entry"]]
        history = f.json_of(await http.get("/_history"), 200)
        f.validate_r4(history)
        served += [e["resource"] for e in history["entry"]]
        f.validate_r4(f.json_of(await http.get("/metadata"), 200))

    assert {r["resourceType"] for r in served} == {r["resourceType"] for r in resources}
    errors = []
    for resource in served:
        try:
            f.validate_r4(resource)
        except Exception as exc:  # report every failure, not the first
            errors.append(f"{resource['resourceType']}/{resource['id']}: {exc}")
    assert errors == []
