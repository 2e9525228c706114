"""The configuration files the stack mounts: HAPI's application.yaml, Orthanc's JSON, and the
PostgreSQL init script (run for real against a throwaway cluster)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from sqlalchemy.engine import make_url

from fhir_facade.search.parameters import SUPPORTED_TYPES
from tests.deploy import stack
from tests.deploy.settings_env import ROOT

HAPI_YAML = ROOT / "deploy/hapi/application.yaml"
ORTHANC_JSON = ROOT / "deploy/orthanc/orthanc.json"
INIT_SCRIPT = ROOT / "deploy/postgres/init/10-databases.sh"
PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")


def _stack_env() -> dict[str, str]:
    return stack.read_env_file(ROOT / "deploy/stack.env.example")


def _mounted(service: str, target: str) -> Path:
    """The repository file a service mounts at `target`."""
    for volume in stack.compose()["services"][service]["volumes"]:
        source, _, rest = volume.partition(":")
        if rest.split(":")[0] == target:
            return ROOT / str(source)
    raise AssertionError(f"{service} mounts nothing at {target}")


def test_hapi_configuration() -> None:
    assert _mounted("hapi", "/app/config/application.yaml") == HAPI_YAML
    config: dict[str, Any] = yaml.safe_load(HAPI_YAML.read_text())
    fhir = config["hapi"]["fhir"]
    assert fhir["fhir_version"] == "R4"
    assert "cors" not in fhir  # no CORS interceptor: only the facade calls HAPI
    assert fhir["validation"]["requests_enabled"] is True
    assert set(fhir["supported_resource_types"]) >= SUPPORTED_TYPES
    assert fhir["client_id_strategy"] == "ANY"  # the facade PUTs reserved UUID ids
    assert fhir["reuse_cached_search_results_millis"] == 0  # read-your-writes in searches
    assert fhir["enforce_referential_integrity_on_write"] is False
    source = config["spring"]["datasource"]
    url = make_url(
        source["url"].removeprefix("jdbc:").replace("postgresql:", "postgresql+psycopg:")
    )
    assert (url.host, url.database, source["username"]) == ("postgres", "hapi", "hapi")
    assert "HapiFhirPostgres" in config["spring"]["jpa"]["properties"]["hibernate.dialect"]
    [secret] = PLACEHOLDER.findall(str(source["password"]))
    assert secret in _stack_env()  # resolved from the env file HAPI gets
    env = stack.service_env(stack.compose()["services"]["hapi"])
    assert env["SPRING_CONFIG_LOCATION"].endswith("/app/config/application.yaml")


def test_orthanc_configuration() -> None:
    assert _mounted("orthanc", "/etc/orthanc/orthanc.json") == ORTHANC_JSON
    text = ORTHANC_JSON.read_text()
    config = json.loads(text)
    assert config["AuthenticationEnabled"] is True
    assert config["DicomWeb"]["Enable"] is True and config["DicomWeb"]["Root"] == "/dicom-web/"
    assert config["Worklists"]["Enable"] is True
    index = config["PostgreSQL"]
    assert index["EnableIndex"] is True and index["Host"] == "postgres"
    assert index["Database"] == index["Username"] == "orthanc"
    for name in PLACEHOLDER.findall(text):  # Orthanc expands ${VAR} from its environment
        assert name in _stack_env(), name
    compose = stack.compose()
    mounts = {v.split(":")[1] for v in compose["services"]["orthanc"]["volumes"]}
    assert config["Worklists"]["Database"] in mounts
    orders = stack.service_env(compose["services"]["orders"])
    assert orders["CDSS_ORTHANC_USER"] in config["RegisteredUsers"]


def _run_init(server: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    url = make_url(server)
    return subprocess.run(
        ["sh", str(INIT_SCRIPT)],
        env={
            "PATH": os.environ["PATH"],
            "PGHOST": str(url.host),
            "PGPORT": str(url.port),
            "POSTGRES_USER": "postgres",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.postgres
def test_postgres_init_script_creates_each_database_once(pg_server: str) -> None:
    passwords = {k: v for k, v in _stack_env().items() if k.endswith("_DB_PASSWORD")}
    passwords["HAPI_DB_PASSWORD"] = "it's a 'quoted' pass"  # quoting is psql's, not ours
    for _ in range(2):  # a restart with the same volume must not fail
        done = _run_init(server=pg_server, env=passwords)
        assert done.returncode == 0, done.stderr
    plain = pg_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        owners: dict[str, str] = dict(
            conn.execute(
                "SELECT d.datname, r.rolname FROM pg_database d "
                "JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname <> 'postgres'"
            ).fetchall()
        )
        with_password = {
            row[0]
            for row in conn.execute(
                "SELECT rolname FROM pg_authid WHERE rolpassword IS NOT NULL AND rolcanlogin"
            )
        }
    expected = {"hapi", "facade", "cdw", "orthanc"}
    assert {k: v for k, v in owners.items() if k in expected} == {n: n for n in expected}
    assert expected <= with_password


@pytest.mark.postgres
def test_postgres_init_script_refuses_a_missing_password(pg_server: str) -> None:
    done = _run_init(server=pg_server, env={"HAPI_DB_PASSWORD": "x"})
    assert done.returncode != 0 and "no password given for facade" in done.stderr
