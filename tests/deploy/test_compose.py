"""docker-compose.yml, checked without a Docker engine: the Compose Specification schema, the
files it references, start order, secrets, and the configuration the project's services get.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import typer
from pydantic_settings import BaseSettings
from sqlalchemy.engine import make_url

from cdss.cli import app as cli_app
from tests.deploy import stack
from tests.deploy.settings_env import ROOT, env_names
from tests.support.paths import FIXTURES

SECRET_NAME = re.compile(r"PASSWORD|PASS$|SECRET|TOKEN|PRIVATE|_KEY$", re.IGNORECASE)
INIT_SCRIPT = ROOT / "deploy/postgres/init/10-databases.sh"


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return stack.compose()


def test_compose_file_matches_the_compose_specification(data: dict[str, Any]) -> None:
    schema = json.loads((FIXTURES / "compose-spec/compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)
    ]
    assert problems == []


def test_the_schema_check_would_catch_a_wrong_key(data: dict[str, Any]) -> None:
    schema = json.loads((FIXTURES / "compose-spec/compose-spec.json").read_text())
    broken = {**data, "services": {**data["services"], "api": {**data["services"]["api"]}}}
    broken["services"]["api"]["depends_on"] = {"postgres": {"condition": "healthy"}}
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


def test_every_referenced_file_exists(data: dict[str, Any]) -> None:
    missing = []
    for name, svc in data["services"].items():
        for path in stack.env_file_paths(svc):
            if not stack.template_of(path).is_file():
                missing.append(f"{name}: env_file {path} (nor {path}.example)")
        for volume in svc.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if source.startswith((".", "/")) and not (ROOT / source).exists():
                missing.append(f"{name}: volume source {source}")
            elif not source.startswith((".", "/")) and source not in data["volumes"]:
                missing.append(f"{name}: named volume {source} is not declared")
        build = svc.get("build")
        if build:
            context = ROOT / build["context"]
            if not (context / build.get("dockerfile", "Dockerfile")).is_file():
                missing.append(f"{name}: Dockerfile in {context}")
    assert missing == []


def test_start_order_waits_on_health(data: dict[str, Any]) -> None:
    services = data["services"]
    for name, svc in services.items():
        for dep, rule in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            condition = rule["condition"]
            if condition == "service_healthy":
                check = services[dep].get("healthcheck") or {}
                assert check.get("test") and not check.get("disable"), f"{dep} has no healthcheck"
            if condition == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is a one-shot"
    api = services["api"]["depends_on"]
    assert api["postgres"]["condition"] == "service_healthy"
    assert api["hapi-ready"]["condition"] == "service_completed_successfully"
    for follower in ("sync", "worker", "orders"):
        assert services[follower]["depends_on"]["api"]["condition"] == "service_healthy"


def test_no_secret_is_written_in_the_compose_file(data: dict[str, Any]) -> None:
    text = stack.COMPOSE.read_text()
    for name, svc in data["services"].items():
        env = svc.get("environment") or {}
        leaked = [k for k in env if SECRET_NAME.search(k)]
        assert leaked == [], f"{name} sets {leaked} in the compose file; use its env_file"
    for template in ROOT.glob("deploy/*.env.example"):
        for key, value in stack.read_env_file(template).items():
            if SECRET_NAME.search(key):
                assert value not in text, f"{key}'s value appears in docker-compose.yml"


def _commands() -> set[tuple[str, ...]]:
    root = typer.main.get_command(cli_app)
    out: set[tuple[str, ...]] = set()
    for name, cmd in getattr(root, "commands", {}).items():
        out.add((name,))
        out |= {(name, sub) for sub in getattr(cmd, "commands", {})}
    return out


def test_project_services_run_real_cli_commands(data: dict[str, Any]) -> None:
    services = stack.project_services(data)
    assert {"api", "sync", "worker", "orders"} <= set(services)
    known = _commands()
    missing = []
    for svc in services.values():
        words = tuple(w for w in svc["command"] if not w.startswith("-"))
        if words[:1] not in known and words[:2] not in known:
            missing.append(words)
    api = services["api"]["command"]
    assert api[0] == "serve" and int(api[api.index("--workers") + 1]) > 1
    if missing == [("worker",)]:  # the imaging job worker's verb lands with issue 9's AI part
        pytest.xfail("`cdss worker` is not registered in the CLI yet")
    assert missing == []


def test_project_services_get_only_names_the_settings_read(data: dict[str, Any]) -> None:
    read = {e.name for e in env_names()}
    for name, svc in stack.project_services(data).items():
        unknown = sorted(set(stack.service_env(svc)) - read)
        assert unknown == [], f"{name} receives variables no setting reads: {unknown}"


def _loaded_at_start() -> list[type[BaseSettings]]:
    """The settings classes the project's services build when they start (the imaging
    worker's own class lives beside torch and is covered by the name checks above)."""
    from cdss.observability.jsonlog import LogSettings
    from cdss.settings import Settings
    from cdss.sources import SourceSettings
    from cdw.config import CdwSettings
    from fhir_facade.orders.config import OrderSettings
    from fhir_facade.security.settings import SecuritySettings
    from fhir_facade.store.config import StoreSettings
    from models.registry import ModelSettings
    from smart_app.config import SmartSettings

    return [
        Settings,
        SourceSettings,
        OrderSettings,
        SecuritySettings,
        StoreSettings,
        CdwSettings,
        SmartSettings,
        LogSettings,
        ModelSettings,
    ]


