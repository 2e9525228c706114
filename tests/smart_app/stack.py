"""The SMART app's test stack: the OpenEMR simulator as EHR and authorization server, a real
Orthanc with two patients' synthetic CT series, and `cdss` (facade, CDS service, /smart,
/dicom-web) on loopback; the app registered with the simulator as a confidential client.

Facade data is written over HTTP as the sync would leave it (Patient ids = OpenEMR UUIDs, the
hub's MRN identifier = DICOM PatientID); AI results follow docs/ai-findings.md.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from adapters.base import MRN_SYSTEM
from cdss.app import create_app
from cdss.settings import load_settings
from fhir_facade.security.settings import load_security_settings
from fhir_facade.store.sql_store import SqlStore
from simulators.cohort.ct import ct_series, nodule_voxel
from simulators.cohort.model import CtStudy, Nodule, SyntheticPatient
from simulators.openemr.app import create_openemr_app
from tests.models import risk_support
from tests.support import orthanc as orthanc_support
from tests.support.postgres import free_port
from tests.support.server import serve

SCOPES = (
    "openid fhirUser online_access offline_access launch launch/patient api:fhir "
    "user/Patient.rs user/Encounter.rs user/Observation.rs user/Condition.rs "
    "user/ServiceRequest.rs user/DiagnosticReport.rs"
)
AI = "urn:cdss:ai"


@dataclass
class PatientFixture:
    id: str
    mrn: str
    study_id: str
    study_uid: str
    series_uid: str
    nodule: tuple[int, int, int] | None  # (slice, row, col)
    sops: list[str]
    hu: np.ndarray  # (slices, rows, cols) Hounsfield units as stored in the PACS


@dataclass
class SmartStack:
    app_base: str
    emr_base: str
    emr_app: Any
    orthanc: Any
    client_id: str
    a: PatientFixture
    b: PatientFixture
    finding_id: str | None
    app: Any  # the cdss ASGI app (its /smart sub-app holds the sessions)
    store: SqlStore

    @property
    def store_url(self) -> str:
        return self.store.reader.url.render_as_string(hide_password=False)

    def smart_state(self) -> Any:
        mount = next(r for r in self.app.routes if getattr(r, "path", "") == "/smart")
        return mount.app.state.smart

    @property
    def iss(self) -> str:
        return f"{self.emr_base}/apis/default/fhir"

    def launch_url(self, patient: str, extra: str = "") -> str:
        token = self.emr_app.state.oauth.create_launch(patient, intent="main.tab")
        return f"{self.app_base}/smart/launch?iss={self.iss}&launch={token}{extra}"


def _synthetic(mrn: str, nodule: bool, day: date) -> SyntheticPatient:
    ct = CtStudy(
        performed=datetime(day.year, day.month, day.day, 10, 30, tzinfo=UTC),
        nodule=Nodule(12.0, True, True, center=(0.32, 0.42, 0.55)) if nodule else None,
    )
    return SyntheticPatient(
        mrn=mrn,
        given="Ada" if nodule else "Ben",
        family="Test",
        sex="female" if nodule else "male",
        birth_date=date(1955, 3, 1),
        smoking="former",
        pack_years=30.0,
        conditions=[],
        ct=ct,
    )


def _put(store: SqlStore, resource: dict[str, Any]) -> None:
    """Write as the sync does: straight into the facade's store (the facade requires tokens)."""
    with store.unit() as unit:
        unit.update(resource)


def _seed_patient(store: SqlStore, pacs: Any, mrn: str, nodule: bool, seed: int) -> PatientFixture:
    synthetic = _synthetic(mrn, nodule, date(2025, 5, 20))
    datasets = ct_series(synthetic, seed)
    with httpx.Client(base_url=pacs.url, auth=pacs.auth, timeout=30) as orthanc:
        for ds in datasets:
            from io import BytesIO

            buf = BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            orthanc.post("/instances", content=buf.getvalue()).raise_for_status()
    pid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"smart-test:{mrn}"))
    _put(
        store,
        {
            "resourceType": "Patient",
            "id": pid,
            "identifier": [{"system": MRN_SYSTEM, "value": mrn}],
            "name": [{"family": synthetic.family, "given": [synthetic.given]}],
            "gender": synthetic.sex,
            "birthDate": synthetic.birth_date.isoformat(),
        },
    )
    first = datasets[0]
    study_id = f"ct-{mrn.lower()}"
    _put(
        store,
        {
            "resourceType": "ImagingStudy",
            "id": study_id,
            "status": "available",
            "identifier": [
                {"system": "urn:dicom:uid", "value": f"urn:oid:{first.StudyInstanceUID}"}
            ],
            "subject": {"reference": f"Patient/{pid}"},
            "started": "2025-05-20T10:30:00Z",
            "description": first.StudyDescription,
            "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}],
            "numberOfSeries": 1,
            "numberOfInstances": len(datasets),
            "series": [
                {
                    "uid": first.SeriesInstanceUID,
                    "number": 1,
                    "modality": {
                        "system": "http://dicom.nema.org/resources/ontology/DCM",
                        "code": "CT",
                    },
                    "numberOfInstances": len(datasets),
                }
            ],
        },
    )
    return PatientFixture(
        id=pid,
        mrn=mrn,
        study_id=study_id,
        study_uid=str(first.StudyInstanceUID),
        series_uid=str(first.SeriesInstanceUID),
        nodule=nodule_voxel(synthetic.ct) if synthetic.ct else None,
        sops=[str(d.SOPInstanceUID) for d in datasets],
        hu=np.stack([d.pixel_array for d in datasets]).astype(np.float64),
    )


