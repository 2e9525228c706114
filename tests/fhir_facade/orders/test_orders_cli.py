"""`cdss orders run --once` and `cdss orders status` on a store with a queued order."""

from __future__ import annotations

from pathlib import Path

import orjson
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cdss.cli import app
from fhir_facade.store.sql_store import SqlStore
from tests.fhir_facade.orders.conftest import Lis, order, read


def test_run_once_delivers_and_status_lists_the_queue(
    fhir: TestClient, store: SqlStore, patient_id: str, lis: Lis, tmp_path: Path
) -> None:
    order_id = fhir.post("/ServiceRequest", json=order(patient_id, "2345-7")).json()["id"]
    env = {
        "CDSS_DATABASE_URL": str(store.url),
        "CDSS_DATA_DIR": str(tmp_path / "var"),
        "CDSS_SENAITE_URL": lis.url,
        "CDSS_ORDERS_WORKLISTS_DIR": str(tmp_path / "wl"),
    }
    runner = CliRunner()
    before = runner.invoke(app, ["orders", "status", "--json"], env=env)
    assert before.exit_code == 0, before.output
    assert orjson.loads(before.stdout)["counts"] == {"queued": 1}
    ran = runner.invoke(app, ["orders", "run", "--once"], env=env)
    assert ran.exit_code == 0, ran.output
    after = orjson.loads(runner.invoke(app, ["orders", "status", "--json"], env=env).stdout)
    assert after["counts"] == {"routed": 1}
    (row,) = after["orders"]
    assert row["order"] == order_id and row["external_id"].startswith("SER-")
    assert read(fhir, order_id)["meta"]["versionId"] == "2"
    table = runner.invoke(app, ["orders", "status"], env=env)
    assert table.exit_code == 0 and "routed: 1" in table.stdout
