"""The simulator's JSON API: routes, authentication, envelopes, errors, catalog queries, paging."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from simulators.senaite import SenaiteState, create_senaite_app
from tests.simulators.senaite.senaite_sim_support import API, Clock

BASE = "http://senaite:8080"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def http(clock: Clock) -> Iterator[TestClient]:
    app = create_senaite_app(users={"admin": "admin", "lab": "s3cret"}, clock=clock)
    with TestClient(app, base_url=BASE) as client:
        client.auth = ("admin", "admin")
        yield client


def state(http: TestClient) -> SenaiteState:
    app: Any = http.app
    senaite: SenaiteState = app.state.senaite
    return senaite


def new_client(http: TestClient, name: str = "Clinic") -> dict[str, Any]:
    body = {"portal_type": "Client", "Name": name, "ClientID": name.upper()}
    item: dict[str, Any] = http.post(f"{API}/create", json=body).json()["items"][0]
    return item


def test_version_is_public() -> None:
    app = create_senaite_app()
    with TestClient(app, base_url=BASE) as anonymous:
        body = anonymous.get(f"{API}/version").json()
    assert set(body) == {"url", "date", "version", "_runtime"}
    assert body["url"] == f"{BASE}{API}/version"


def test_current_user_and_wrong_credentials_are_anonymous(http: TestClient) -> None:
    me = http.get(f"{API}/users/current").json()
    assert me["count"] == 1 and me["items"][0]["username"] == "admin"
    assert me["items"][0]["authenticated"] is True
    wrong = http.get(f"{API}/users/current", auth=("admin", "nope")).json()["items"][0]
    assert wrong["authenticated"] is False and wrong["username"] == "Anonymous User"
    auth = http.get(f"{API}/auth", auth=("admin", "nope"))
    assert auth.status_code == 401 and "basic" in auth.headers["www-authenticate"].lower()
    assert http.get(f"{API}/auth").status_code == 200


def test_anonymous_sees_nothing_and_cannot_write(http: TestClient) -> None:
    new_client(http)
    anonymous = http.get(f"{API}/Client", auth=("admin", "bad")).json()
    assert anonymous["count"] == 0 and anonymous["items"] == []
    denied = http.post(
        f"{API}/create", json={"portal_type": "Client", "Name": "X"}, auth=("nobody", "x")
    )
    assert denied.status_code == 401
    body = denied.json()
    assert set(body) == {"success", "error", "_runtime"} and body["success"] is False


def test_cookie_login_and_logout(http: TestClient) -> None:
    assert http.get(f"{API}/login", params={"__ac_name": "lab"}, auth=None).status_code == 400
    bad = http.get(f"{API}/login", params={"__ac_name": "lab", "__ac_password": "x"}, auth=None)
    assert bad.status_code == 401 and bad.json()["error"] == "Invalid Credentials"
    ok = http.post(f"{API}/login", data={"__ac_name": "lab", "__ac_password": "s3cret"}, auth=None)
    assert ok.status_code == 200 and ok.json()["items"][0]["username"] == "lab"
    cookie = ok.cookies["__ac"]
    me = http.get(f"{API}/users/current", auth=None).json()  # the cookie jar sends __ac
    assert me["items"][0]["username"] == "lab"
    http.get(f"{API}/logout", auth=None)
    http.cookies.set("__ac", cookie)  # replaying the old session cookie
    again = http.get(f"{API}/users/current", auth=None).json()
    assert again["items"][0]["authenticated"] is False


def test_paging_envelope(http: TestClient) -> None:
    first = http.get(f"{API}/AnalysisService", params={"limit": 5}).json()
    assert (first["count"], first["pagesize"], first["page"], first["pages"]) == (18, 5, 1, 4)
    assert first["previous"] is None and "b_start=5" in first["next"]
    last = http.get(f"{API}/analysisservice", params={"limit": 5, "b_start": 15}).json()
    assert (last["page"], len(last["items"]), last["next"]) == (4, 3, None)
    assert "b_start=10" in last["previous"]
    default = http.get(f"{API}/AnalysisService").json()
    assert default["pagesize"] == 25 and len(default["items"]) == 18
    seen = [
        i["uid"]
        for b in (0, 5, 10, 15)
        for i in http.get(f"{API}/AnalysisService", params={"limit": 5, "b_start": b}).json()[
            "items"
        ]
    ]
    assert len(set(seen)) == 18


def test_items_are_brains_unless_complete(http: TestClient) -> None:
    brief = http.get(f"{API}/AnalysisService", params={"getKeyword": "CREA"}).json()["items"]
    full = http.get(f"{API}/AnalysisService", params={"getKeyword": "CREA", "complete": "y"})
    assert len(brief) == 1 and "Unit" not in brief[0] and brief[0]["getKeyword"] == "CREA"
    assert full.json()["items"][0]["Unit"] == "mg/dL"


def test_errors_and_routes(http: TestClient) -> None:
    missing = http.get(f"{API}/NoSuchType")
    assert missing.status_code == 404 and missing.json()["error"] == "Not Found"
    assert http.get(f"{API}/{'0' * 32}").status_code == 404
    assert http.get(f"{API}/Client/{'0' * 32}").json()["count"] == 0
    no_member = http.post(f"{API}/{'0' * 32}", json={})
    assert no_member.status_code == 500 and "has no member" in no_member.json()["error"]
    nowhere = http.post(f"{API}/create", json={"portal_type": "Contact", "Firstname": "A"})
    assert nowhere.status_code == 404
    in_setup = http.post(
        f"{API}/create", json={"portal_type": "Contact", "parent_path": "/senaite/bika_setup"}
    )
    assert in_setup.status_code == 401
    unnamed = http.post(f"{API}/create", json={"portal_type": "Client", "ClientID": "X"})
    assert unnamed.status_code == 400 and "Name" in unnamed.json()["error"]
    assert http.get(f"{API}/Client").json()["count"] == 0  # a failed creation leaves nothing


def test_record_by_uid_and_method_override(http: TestClient) -> None:
    client = new_client(http)
    record = http.get(f"{API}/{client['uid']}").json()
    assert record["uid"] == client["uid"] and "items" not in record
    updated = http.post(
        f"{API}/{client['uid']}",
        json={"Phone": "555"},
        headers={"X-HTTP-Method-Override": "update"},
    ).json()
    assert updated["items"][0]["Phone"] == "555"
    by_path = http.post(f"{API}/update", json={"path": client["path"], "Fax": "1"}).json()
    assert by_path["items"][0]["Fax"] == "1"
    form = http.post(f"{API}/update", data={"uid": client["uid"], "TaxNumber": "T-1"}).json()
    assert form["items"][0]["TaxNumber"] == "T-1"


def test_catalog_filters_sort_and_path(http: TestClient) -> None:
    for name in ("Beta", "Alpha", "Gamma"):
        new_client(http, name)
    clients = http.get(
        f"{API}/search",
        params={"portal_type": "Client", "sort_on": "title", "sort_order": "descending"},
    ).json()
    assert [c["title"] for c in clients["items"]] == ["Gamma", "Beta", "Alpha"]
    limited = http.get(f"{API}/Client", params={"sort_on": "title", "sort_limit": 2}).json()
    assert [c["title"] for c in limited["items"]] == ["Alpha", "Beta"]
    assert http.get(f"{API}/Client", params={"getClientID": "BETA"}).json()["count"] == 1
    assert http.get(f"{API}/Client", params={"q": "gam"}).json()["count"] == 1
    assert http.get(f"{API}/Client", params={"unknown_index": "x"}).json()["count"] == 3
    under = http.get(
        f"{API}/search",
        params={
            "path": "/senaite/bika_setup/bika_sampletypes",
            "depth": 1,
            "catalog": "senaite_catalog_setup",
        },
    )
    assert under.json()["count"] == 4


def test_modified_range_queries_work_by_the_minute(http: TestClient, clock: Clock) -> None:
    early = new_client(http, "Early")  # 08:20:33
    clock.advance(20)
    same_minute = new_client(http, "Same")
    clock.advance(120)
    late = new_client(http, "Late")

    def titles(**params: Any) -> list[str]:
        body = http.get(f"{API}/Client", params={"sort_on": "modified", **params}).json()
        return [i["title"] for i in body["items"]]

    assert titles(
        **{"modified.query:record:date": same_minute["modified"], "modified.range:record": "min"}
    ) == ["Early", "Same", "Late"]
    assert titles(
        **{"modified.query:record": late["modified"], "modified.range:record": "min"}
    ) == ["Late"]
    assert titles(
        **{"modified.query:record": early["modified"], "modified.range:record": "max"}
    ) == ["Early", "Same"]
    between = [
        ("modified.query:record:list:date", early["modified"]),
        ("modified.query:record:list:date", same_minute["modified"]),
        ("modified.range:record", "min:max"),
        ("sort_on", "modified"),
    ]
    body = http.get(f"{API}/Client", params=between).json()
    assert [i["title"] for i in body["items"]] == ["Early", "Same"]
    assert titles(recent_modified="today") == ["Early", "Same", "Late"]
    bad = http.get(
        f"{API}/Client",
        params={"modified.query:record": "not a date", "modified.range:record": "min"},
    )
    assert bad.status_code == 200 and bad.json()["success"] is False


def test_injected_failures_then_recovery(http: TestClient) -> None:
    state(http).inject_failures(2, status=503)
    assert [http.get(f"{API}/version").status_code for _ in range(3)] == [503, 503, 200]