def write_ai_result(store: SqlStore, p: PatientFixture, probability: float) -> str:
    """The AI pipeline's output for one study, as docs/ai-findings.md specifies."""
    assert p.nodule is not None
    k, row, col = p.nodule

    def comp(code: str, **value: Any) -> dict[str, Any]:
        return {"code": {"coding": [{"system": AI, "code": code}]}, **value}

    obs_id, report_id = f"ai-finding-{p.study_id}", f"ai-report-{p.study_id}"
    model = "lung-nodule@1.2.0"
    _put(
        store,
        {
            "resourceType": "Observation",
            "id": obs_id,
            "status": "final",
            "meta": {"tag": [{"system": AI, "code": "finding"}]},
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "imaging",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "786838002",
                        "display": "Nodule of lung",
                    }
                ],
                "text": "Pulmonary nodule",
            },
            "subject": {"reference": f"Patient/{p.id}"},
            "effectiveDateTime": "2025-05-20T10:30:00Z",
            "valueCodeableConcept": {
                "coding": [
                    {"system": "http://snomed.info/sct", "code": "52101004", "display": "Present"}
                ]
            },
            "derivedFrom": [{"reference": f"ImagingStudy/{p.study_id}"}],
            "contained": [
                {
                    "resourceType": "Device",
                    "id": "model",
                    "deviceName": [{"name": "lung-nodule", "type": "model-name"}],
                    "version": [{"value": "1.2.0"}],
                }
            ],
            "device": {"reference": "#model", "display": model},
            "component": [
                comp(
                    "probability",
                    valueQuantity={
                        "value": probability,
                        "unit": "1",
                        "system": "http://unitsofmeasure.org",
                        "code": "1",
                    },
                ),
                comp("model", valueString=model),
                comp("series-instance-uid", valueString=p.series_uid),
                comp("sop-instance-uid", valueString=p.sops[k]),
                comp("pixel-row", valueInteger=row),
                comp("pixel-column", valueInteger=col),
            ],
        },
    )
    _put(
        store,
        {
            "resourceType": "DiagnosticReport",
            "id": report_id,
            "status": "final",
            "meta": {"tag": [{"system": AI, "code": "report"}]},
            "identifier": [
                {"system": "urn:cdss:ai-report", "value": f"{p.study_uid}|lung-nodule|1.2.0"}
            ],
            "category": [
                {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}
                    ]
                }
            ],
            "code": {"coding": [{"system": "http://loinc.org", "code": "18748-4"}]},
            "subject": {"reference": f"Patient/{p.id}"},
            "imagingStudy": [{"reference": f"ImagingStudy/{p.study_id}"}],
            "result": [{"reference": f"Observation/{obs_id}"}],
            "effectiveDateTime": "2025-05-20T10:30:00Z",
            "issued": "2025-05-21T08:00:00Z",
            "conclusion": f"Pulmonary nodule present (probability {probability:.2f}) in the right "
            f"upper lobe, slice {k + 1}; model {model}.",
        },
    )
    return obs_id


def write_smoking(store: SqlStore, patient: str) -> None:
    """Smoking status (LOINC 72166-2), a former smoker, as OpenEMR's FHIR API records it."""
    _put(
        store,
        {
            "resourceType": "Observation",
            "id": f"smoking-{patient}",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "social-history",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": "2025-01-10T09:00:00+00:00",
            "valueCodeableConcept": {
                "coding": [
                    {"system": "http://snomed.info/sct", "code": "8517006", "display": "Ex-smoker"}
                ]
            },
        },
    )


