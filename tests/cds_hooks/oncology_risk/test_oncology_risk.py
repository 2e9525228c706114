"""oncology-risk through the real HTTP CDS endpoint (uvicorn on loopback, signed JWTs): the AI
card's content, the chest-imaging filter on order-select, too little data, and a model that
could not be loaded (an info card and a 503 on its card route, never a failed hook)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cds_hooks import examples as ex
from cds_hooks.cards import md_escape
from cdw.config import DEV_KEY
from cdw.features_fhir import features_from_fhir
from cdw.mapping_ai import is_finding
from cdw.pseudonym import Pseudonymizer
from models.registry import ModelRegistry
from models.tabular import cohort
from models.tabular.predictor import RiskModel
from models.tabular.synthetic import patient_record
from simulators.cohort.model import CohortGenerator
from tests.cds_hooks.conftest import Harness, Keys
from tests.models import risk_support
from tests.support.server import serve

ID = "oncology-risk"


@pytest.fixture
def models_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    root = tmp_path / "models"
    shutil.copytree(risk_support.models_dir(), root)
    monkeypatch.setenv("CDSS_MODELS_DIR", str(root))
    monkeypatch.setenv("CDSS_CDW_ALLOW_DEV_KEY", "1")
    monkeypatch.delenv("CDSS_CDW_PSEUDONYM_KEY", raising=False)
    return root


@pytest.fixture
def live(make_app: Callable[..., FastAPI], models_env: Path, keys: Keys) -> Iterator[Harness]:
    with serve(make_app()) as base, httpx.Client(base_url=base, timeout=30) as http:
        yield Harness(http, keys.ec, base=base)


def _record(pid: str, seed: int = 12) -> list[dict[str, Any]]:
    gen = CohortGenerator(seed, cohort.SYNTHETIC_INDEX)
    return patient_record(gen.patient(1), pid)


def _put(h: Harness, resources: list[dict[str, Any]]) -> None:
    for r in resources:
        resp = h.http.put(f"/fhir/{r['resourceType']}/{r['id']}", json=r)
        assert resp.status_code in (200, 201), resp.text


def _cards(h: Harness, body: dict[str, Any]) -> list[dict[str, Any]]:
    resp = h.call(ID, body)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["cards"])


def _view(pid: str) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/example", "patientId": pid},
    }


def test_patient_view_card_has_risk_band_drivers_version_and_card_link(
    live: Harness, models_env: Path
) -> None:
    record = _record("onc-1")
    _put(live, record)
    discovery = live.get("/cds-services").json()["services"]
    hooks = {s["hook"] for s in discovery if s["id"] == ID}
    assert hooks == {"patient-view", "order-select"}

    [card] = _cards(live, _view("onc-1"))  # no prefetch: fetched from the facade

    version = ModelRegistry(models_env).promoted(ID)
    assert version is not None
    model = RiskModel(version)
    today = datetime.now(UTC).date()
    expected = model.score(features_from_fhir(record, today, Pseudonymizer(DEV_KEY)))
    pct = f"{100 * expected.risk:.1f} %"
    assert pct in card["summary"] and pct in card["detail"]
    band = "high" if expected.risk >= 0.05 else "intermediate" if expected.risk >= 0.015 else "low"
    assert f"— {band}" in card["summary"]
    assert card["indicator"] == ("warning" if band == "high" else "info")
    for driver in expected.drivers:
        assert f"{md_escape(driver.label)}: **{md_escape(driver.shown)}**" in card["detail"]
    assert f"version {version.version}" in card["detail"]
    url = f"{live.base}/models/{ID}/{version.version}"
    assert card["source"]["url"] == url and "oncology-risk v1" in card["source"]["label"]
    assert card["links"] == [{"label": "Model card", "url": url, "type": "absolute"}]
    served = live.http.get(url)
    assert served.status_code == 200
    assert served.json()["version"] == version.version and served.json()["serving"] is True
    assert live.http.get(f"/models/{ID}").json()["version"] == version.version
    assert live.http.get("/models").json()["models"][0]["serving"]["serving"] is True


def test_order_select_scores_chest_imaging_orders_only(live: Harness) -> None:
    _put(live, _record("onc-2", seed=13))
    chest = ex.service_request("d1", "onc-2", ex.CT_CHEST_PLAIN)
    brain = ex.service_request("d2", "onc-2", ex.MR_BRAIN_CONTRAST)
    cards = _cards(live, ex.order_request("order-select", "onc-2", [chest]))
    assert len(cards) == 1 and "Lung cancer risk (AI, 12 months)" in cards[0]["summary"]
    assert _cards(live, ex.order_request("order-select", "onc-2", [brain])) == []


def test_too_little_data_gives_an_info_card_and_no_score(live: Harness) -> None:
    _put(live, [r for r in _record("onc-3") if r["resourceType"] == "Patient"])
    [card] = _cards(live, _view("onc-3"))
    assert card["indicator"] == "info" and "not scored" in card["summary"]
    assert "smoking status" in card["detail"] and "laboratory results" in card["detail"]
    assert "%" not in card["summary"]


def test_unloadable_model_gives_an_info_card_and_a_503_card_route(
    make_app: Callable[..., FastAPI], models_env: Path, keys: Keys
) -> None:
    version = ModelRegistry(models_env).promoted(ID)
    assert version is not None
    (version.path / "model.txt").write_text("corrupt")
    with serve(make_app()) as base, httpx.Client(base_url=base, timeout=30) as http:
        h = Harness(http, keys.ec, base=base)
        _put(h, _record("onc-4"))
        [card] = _cards(h, _view("onc-4"))
        assert "unavailable" in card["summary"] and "corrupt" in card["detail"]
        resp = http.get(f"/models/{ID}")
        assert resp.status_code == 503 and "corrupt" in resp.json()["message"]
        listed = http.get("/models").json()["models"][0]
        assert listed["serving"]["serving"] is False


def test_no_promoted_model_says_how_to_train_one(
    make_app: Callable[..., FastAPI], keys: Keys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CDSS_MODELS_DIR", str(tmp_path / "empty"))
    with serve(make_app()) as base, httpx.Client(base_url=base, timeout=30) as http:
        h = Harness(http, keys.ec, base=base)
        _put(h, _record("onc-5"))
        [card] = _cards(h, _view("onc-5"))
        assert "unavailable" in card["summary"] and "cdss models promote" in card["detail"]
        assert http.get(f"/models/{ID}").status_code == 503


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def test_the_imaging_ai_finding_is_fetched_prefetched_and_counted_once(
    live: Harness, models_env: Path
) -> None:
    record = _record("onc-6", seed=14)  # a CT with a nodule, so an AI finding
    [finding] = [r for r in record if is_finding(r)]
    _put(live, record)
    version = ModelRegistry(models_env).promoted(ID)
    assert version is not None
    model = RiskModel(version)
    today = datetime.now(UTC).date()
    pz = Pseudonymizer(DEV_KEY)
    with_ai = features_from_fhir(record, today, pz)
    without = features_from_fhir([r for r in record if r is not finding], today, pz)
    assert with_ai.values["ai_nodule_probability_max"] is not None
    assert without.values["ai_nodule_probability_max"] is None
    expected, blind = model.score(with_ai).risk, model.score(without).risk
    assert f"{100 * expected:.1f} %" != f"{100 * blind:.1f} %"  # the finding moves the score

    [fetched] = _cards(live, _view("onc-6"))  # the facade answers the aiFindings query
    assert f"{100 * expected:.1f} %" in fetched["summary"]

    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in record:
        by_type.setdefault(r["resourceType"], []).append(r)
    labs = [
        r for r in by_type["Observation"] if r["category"][0]["coding"][0]["code"] == "laboratory"
    ]
    prefetch = {
        "patient": by_type["Patient"][0],
        "labs": _bundle([*labs, finding]),  # also under a second key: mapped once
        "smoking": _bundle([r for r in by_type["Observation"] if r["id"].endswith("-smoking")]),
        "conditions": _bundle(by_type.get("Condition", [])),
        "studies": _bundle(by_type["ImagingStudy"]),
        "aiFindings": _bundle([finding]),
    }
    [prefetched] = _cards(live, {**_view("onc-6"), "prefetch": prefetch})
    assert prefetched["summary"] == fetched["summary"]
