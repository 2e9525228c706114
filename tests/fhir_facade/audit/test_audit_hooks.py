"""Hook calls are audited with the caller's network address beside the facade's own events."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from cds_hooks import examples as ex
from cdss.app import create_app
from cdss.settings import load_settings
from fhir_facade.security.settings import SecuritySettings


def test_hook_call_audit_names_the_source_ip(tmp_path: Path) -> None:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'h.db'}", data_dir=tmp_path, cds_auth="disabled"
    )
    security = SecuritySettings(_env_file=None, auth="disabled", audit=True)  # type: ignore[call-arg]
    with TestClient(create_app(settings, security=security)) as http:
        body = ex.order_request(
            "order-sign", "p1", [ex.service_request("d1", "p1", ex.CT_CHEST_CONTRAST)]
        )
        body["prefetch"] = {"patient": ex.patient("p1")}
        http.post("/cds-services/imaging-order-safety", json=body)
        http.app.state.cds.recorder.flush()  # type: ignore[attr-defined]
        events = [e["resource"] for e in http.get("/fhir/AuditEvent?_count=50").json()["entry"]]
    hook = [e for e in events if e["subtype"][0]["code"] == "cds-service-call"]
    assert hook and hook[0]["agent"][0]["network"] == {"address": "testclient", "type": "2"}
    rest = [e for e in events if e["type"]["code"] == "rest"]  # the AuditEvent search itself
    assert rest == [] or rest[0]["agent"][0]["network"]["address"] == "testclient"