def test_the_name_reader_agrees_with_pydantic() -> None:
    """The parsed names are the ones pydantic itself derives (prefix + field, or alias)."""
    parsed = {(e.owner.rsplit(".", 1)[-1], e.name): e.required for e in env_names()}
    for cls in _loaded_at_start():
        prefix = str(cls.model_config.get("env_prefix") or "")
        for field_name, info in cls.model_fields.items():
            alias = info.validation_alias if isinstance(info.validation_alias, str) else None
            name = (alias or f"{prefix}{field_name}").upper()
            assert (cls.__name__, name) in parsed, f"{cls.__name__}: {name}"
            assert parsed[cls.__name__, name] == info.is_required(), name


def test_the_stack_configuration_loads(
    data: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every settings class accepts the environment each project service gets (types,
    validators, JSON lists), and the settings the stack relies on say what it means."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    classes = _loaded_at_start()
    required = {e.name for e in env_names() if e.required}
    for name, svc in stack.project_services(data).items():
        for key in [k for k in os.environ if k.startswith("CDSS_")]:
            monkeypatch.delenv(key)
        env = stack.service_env(svc)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        assert required <= set(env), f"{name} misses required {sorted(required - set(env))}"
        loaded: dict[str, Any] = {cls.__name__: cls() for cls in classes}  # raises if invalid
        assert loaded["StoreSettings"].store == "upstream"
        security = loaded["SecuritySettings"]
        security.check_bind(env["CDSS_HOST"])  # auth is required off loopback
        assert security.auth == "required" and security.issuers
        assert loaded["CdwSettings"].pseudonym_key()
        assert loaded["Settings"].cds_auth == "required" and loaded["Settings"].cds_clients


def _created_databases() -> set[str]:
    return set(re.findall(r"^create (\w+) ", INIT_SCRIPT.read_text(), re.MULTILINE))


def test_project_urls_point_at_services_of_the_stack(data: dict[str, Any]) -> None:
    services = set(data["services"])
    stack_env = stack.read_env_file(ROOT / "deploy/stack.env.example")
    for name, svc in stack.project_services(data).items():
        env = stack.service_env(svc)
        for key in ("CDSS_UPSTREAM_FHIR_URL", "CDSS_SENAITE_URL", "CDSS_ORTHANC_URL"):
            assert urlsplit(env[key]).hostname in services, f"{name}: {key}={env[key]}"
        for key, db_password in (
            ("CDSS_DATABASE_URL", "FACADE_DB_PASSWORD"),
            ("CDSS_CDW_DATABASE_URL", "CDW_DB_PASSWORD"),
        ):
            url = make_url(env[key])
            assert url.host == "postgres" and url.database in _created_databases(), key
            assert url.username == url.database, key  # one role per database
            assert url.password == stack_env[db_password], f"{key} vs {db_password}"
        assert env["CDSS_ORTHANC_PASSWORD"] == stack_env["ORTHANC_CDSS_PASSWORD"]
    assert stack_env["MARIADB_ROOT_PASSWORD"] == stack_env["MYSQL_ROOT_PASS"]
    assert stack_env["MYSQL_HOST"] in services


def test_worklists_are_shared_between_the_router_and_orthanc(data: dict[str, Any]) -> None:
    services = data["services"]
    folder = stack.service_env(services["orders"])["CDSS_ORDERS_WORKLISTS_DIR"]
    mounts = {
        name: {v.split(":")[1]: v.split(":")[0] for v in svc.get("volumes") or []}
        for name, svc in services.items()
    }
    assert mounts["orders"][folder] == mounts["orthanc"][folder]
