"""The demo's steps after the first sync: ETL, models, imaging AI, SMART registration, trust.

Each step is a plain function the orchestrator (`cdss.demo_run`) times and reports. Models are
reused from the registry (`CDSS_MODELS_DIR`, default var/models) when a version is promoted, so
a second `make run` does not retrain; `--retrain` forces it.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from adapters.base import MRN_SYSTEM
from fhir_facade.search.query import parse_search
from fhir_facade.security.settings import SecuritySettings, load_security_settings
from fhir_facade.store.sql_store import SqlStore
from models.registry import ModelRegistry, ModelSettings

RISK_MODEL = "oncology-risk"
IMAGING_MODEL = "lung-nodule-ct"
EGFR_LOINC = "98979-8"
LOW_EGFR = 30.0  # below it, iodinated contrast draws a warning (ACR-NKF 2021; cds_hooks)
APP_NAME = "cdss SMART app"
IMAGING_STUDIES = 60  # the tiny configuration on 60 rendered studies: a few minutes on one core


def run_etl(database_url: str, cdw_url: str, key: bytes) -> str:
    """The CDW ETL over everything synced (pseudonymised with this run's key)."""
    from cdw.etl import Etl
    from cdw.pseudonym import Pseudonymizer

    runner = Etl(database_url, cdw_url, Pseudonymizer(key))
    try:
        summary = runner.run()
    finally:
        runner.close()
    if summary.errors:
        return f"{summary.resources} resources, errors: {summary.errors[:3]}"
    return f"{summary.resources} resources, {sum(summary.rows.values())} OMOP rows"


def registry() -> ModelRegistry:
    return ModelRegistry(ModelSettings().dir)


def promoted(name: str) -> str | None:
    """'name vN' of the promoted version, or None."""
    version = registry().promoted(name)
    return f"{name} v{version.version}" if version is not None else None


def usable(name: str) -> tuple[str | None, str]:
    """('name vN', '') when the promoted version loads in this build, else (None, why): a model
    trained on an older feature set or a corrupt artifact is retrained, not served broken."""
    from models.registry import RegistryError

    try:
        version = registry().promoted(name)
        if version is None:
            return None, f"no promoted {name}"
        if name == RISK_MODEL:
            from models.tabular.predictor import RiskModel

            RiskModel(version)
        else:
            from models.imaging.infer import Predictor

            Predictor.from_version(version, "cpu")
    except (RegistryError, OSError, ValueError, RuntimeError) as exc:
        return None, str(exc)
    return f"{name} v{version.version}", ""


def train_risk(size: int, seed: int) -> str:
    """LightGBM risk model on `size` generator patients built in memory, promoted."""
    from cdw.config import DEV_KEY
    from cdw.pseudonym import Pseudonymizer
    from models.tabular import cohort
    from models.tabular.train import TrainConfig, save, train

    data = cohort.synthetic(size, seed, Pseudonymizer(DEV_KEY))
    trained = train(data, TrainConfig(seed=0, bootstrap=200))
    version = save(registry(), trained, promote=True)
    auroc = trained.card["metrics"].get("test", {}).get("auroc", {}).get("value")
    metric = f", test AUROC {auroc:.3f}" if isinstance(auroc, float) else ""
    return f"{version.name} v{version.version} ({len(data.rows)} patients{metric})"


def train_imaging(log_file: Path) -> str:
    """`cdss train imaging --tiny --promote` as a child process (torch stays out of this one
    until the worker needs it); its output goes to `log_file`. Killed if we are interrupted."""
    command = [sys.executable, "-m", "cdss.cli", "train", "imaging", "--tiny", "--promote"]
    command += ["--studies", str(IMAGING_STUDIES)]
    with log_file.open("wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            code = child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    if code != 0:
        raise RuntimeError(f"imaging training failed (exit {code}); see {log_file}")
    return promoted(IMAGING_MODEL) or "trained, but no promoted version"


def register_smart_app(iss: str, app_base: str) -> dict[str, Any]:
    """Dynamic client registration with the EHR (as `cdss smart register` does)."""
    from smart_app.config import SmartSettings
    from smart_app.registration import register

    return register(iss, app_base, SmartSettings().scopes_v2, client_name=APP_NAME)


def smart_environment(
    client: dict[str, Any],
    iss: str,
    app_base: str,
    data_dir: Path,
    pacs: tuple[str, tuple[str, str]] | None,
) -> dict[str, str]:
    """The CDSS_SMART_* settings of the registered app (set in this process's environment)."""
    env = {
        "CDSS_SMART_CLIENT_ID": str(client["client_id"]),
        "CDSS_SMART_CLIENT_SECRET": str(client["client_secret"]),
        "CDSS_SMART_ISSUERS": orjson.dumps([iss]).decode(),
        "CDSS_SMART_PUBLIC_URL": app_base,
        "CDSS_SMART_KEY_FILE": str(data_dir / "smart-key.json"),
    }
    if pacs is not None:  # (Orthanc's REST base, (user, password))
        url, (user, password) = pacs
        env["CDSS_SMART_DICOMWEB_URL"] = f"{url}/dicom-web"
        env["CDSS_SMART_DICOMWEB_USER"] = user
        env["CDSS_SMART_DICOMWEB_PASSWORD"] = password
    return env


def facade_security(emr_base: str, app_base: str, client: dict[str, Any]) -> SecuritySettings:
    """Tokens required: OpenEMR's (JWKS + introspection as the SMART client, since its tokens
    carry no iss and no patient) and the SMART app's own patient-bound tokens."""
    oauth = f"{emr_base}/oauth2/default"
    return load_security_settings(
        auth="required",
        issuers=[
            {
                "issuer": oauth,
                "audiences": [client["client_id"]],
                "jwks_uri": f"{oauth}/jwk",
                "require_iss": False,
                "introspection_endpoint": f"{oauth}/introspect",
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
                "authorization_endpoint": f"{oauth}/authorize",
                "token_endpoint": f"{oauth}/token",
            },
            {
                "issuer": f"{app_base}/smart",
                "audiences": [f"{app_base}/fhir"],
                "jwks_uri": f"{app_base}/smart/.well-known/jwks.json",
            },
        ],
    )


def cds_clients(app_base: str) -> list[dict[str, Any]]:
    """The SMART app signs its hook calls with its key: trust it by its JWKS URL."""
    return [{"iss": f"{app_base}/smart", "jku": [f"{app_base}/smart/.well-known/jwks.json"]}]


def auth_wanted() -> bool:
    """Secure unless the operator set CDSS_FHIR_AUTH=disabled (loopback only, as before)."""
    return os.environ.get("CDSS_FHIR_AUTH", "required").strip().lower() != "disabled"


@dataclass(frozen=True, slots=True)
class Featured:
    """The walkthrough's patient."""

    patient_id: str  # facade id = OpenEMR uuid
    mrn: str
    name: str
    egfr: float | None
    egfr_date: str
    study_id: str | None
    study_date: str
    nodule: bool  # in the cohort's ground truth


def _search(store: SqlStore, rtype: str, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    with store.read_unit() as unit:
        page = unit.search(parse_search(rtype, pairs))
    return [orjson.loads(m.content) for m in page.matches if m.content]


def _egfr(store: SqlStore, pid: str) -> tuple[float | None, str]:
    pairs = [("patient", f"Patient/{pid}"), ("code", f"http://loinc.org|{EGFR_LOINC}")]
    found = _search(store, "Observation", [*pairs, ("_sort", "-date"), ("_count", "1")])
    if not found:
        return None, ""
    value = found[0].get("valueQuantity", {}).get("value")
    when = str(found[0].get("effectiveDateTime", ""))[:10]
    return (float(value) if isinstance(value, int | float) else None), when


def featured_patient(store: SqlStore, truth_file: Path) -> Featured | None:
    """A patient for the story: a prior chest CT, eGFR below 30 (a contrast CT order draws the
    kidney-function warning) and a nodule in the ground truth, as far as the cohort has them."""
    with truth_file.open(newline="") as fh:
        truth = {row["mrn"]: row for row in csv.DictReader(fh)}
    best: tuple[tuple[int, int, int, float], Featured] | None = None
    for mrn, row in truth.items():
        patients = _search(store, "Patient", [("identifier", f"{MRN_SYSTEM}|{mrn}")])
        if not patients:
            continue
        patient = patients[0]
        studies = _search(store, "ImagingStudy", [("patient", f"Patient/{patient['id']}")])
        egfr, egfr_date = _egfr(store, patient["id"])
        name = patient.get("name", [{}])[0]
        candidate = Featured(
            patient_id=patient["id"],
            mrn=mrn,
            name=f"{' '.join(name.get('given', []))} {name.get('family', '')}".strip(),
            egfr=egfr,
            egfr_date=egfr_date,
            study_id=studies[0]["id"] if studies else None,
            study_date=str(studies[0].get("started", ""))[:10] if studies else "",
            nodule=row.get("nodule") == "1",
        )
        low = egfr is not None and egfr < LOW_EGFR
        rank = (int(not studies), int(not low), int(not candidate.nodule), egfr or 999.0)
        if best is None or rank < best[0]:
            best = (rank, candidate)
    return best[1] if best else None