def write_egfr(store: SqlStore, patient: str, value: float) -> None:
    """A recent eGFR (LOINC 98979-8, CKD-EPI 2021) as the LIS sync leaves it."""
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    _put(
        store,
        {
            "resourceType": "Observation",
            "id": f"egfr-{patient}",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [
                    {
                        "system": "http://loinc.org",
                        "code": "98979-8",
                        "display": "eGFR (CKD-EPI 2021)",
                    }
                ]
            },
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": when.isoformat(),
            "valueQuantity": {
                "value": value,
                "unit": "mL/min/{1.73_m2}",
                "system": "http://unitsofmeasure.org",
                "code": "mL/min/{1.73_m2}",
            },
        },
    )


@contextmanager
def smart_stack(tmp: Path) -> Iterator[SmartStack]:
    reason = orthanc_support.available()
    if reason:
        raise RuntimeError(f"Orthanc is required: {reason}")
    with ExitStack() as stack:
        pacs = stack.enter_context(
            orthanc_support.orthanc(dicom_server=False, workdir=tmp / "pacs")
        )
        emr_port, app_port = free_port(), free_port()
        emr_base, app_base = f"http://127.0.0.1:{emr_port}", f"http://127.0.0.1:{app_port}"
        emr_app = create_openemr_app(public_base=emr_base)
        stack.enter_context(
            serve(emr_app, "/apis/default/fhir/.well-known/smart-configuration", emr_port)
        )
        reg = emr_app.state.oauth.register_client(
            {
                "application_type": "private",
                "client_name": "cdss SMART app",
                "redirect_uris": [f"{app_base}/smart/callback"],
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": SCOPES,
            }
        )
        env = {
            "CDSS_SMART_CLIENT_ID": reg["client_id"],
            "CDSS_SMART_CLIENT_SECRET": reg["client_secret"],
            "CDSS_SMART_ISSUERS": orjson.dumps([f"{emr_base}/apis/default/fhir"]).decode(),
            "CDSS_PACS_PROFILE": "orthanc",  # the viewer proxy's upstream: the site's PACS
            "CDSS_PACS_URL": pacs.url,
            "CDSS_PACS_USER": pacs.auth[0],
            "CDSS_PACS_PASSWORD": pacs.auth[1],
            "CDSS_SMART_KEY_FILE": str(tmp / "smart-key.json"),
            "CDSS_MODELS_DIR": str(risk_support.models_dir()),  # a promoted oncology-risk model
            "CDSS_ORDERS_ENABLED": "true",  # intake validates and queues signed orders
            "CDSS_ORDERS_WORKER": "false",  # routing to SENAITE/worklists is tested in issue 5
            "CDSS_SMART_SCOPES_V2": " ".join(
                s for s in SCOPES.split() if s not in {"offline_access", "launch/patient"}
            ),
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        stack.callback(_restore, saved)
        settings = load_settings(
            database_url=f"sqlite:///{tmp / 'cdss.db'}",
            data_dir=tmp / "var",
            secret_key="smart-test",
            base_url=app_base,
            cds_clients=[
                {"iss": f"{app_base}/smart", "jku": [f"{app_base}/smart/.well-known/jwks.json"]}
            ],
        )
        oauth = f"{emr_base}/oauth2/default"
        security = load_security_settings(
            auth="required",
            audit=False,
            issuers=[
                {  # OpenEMR's access tokens carry no iss and no patient: JWKS + introspection
                    "issuer": oauth,
                    "audiences": [reg["client_id"]],
                    "jwks_uri": f"{oauth}/jwk",
                    "require_iss": False,
                    "introspection_endpoint": f"{oauth}/introspect",
                    "client_id": reg["client_id"],
                    "client_secret": reg["client_secret"],
                },
                {  # the SMART app's patient-bound tokens (smart_app/delegation.py)
                    "issuer": f"{app_base}/smart",
                    "audiences": [f"{app_base}/fhir"],
                    "jwks_uri": f"{app_base}/smart/.well-known/jwks.json",
                },
            ],
        )
        app = create_app(settings, security=security)
        app_url = stack.enter_context(serve(app, "/healthz", app_port))
        store = SqlStore(settings.effective_database_url)
        stack.callback(store.close)
        a = _seed_patient(store, pacs, "MRN-SMART-A", nodule=True, seed=11)
        b = _seed_patient(store, pacs, "MRN-SMART-B", nodule=False, seed=12)
        finding = write_ai_result(store, a, 0.87)
        for p, given in ((a, "Ada"), (b, "Ben")):  # the EHR's own rows (standalone picker)
            emr_app.state.store.insert(
                "patient_data", {"uuid": p.id, "fname": given, "lname": "Test", "pubpid": p.mrn}
            )
        write_smoking(store, a.id)
        write_egfr(store, a.id, 24.0)  # below 30: contrast CT needs a warning (ACR-NKF)
        write_egfr(store, b.id, 88.0)
        yield SmartStack(
            app_url, emr_base, emr_app, pacs, reg["client_id"], a, b, finding, app, store
        )


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
