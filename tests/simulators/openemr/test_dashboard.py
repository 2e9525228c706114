"""The patient dashboard's "SMART Enabled Apps" card and its EHR launch (source-systems.md §1.10).

In process (the simulator is a plain ASGI app): which clients the card lists, and the launch link
redirecting to the app's launch URI with `launch`, `iss` and `aud`. The launch token is then
redeemed by the authorize endpoint in tests/cdss/test_demo.py, over real HTTP.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from simulators.openemr.app import create_openemr_app
from simulators.openemr.dashboard import DASHBOARD, FINDER, dashboard_url

BASE = "http://emr.test"
APP_SCOPES = "openid fhirUser launch api:fhir user/Patient.rs"


def _register(http: TestClient, name: str, scope: str, launch: str | None) -> str:
    body = {
        "application_type": "private",
        "client_name": name,
        "redirect_uris": ["https://app.test/callback"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": scope,
    }
    if launch:
        body["launch_uris"] = [launch]
    answer = http.post("/oauth2/default/registration", json=body)
    assert answer.status_code == 200, answer.text
    assert "launch_uris" not in answer.json()  # kept by the server, not echoed (§1.2)
    return str(answer.json()["client_id"])


def test_card_lists_enabled_launch_apps_and_the_link_launches_the_patient() -> None:
    app = create_openemr_app(public_base=BASE)
    row = app.state.store.insert(
        "patient_data",
        {"pid": 7, "fname": "Ada", "lname": "Lovelace", "pubpid": "MRN-1", "DOB": "1950-01-02"},
    )
    with TestClient(app, base_url=BASE) as http:
        launchable = _register(http, "Risk viewer", APP_SCOPES, "https://app.test/launch?x=1")
        _register(http, "No launch URI", APP_SCOPES, None)
        _register(http, "No launch scope", "openid api:fhir user/Patient.rs", "https://b.test/l")
        disabled = _register(http, "Disabled app", APP_SCOPES, "https://c.test/launch")
        app.state.oauth.set_client_enabled(disabled, False)

        finder = http.get(FINDER)
        assert finder.status_code == 200 and "Ada Lovelace" in finder.text
        page = http.get(dashboard_url(BASE, row["pid"]))
        assert page.status_code == 200 and "MRN-1" in page.text
        names = re.findall(r'class="smart-launch" href="[^"]+">([^<]+)<', page.text)
        assert names == ["Risk viewer"]
        link = unescape(re.findall(r'class="smart-launch" href="([^"]+)"', page.text)[0])
        assert f"client_id={launchable}" in link

        moved = http.get(link, follow_redirects=False)
        assert moved.status_code == 302
        target = urlsplit(moved.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == "https://app.test/launch"
        query = parse_qs(target.query)
        assert query["x"] == ["1"]  # the registered launch URI's own query is kept
        assert query["iss"] == query["aud"] == [f"{BASE}/apis/default/fhir"]
        assert query["launch"][0]

        assert http.get(f"{DASHBOARD}?set_pid=999").status_code == 404
        refused = http.get(link.replace(launchable, disabled), follow_redirects=False)
        assert refused.status_code == 404
