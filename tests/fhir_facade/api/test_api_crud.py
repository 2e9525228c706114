"""FHIR R4 RESTful interactions through the HTTP API: create, read, vread, update, delete,
conditional create, history, Prefer, _format and the CapabilityStatement (R4 3.1.0)."""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi.testclient import TestClient
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from fhir_facade.search.parameters import params_for
from tests.fhir_facade import factories as f

FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
BASE = "http://testserver/fhir"
SUPPORTED = {
    "Patient",
    "Practitioner",
    "Encounter",
    "Condition",
    "Observation",
    "ServiceRequest",
    "Specimen",
    "DiagnosticReport",
    "ImagingStudy",
    "MedicationRequest",
    "AllergyIntolerance",
    "DocumentReference",
    "Endpoint",
    "Provenance",
    "AuditEvent",
}
SAMPLE_VALUE = {
    "token": "abc",
    "string": "abc",
    "date": "ge2020-01-01",
    "reference": "Patient/abc",
    "quantity": "5.4",
    "number": "5",
}


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _history(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    bundle = f.json_of(client.get(f"/fhir/{path}", params=params or None), 200)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history"
    return bundle


def _versions(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    """(id, version) of each history entry, from the entry's ETag (deletions have no resource)."""
    out = []
    for e in bundle.get("entry", []):
        version = re.fullmatch(r'W/"(\d+)"', e["response"]["etag"])
        assert version, e
        out.append((e["fullUrl"].rsplit("/", 1)[1], version[1]))
    return out


# -- create / read / vread -----------------------------------------------------------------------


def test_create_then_read_and_vread(client: TestClient) -> None:
    sent = f.patient("Create", id="client-chosen", meta={"versionId": "9"})
    resp = client.post("/fhir/Patient", json=sent)
    body = f.json_of(resp, 201)

    assert body["id"] != "client-chosen" and FHIR_ID.match(body["id"])
    assert body["meta"]["versionId"] == "1"
    assert body["name"] == sent["name"]
    assert resp.headers["ETag"] == 'W/"1"'
    assert resp.headers["Location"] == f"{BASE}/Patient/{body['id']}/_history/1"
    last_updated = _instant(body["meta"]["lastUpdated"])
    assert parsedate_to_datetime(resp.headers["Last-Modified"]) == last_updated.replace(
        microsecond=0
    )
    other = f.create(client, f.patient("Create"))
    assert other["id"] != body["id"]
    _read_and_vread(client)


def _read_and_vread(client: TestClient) -> None:
    created = f.create(client, f.patient("Read", gender="male"))
    pid = created["id"]

    resp = client.get(f"/fhir/Patient/{pid}")
    assert f.json_of(resp, 200) == created
    assert resp.headers["ETag"] == 'W/"1"'
    assert parsedate_to_datetime(resp.headers["Last-Modified"]) == _instant(
        created["meta"]["lastUpdated"]
    ).replace(microsecond=0)

    assert f.json_of(client.get(f"/fhir/Patient/{pid}/_history/1"), 200) == created
    f.outcome(client.get(f"/fhir/Patient/{pid}/_history/2"), 404)
    f.outcome(client.get(f"/fhir/Patient/{pid}/_history/abc"), 404)
    f.outcome(client.get("/fhir/Patient/no-such-patient"), 404)
    f.outcome(client.get("/fhir/Patient/no-such-patient/_history/1"), 404)
    # the same id under another type is another resource
    f.outcome(client.get(f"/fhir/Observation/{pid}"), 404)


# -- update --------------------------------------------------------------------------------------


def test_update_if_match_update_as_create_and_noop(client: TestClient) -> None:
    created = f.create(client, f.patient("Before"))
    pid = created["id"]
    changed = {**f.patient("After"), "id": pid}

    resp = client.put(f"/fhir/Patient/{pid}", json=changed, headers={"If-Match": 'W/"1"'})
    v2 = f.json_of(resp, 200)
    assert v2["meta"]["versionId"] == "2" and v2["name"][0]["family"] == "After"
    assert resp.headers["ETag"] == 'W/"2"'
    assert _instant(v2["meta"]["lastUpdated"]) > _instant(created["meta"]["lastUpdated"])

    stale = {**f.patient("Stale"), "id": pid}
    issue = f.outcome(
        client.put(f"/fhir/Patient/{pid}", json=stale, headers={"If-Match": 'W/"1"'}), 412
    )
    assert issue["code"] == "conflict"
    assert f.json_of(client.get(f"/fhir/Patient/{pid}"), 200) == v2  # nothing written
    assert f.json_of(client.get(f"/fhir/Patient/{pid}/_history/1"), 200) == created

    # a strong ETag names the same version
    v3 = f.json_of(client.put(f"/fhir/Patient/{pid}", json=stale, headers={"If-Match": '"2"'}), 200)
    assert v3["meta"]["versionId"] == "3"
    _update_as_create_with_client_id(client)
    _noop_update_keeps_the_version(client)


def _update_as_create_with_client_id(client: TestClient) -> None:
    resource = {**f.patient("Chosen"), "id": "client-id-1"}
    resp = client.put("/fhir/Patient/client-id-1", json=resource)
    body = f.json_of(resp, 201)
    assert body["id"] == "client-id-1" and body["meta"]["versionId"] == "1"
    assert resp.headers["ETag"] == 'W/"1"'
    assert resp.headers["Location"] == f"{BASE}/Patient/client-id-1/_history/1"
    assert f.json_of(client.get("/fhir/Patient/client-id-1"), 200) == body


def _noop_update_keeps_the_version(client: TestClient) -> None:
    """Updating with identical content creates no new version (whitespace and key order aside)."""
    created = f.create(client, f.patient("Same", ["A", "B"], gender="female"))
    pid = created["id"]
    same = {"gender": "female", "id": pid, "name": created["name"], "resourceType": "Patient"}

    resp = client.put(f"/fhir/Patient/{pid}", json=same)
    body = f.json_of(resp, 200)
    assert body["meta"] == created["meta"]
    assert resp.headers["ETag"] == 'W/"1"'
    # the stored meta in the body (what a client read back) is not a change either
    body = f.json_of(client.put(f"/fhir/Patient/{pid}", json=created), 200)
    assert body["meta"]["versionId"] == "1"
    assert len(_history(client, f"Patient/{pid}/_history")["entry"]) == 1

    put = f.put(client, {**f.patient("Put"), "id": "noop-put"})
    again = f.put(client, {**f.patient("Put"), "id": "noop-put"}, status=200)
    assert again["meta"] == put["meta"]


# -- delete --------------------------------------------------------------------------------------


def test_delete_then_read_vread_and_delete_again(client: TestClient) -> None:
    created = f.create(client, f.patient("Gone", identifier=[f.identifier("del-1")]))
    pid = created["id"]

    resp = client.delete(f"/fhir/Patient/{pid}")
    assert resp.status_code == 204 and resp.content == b""
    issue = f.outcome(client.get(f"/fhir/Patient/{pid}"), 410)
    assert issue["code"] == "deleted"
    assert f.json_of(client.get(f"/fhir/Patient/{pid}/_history/1"), 200) == created
    f.outcome(client.get(f"/fhir/Patient/{pid}/_history/2"), 410)
    assert f.ids(f.search(client, "Patient", {"identifier": f"{f.MRN}|del-1"})) == []

    again = client.delete(f"/fhir/Patient/{pid}")
    assert again.status_code == 204
    history = _history(client, f"Patient/{pid}/_history")
    assert _versions(history) == [(pid, "2"), (pid, "1")]  # the second delete wrote nothing
    assert history["entry"][0]["request"]["method"] == "DELETE"
    assert "resource" not in history["entry"][0]

    # an update brings it back as a new version
    back = f.put(client, {**f.patient("Back"), "id": pid})
    assert back["meta"]["versionId"] == "3"
    assert f.json_of(client.get(f"/fhir/Patient/{pid}"), 200) == back


# -- conditional create --------------------------------------------------------------------------


def test_conditional_create_if_none_exist(client: TestClient) -> None:
    criteria = {"If-None-Exist": f"identifier={f.MRN}|cond-1"}
    first = client.post(
        "/fhir/Patient",
        json=f.patient("Cond", identifier=[f.identifier("cond-1")]),
        headers=criteria,
    )
    created = f.json_of(first, 201)

    second = client.post(
        "/fhir/Patient",
        json=f.patient("Other", identifier=[f.identifier("cond-1")]),
        headers=criteria,
    )
    existing = f.json_of(second, 200)
    assert existing == created
    assert second.headers["ETag"] == 'W/"1"'
    found = f.search(client, "Patient", {"identifier": f"{f.MRN}|cond-1"})
    assert f.ids(found) == [created["id"]]

    f.create(client, f.patient("Twin", identifier=[f.identifier("cond-1")]))
    third = client.post(
        "/fhir/Patient",
        json=f.patient("Third", identifier=[f.identifier("cond-1")]),
        headers=criteria,
    )
    f.outcome(third, 412)
    assert f.search(client, "Patient", {"identifier": f"{f.MRN}|cond-1"})["total"] == 2
    assert f.search(client, "Patient", {"family": "Third"})["total"] == 0

    # criteria are applied strictly: an unknown parameter must not turn into "matches all"
    unknown = {"If-None-Exist": "no-such-param=1"}
    f.outcome(client.post("/fhir/Patient", json=f.patient("Fourth"), headers=unknown), 400)
    assert f.search(client, "Patient", {"family": "Fourth"})["total"] == 0


# -- history -------------------------------------------------------------------------------------


def test_history_newest_first_paged_and_since(client: TestClient) -> None:
    pat = f.create(client, f.patient("Hist"))
    pid = pat["id"]
    obs = f.create(client, f.observation(f"Patient/{pid}"))
    f.put(client, {**f.patient("Hist2"), "id": pid}, status=200)
    f.put(client, {**f.patient("Hist3"), "id": pid}, status=200)
    assert client.delete(f"/fhir/Patient/{pid}").status_code == 204

    inst = _history(client, f"Patient/{pid}/_history")
    assert _versions(inst) == [(pid, "4"), (pid, "3"), (pid, "2"), (pid, "1")]
    assert [e["request"]["method"] for e in inst["entry"]] == ["DELETE", "PUT", "PUT", "POST"]
    assert inst["entry"][1]["resource"]["name"][0]["family"] == "Hist3"
    assert inst["entry"][3]["resource"] == pat
    stamps = [_instant(e["response"]["lastModified"]) for e in inst["entry"]]
    assert stamps == sorted(stamps, reverse=True)

    typed = _history(client, "Patient/_history")
    assert _versions(typed) == [(pid, "4"), (pid, "3"), (pid, "2"), (pid, "1")]
    system = _history(client, "_history")
    assert _versions(system) == [(pid, "4"), (pid, "3"), (pid, "2"), (obs["id"], "1"), (pid, "1")]
    f.outcome(client.get("/fhir/Patient/never-there/_history"), 404)
    _history_count_paging_and_since(client)


def _history_since(client: TestClient) -> None:
    early = f.create(client, f.patient("Early"))
    late = f.create(client, f.patient("Late"))
    later = f.put(client, {**late, "active": True}, status=200)

    since = late["meta"]["lastUpdated"]
    bundle = _history(client, "Patient/_history", _since=since)
    assert _versions(bundle) == [(late["id"], "2"), (late["id"], "1")]
    bundle = _history(client, "_history", _since=later["meta"]["lastUpdated"])
    assert _versions(bundle) == [(late["id"], "2")]
    bundle = _history(client, f"Patient/{early['id']}/_history", _since=since)
    assert bundle.get("entry", []) == []
    f.outcome(
        client.get("/fhir/_history", params={"_since": "yesterday"}), 400, expression="_since"
    )


def _history_count_paging_and_since(client: TestClient) -> None:
    pid = f.create(client, f.patient("Page0"))["id"]
    for n in range(1, 5):
        f.put(client, {**f.patient(f"Page{n}"), "id": pid}, status=200)

    seen: list[tuple[str, str]] = []
    sizes = []
    url: str | None = f"/fhir/Patient/{pid}/_history?_count=2"
    while url is not None:
        page = _history(client, f.local(url).removeprefix("/fhir/"))
        sizes.append(len(page.get("entry", [])))
        seen += _versions(page)
        url = f.link(page, "next")
        assert len(sizes) <= 5, "the next links do not end"
    assert sizes == [2, 2, 1]
    assert seen == [(pid, str(v)) for v in (5, 4, 3, 2, 1)]
    _history_since(client)


# -- Prefer and _format --------------------------------------------------------------------------


def test_prefer_return_and_format(client: TestClient) -> None:
    minimal = client.post(
        "/fhir/Patient", json=f.patient("Min"), headers={"Prefer": "return=minimal"}
    )
    assert minimal.status_code == 201 and minimal.content == b""
    location = minimal.headers["Location"]
    pid = location.split("/Patient/")[1].split("/")[0]
    assert minimal.headers["ETag"] == 'W/"1"'
    assert f.json_of(client.get(f"/fhir/Patient/{pid}"), 200)["name"][0]["family"] == "Min"

    rep = client.post(
        "/fhir/Patient", json=f.patient("Rep"), headers={"Prefer": "return=representation"}
    )
    assert f.json_of(rep, 201)["name"][0]["family"] == "Rep"

    oo = client.post(
        "/fhir/Patient", json=f.patient("OO"), headers={"Prefer": "return=OperationOutcome"}
    )
    body = f.json_of(oo, 201)
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "information"
    assert oo.headers["Location"].startswith(f"{BASE}/Patient/")

    upd = client.put(
        f"/fhir/Patient/{pid}",
        json={**f.patient("Min2"), "id": pid},
        headers={"Prefer": "return=minimal"},
    )
    assert upd.status_code == 200 and upd.content == b"" and upd.headers["ETag"] == 'W/"2"'
    _format_json_ok_and_xml_refused(client)


def _format_json_ok_and_xml_refused(client: TestClient) -> None:
    pid = f.create(client, f.patient("Fmt"))["id"]
    for fmt in ("json", "application/fhir+json", "application/json"):
        for path in (f"Patient/{pid}", "Patient", "metadata", f"Patient/{pid}/_history"):
            f.json_of(client.get(f"/fhir/{path}", params={"_format": fmt}), 200)
    for fmt in ("xml", "application/fhir+xml", "text/turtle"):
        for path in (f"Patient/{pid}", "Patient", "metadata"):
            issue = f.outcome(client.get(f"/fhir/{path}", params={"_format": fmt}), 406)
            assert issue["code"] == "not-supported"
    f.outcome(client.get(f"/fhir/Patient/{pid}", headers={"Accept": "application/fhir+xml"}), 406)
    f.json_of(
        client.get(
            f"/fhir/Patient/{pid}",
            headers={"Accept": "application/fhir+xml, application/fhir+json"},
        ),
        200,
    )


# -- CapabilityStatement -------------------------------------------------------------------------


def test_metadata_is_a_valid_truthful_capability_statement(client: TestClient) -> None:
    body = f.json_of(client.get("/fhir/metadata"), 200)
    CapabilityStatement.model_validate(body)
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"
    assert body["kind"] == "instance" and "json" in body["format"]
    rest = body["rest"][0]
    assert rest["mode"] == "server"
    assert {"transaction", "batch", "history-system"} <= {i["code"] for i in rest["interaction"]}

    by_type = {r["type"]: r for r in rest["resource"]}
    assert set(by_type) == SUPPORTED
    for rtype, res in by_type.items():
        codes = {i["code"] for i in res["interaction"]}
        assert {"read", "vread", "update", "delete", "create", "search-type"} <= codes, rtype
        assert {"history-instance", "history-type"} <= codes, rtype
        declared = {p["name"]: p["type"] for p in res["searchParam"]}
        expected = {name: p.type for name, p in params_for(rtype).items()}
        expected |= {"_id": "token", "_lastUpdated": "date"}
        assert declared == expected, rtype
    _every_declared_search_param_is_searchable(client)


def _every_declared_search_param_is_searchable(client: TestClient) -> None:
    """The statement tells the truth: each declared parameter, _include and _revinclude is
    accepted under `handling=strict` and applied (it appears in the self link)."""
    rest = f.json_of(client.get("/fhir/metadata"), 200)["rest"][0]
    strict = {"Prefer": "handling=strict"}
    refused = []
    for res in rest["resource"]:
        pairs = [(p["name"], SAMPLE_VALUE[p["type"]]) for p in res["searchParam"]]
        pairs += [("_include", inc) for inc in res.get("searchInclude", [])]
        pairs += [("_revinclude", inc) for inc in res.get("searchRevInclude", [])]
        for start in range(0, len(pairs), 60):  # the server takes at most 64 parameters
            chunk = pairs[start : start + 60]
            resp = f.check(client.get(f"/fhir/{res['type']}", params=chunk, headers=strict))
            if resp.status_code != 200:
                refused.append((res["type"], resp.json()["issue"]))
                continue
            applied = parse_qsl(urlsplit(f.link(resp.json(), "self") or "").query)
            missing = [p for p in chunk if p not in applied]
            if missing:
                refused.append((res["type"], missing))
    assert refused == []
