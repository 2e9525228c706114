"""Bad input gets the right 4xx with an OperationOutcome that says what is wrong and where, and
nothing is partly written. No request here may produce a 5xx (`factories.check` asserts it on
every response)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from tests.fhir_facade import factories as f

JSON_HEADERS = {"Content-Type": "application/fhir+json"}


def _total(client: TestClient, rtype: str, **params: str) -> int:
    total: int = f.search(client, rtype, params or None)["total"]
    return total


def test_malformed_json_and_non_object_bodies(client: TestClient) -> None:
    existing = f.put(client, {**f.patient("Keep"), "id": "keep"})
    for raw in (b'{"resourceType": "Patient",', b"{'single': 'quotes'}", b'{"a": NaN}'):
        issue = f.outcome(client.post("/fhir/Patient", content=raw, headers=JSON_HEADERS), 400)
        assert "JSON" in issue["diagnostics"]
        f.outcome(client.put("/fhir/Patient/keep", content=raw, headers=JSON_HEADERS), 400)
        f.outcome(client.post("/fhir/", content=raw, headers=JSON_HEADERS), 400)
    for raw in (b"[]", b'"Patient"', b"42", b"null", b'[{"resourceType": "Patient"}]'):
        issue = f.outcome(client.post("/fhir/Patient", content=raw, headers=JSON_HEADERS), 400)
        assert "object" in issue["diagnostics"]
        f.outcome(client.put("/fhir/Patient/keep", content=raw, headers=JSON_HEADERS), 400)
    f.outcome(client.post("/fhir/Patient", content=b"  ", headers=JSON_HEADERS), 400)
    assert _total(client, "Patient") == 1
    assert f.json_of(client.get("/fhir/Patient/keep"), 200) == existing


def test_resource_type_missing_or_not_the_urls(client: TestClient) -> None:
    obs = f.observation("Patient/x")
    f.outcome(client.post("/fhir/Patient", json=obs), 400, expression="resourceType")
    f.outcome(
        client.put("/fhir/Patient/x", json={**obs, "id": "x"}), 400, expression="resourceType"
    )
    f.outcome(
        client.post("/fhir/Patient", json={"name": [{"family": "NoType"}]}),
        400,
        expression="resourceType",
    )
    f.outcome(
        client.post("/fhir/Patient", json={**f.patient(), "resourceType": 7}),
        400,
        expression="resourceType",
    )
    assert _total(client, "Patient") == 0 and _total(client, "Observation") == 0


def test_structurally_invalid_resources_are_422_naming_the_element(client: TestClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (f.patient("Bad", birthDate="not-a-date"), "Patient.birthDate"),
        (f.patient("Bad", birthDate="2020-13-01"), "Patient.birthDate"),
        (f.observation("Patient/x", valueQuantity="abc"), "Observation.valueQuantity"),
        (
            f.observation("Patient/x", valueQuantity={"value": "abc"}),
            "Observation.valueQuantity.value",
        ),
        ({"resourceType": "Patient", "name": "Bad"}, "Patient.name"),
        ({"resourceType": "Patient", "name": [{"given": "Bad"}]}, "Patient.name[0].given"),
        (f.patient("Bad", unknownElement=1), "Patient.unknownElement"),
        (f.patient("Bad", telecom=[{"system": "phone", "value": 5}]), "Patient.telecom[0].value"),
        # FHIR strings SHALL NOT hold control characters other than tab, CR and LF
        (f.patient("Bad\u0000Nul"), "Patient.name[0].family"),
        (f.patient("Ok", ["Bad\u0007Bell"]), "Patient.name[0].given[0]"),
    ]
    wrong = []
    for resource, where in cases:
        resp = f.check(client.post(f"/fhir/{resource['resourceType']}", json=resource))
        body = resp.json()
        found = [x for i in body.get("issue", []) for x in i.get("expression", [])]
        if (
            resp.status_code != 422
            or body.get("resourceType") != "OperationOutcome"
            or where not in found
        ):
            wrong.append((where, resp.status_code, found))
    assert wrong == []
    # the same checks guard updates
    f.outcome(
        client.put("/fhir/Patient/p1", json={**f.patient(birthDate="x"), "id": "p1"}),
        422,
        expression="Patient.birthDate",
    )
    assert _total(client, "Patient") == 0 and _total(client, "Observation") == 0


def test_id_problems(client: TestClient) -> None:
    original = f.put(client, {**f.patient("Orig"), "id": "upd-1"})
    f.outcome(
        client.put("/fhir/Patient/upd-1", json={**f.patient("X"), "id": "upd-2"}),
        400,
        expression="Patient.id",
    )
    f.outcome(
        client.put("/fhir/Patient/upd-1", json=f.patient("NoId")), 400, expression="Patient.id"
    )
    f.outcome(
        client.put("/fhir/Patient/upd-1", json={**f.patient("Num"), "id": 17}),
        400,
        expression="Patient.id",
    )
    # ids the FHIR id type does not allow: too long, odd characters
    for bad in ("a" * 65, "a$b", "a b", "a_b"):
        f.outcome(
            client.put(f"/fhir/Patient/{bad}", json={**f.patient("X"), "id": bad}),
            400,
            expression="Patient.id",
        )
    assert f.json_of(client.get("/fhir/Patient/upd-1"), 200) == original
    assert _total(client, "Patient") == 1
    _ids_that_cannot_exist_are_refused_not_crashed_on(client)


def _ids_that_cannot_exist_are_refused_not_crashed_on(client: TestClient) -> None:
    for bad in ("a" * 65, "a%00b", "a$b"):
        for method in ("GET", "DELETE"):
            f.outcome(client.request(method, f"/fhir/Patient/{bad}"), 400, expression="Patient.id")
        f.outcome(client.get(f"/fhir/Patient/{bad}/_history"), 400, expression="Patient.id")
        f.outcome(client.get(f"/fhir/Patient/{bad}/_history/1"), 400, expression="Patient.id")


def test_unknown_resource_types_are_404(client: TestClient) -> None:
    for rtype in ("Foo", "patient", "Bundle", "OperationOutcome"):
        issue = f.outcome(client.get(f"/fhir/{rtype}"), 404)
        assert rtype in issue["diagnostics"]
        f.outcome(client.get(f"/fhir/{rtype}/1"), 404)
        f.outcome(client.get(f"/fhir/{rtype}/1/_history"), 404)
        f.outcome(client.get(f"/fhir/{rtype}/_history"), 404)
        f.outcome(client.post(f"/fhir/{rtype}", json={"resourceType": rtype}), 404)
        f.outcome(client.put(f"/fhir/{rtype}/1", json={"resourceType": rtype, "id": "1"}), 404)
        f.outcome(client.delete(f"/fhir/{rtype}/1"), 404)
        f.outcome(client.post(f"/fhir/{rtype}/_search"), 404)


def test_search_parameters_unknown_or_with_bad_values(client: TestClient) -> None:
    f.create(client, f.patient("Lenient"))
    bundle = f.search(
        client, "Patient", [("family", "lenient"), ("foo", "bar"), ("given:foo", "x")]
    )
    assert bundle["total"] == 1
    assert f.link(bundle, "self") == "http://testserver/fhir/Patient?family=lenient"
    lenient = f.search(client, "Patient", {"foo": "bar"}, headers={"Prefer": "handling=lenient"})
    assert f.link(lenient, "self") == "http://testserver/fhir/Patient"

    strict = {"Prefer": "handling=strict"}
    f.outcome(
        client.get("/fhir/Patient", params={"foo": "bar"}, headers=strict), 400, expression="foo"
    )
    f.outcome(
        client.get("/fhir/Patient", params={"given:foo": "x"}, headers=strict),
        400,
        expression="given:foo",
    )
    f.outcome(
        client.get("/fhir/Patient", params={"organization.name": "x"}, headers=strict),
        400,
        expression="organization.name",
    )
    f.outcome(
        client.post("/fhir/Patient/_search", data={"foo": "bar"}, headers=strict),
        400,
        expression="foo",
    )
    _bad_search_values_are_400_naming_the_parameter(client)


def _bad_search_values() -> Iterator[tuple[str, str, str]]:
    yield "Patient", "birthdate", "ge2020-13-01"
    yield "Patient", "birthdate", "2020-02-30"
    yield "Patient", "birthdate", "yesterday"
    yield "Patient", "birthdate", ""
    yield "Patient", "_lastUpdated", "gt2020-01-01T25:00:00Z"
    yield "Patient", "_count", "abc"
    yield "Patient", "_count", "-1"
    yield "Patient", "_total", "some"
    yield "Patient", "_sort", "nonexistent"
    yield "Patient", "_sort", "general-practitioner"
    yield "Patient", "active:missing", "maybe"
    yield "Patient", "general-practitioner", "not a reference"
    yield "Observation", "value-quantity", "abc"
    yield "Observation", "value-quantity", "gtabc"
    yield "Observation", "value-quantity", "5.4|a|b|c"
    yield "Observation", "value-quantity", "NaN"
    yield "Observation", "_include", "Observation"
    # control characters cannot be in any stored string; a NUL must not reach the database
    yield "Patient", "name", "a\u0000b"
    yield "Patient", "identifier", "a\u0000b"
    yield "Patient", "_id", "a\u0000b"
    yield "Patient", "general-practitioner", "Practitioner/a\u0000b"


def _bad_search_values_are_400_naming_the_parameter(client: TestClient) -> None:
    wrong = []
    for rtype, name, value in _bad_search_values():
        resp = f.check(client.get(f"/fhir/{rtype}", params={name: value}))
        body = resp.json()
        found = [x for i in body.get("issue", []) for x in i.get("expression", [])]
        if resp.status_code != 400 or name not in found:
            wrong.append((name, value, resp.status_code, found))
    assert wrong == []


def test_oversized_bodies_are_413_and_not_written(client: TestClient) -> None:
    big = f.patient("Big", ["x" * 1000] * 70)  # about 70 KiB, over the fixture's 64 KiB
    f.outcome(client.post("/fhir/Patient", json=big), 413)
    f.outcome(client.put("/fhir/Patient/big", json={**big, "id": "big"}), 413)
    f.outcome(
        client.post(
            "/fhir/", json={"resourceType": "Bundle", "type": "batch", "entry": [f.post_entry(big)]}
        ),
        413,
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while streaming
        yield b'{"resourceType": "Patient", "name": [{"given": ['
        for _ in range(70):
            yield b'"' + b"x" * 1000 + b'",'
        yield b'"y"]}]}'

    issue = f.outcome(client.post("/fhir/Patient", content=chunks(), headers=JSON_HEADERS), 413)
    assert issue["code"] == "too-costly"
    f.outcome(client.post("/fhir/Patient/_search", data={"family": "x" * 70_000}), 413)
    assert _total(client, "Patient") == 0
    # just under the limit is fine
    f.create(client, f.patient("Fits", ["x" * 1000] * 50))


def test_version_conflicts_write_nothing(client: TestClient) -> None:
    v1 = f.put(client, {**f.patient("V1"), "id": "ver"})
    v2 = f.put(client, {**f.patient("V2"), "id": "ver"}, status=200)
    stale = {**f.patient("Stale"), "id": "ver"}
    issue = f.outcome(
        client.put("/fhir/Patient/ver", json=stale, headers={"If-Match": 'W/"1"'}), 412
    )
    assert "version" in issue["diagnostics"]
    f.outcome(client.put("/fhir/Patient/ver", json=stale, headers={"If-Match": 'W/"3"'}), 412)
    f.outcome(client.put("/fhir/Patient/ver", json=stale, headers={"If-Match": "version 2"}), 400)
    new = {**f.patient("New"), "id": "ver-new"}
    f.outcome(client.put("/fhir/Patient/ver-new", json=new, headers={"If-Match": 'W/"1"'}), 412)
    assert f.json_of(client.get("/fhir/Patient/ver"), 200) == v2
    assert f.json_of(client.get("/fhir/Patient/ver/_history/1"), 200) == v1
    f.outcome(client.get("/fhir/Patient/ver-new"), 404)
    assert _total(client, "Patient", family="Stale") == 0


def test_transaction_with_one_invalid_entry_is_rejected_whole(client: TestClient) -> None:
    doomed = f.put(client, {**f.patient("Doomed"), "id": "doomed"})
    entries = [
        f.post_entry(f.patient("TxOk"), "urn:uuid:5b8a9c1e-0000-4000-8000-000000000001"),
        {"request": {"method": "DELETE", "url": "Patient/doomed"}},
        f.post_entry(
            f.observation("urn:uuid:5b8a9c1e-0000-4000-8000-000000000001", valueQuantity="abc")
        ),
        {
            "resource": {**f.patient("TxPut"), "id": "tx-put"},
            "request": {"method": "PUT", "url": "Patient/tx-put"},
        },
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    issue = f.outcome(
        client.post("/fhir/", json=bundle), 422, expression="Bundle.entry[2].resource.valueQuantity"
    )
    assert issue["code"] == "invalid"
    assert _total(client, "Patient", family="TxOk") == 0
    assert _total(client, "Observation") == 0
    f.outcome(client.get("/fhir/Patient/tx-put"), 404)
    assert f.json_of(client.get("/fhir/Patient/doomed"), 200) == doomed  # the DELETE rolled back

    # a bad entry shape is named too
    bundle["entry"] = [entries[0], {"request": {"method": "OPTIONS", "url": "Patient/x"}}]
    f.outcome(client.post("/fhir/", json=bundle), 400, expression="Bundle.entry[1].request.method")
    bundle["entry"] = [entries[0], {"request": {"method": "PATCH", "url": "Patient/x"}}]
    f.outcome(client.post("/fhir/", json=bundle), 400, expression="Bundle.entry[1].request")
    bundle["entry"] = [entries[0], {"request": {"method": "POST", "url": "Patient"}}]
    f.outcome(client.post("/fhir/", json=bundle), 400, expression="Bundle.entry[1].resource")
    bundle["entry"] = [entries[0], f.post_entry({**f.observation(), "resourceType": "Patient"})]
    f.outcome(client.post("/fhir/", json=bundle), 422)
    bundle["entry"] = [
        entries[0],
        {**f.post_entry(f.patient()), "request": {"method": "POST", "url": "Observation"}},
    ]
    f.outcome(
        client.post("/fhir/", json=bundle), 400, expression="Bundle.entry[1].resource.resourceType"
    )
    f.outcome(
        client.post("/fhir/", json={**bundle, "type": "collection"}), 400, expression="Bundle.type"
    )
    f.outcome(client.post("/fhir/", json=f.patient()), 400, expression="resourceType")
    assert _total(client, "Patient") == 1


def _unsupported_content_types_are_415(client: TestClient) -> None:
    body = b'{"resourceType": "Patient"}'
    for ctype in ("text/plain", "application/fhir+xml", "application/xml", "multipart/form-data"):
        headers = {"Content-Type": ctype}
        f.outcome(client.post("/fhir/Patient", content=body, headers=headers), 415)
        f.outcome(client.put("/fhir/Patient/ct", content=body, headers=headers), 415)
        f.outcome(client.post("/fhir/", content=body, headers=headers), 415)
    f.outcome(client.post("/fhir/Patient/_search", content=b"{}", headers=JSON_HEADERS), 415)
    for ctype in (
        "application/json",
        "application/fhir+json; charset=utf-8",
        "application/json+fhir",
    ):
        f.json_of(client.post("/fhir/Patient", content=body, headers={"Content-Type": ctype}), 201)
    assert _total(client, "Patient") == 3


def test_content_types_unknown_routes_and_wrong_methods(client: TestClient) -> None:
    _unsupported_content_types_are_415(client)
    for path in ("/fhir/Patient/x/y/z", "/fhir/Patient/x/_history/1/extra", "/fhir/a/b/c/d/e"):
        resp = client.get(path)
        issue = f.outcome(resp, 404)
        assert "html" not in resp.headers["content-type"]
        assert issue["code"] == "not-found"
    for method, path in (
        ("PATCH", "/fhir/Patient/x"),
        ("DELETE", "/fhir/Patient"),
        ("PUT", "/fhir/Patient"),
        ("PUT", "/fhir/metadata"),
        ("DELETE", "/fhir/metadata"),
        ("POST", "/fhir/Patient/x/_history"),
    ):
        resp = client.request(method, path, json={})
        f.outcome(resp, 405)
        allowed = {m.strip() for m in resp.headers.get("Allow", "").split(",") if m.strip()}
        assert allowed and method not in allowed, (method, path, resp.headers)
