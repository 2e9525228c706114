"""Writes cohort patients into OpenEMR the way a clinic's staff would: through its APIs.

Demographics, encounters, problems and medications go through OpenEMR's standard REST API
(`/apis/default/api`). OpenEMR has no API route for tobacco history; against the simulator the
smoking status goes through its documented simulator-only route, and against a real OpenEMR it
is skipped with a warning (staff enter it in the UI).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from adapters.openemr.auth import PasswordGrantAuth, register_client
from simulators.cohort.model import SyntheticPatient

log = logging.getLogger(__name__)

SCOPES = (
    "openid offline_access api:oemr user/patient.read user/patient.write "
    "user/encounter.write user/medical_problem.write user/medication.write "
    "user/allergy.write user/vital.write"
)
ICD10 = {
    "copd": ("J44.9", "Chronic obstructive pulmonary disease"),
    "hypertension": ("I10", "Essential hypertension"),
    "diabetes": ("E11.9", "Type 2 diabetes mellitus"),
    "ckd": ("N18.3", "Chronic kidney disease, stage 3"),
    "lung-cancer": ("C34.90", "Malignant neoplasm of unspecified part of bronchus or lung"),
}
SMOKING_OPTION = {"current": "1", "former": "3", "never": "4"}  # OpenEMR list smoking_status
METFORMIN = (
    "860975",
    "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
)  # RxNorm SCD (the name RxNorm and OMOP concept 40163924 give it)


class OpenEMRWriteError(RuntimeError):
    pass


class OpenEMRWriter:
    def __init__(
        self,
        base_url: str,
        *,
        username: str = "admin",
        password: str = "pass",
        simulator: bool = True,
        timeout: float = 30.0,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.api = f"{self.base}/apis/default/api"
        self.simulator = simulator
        client = register_client(
            f"{self.base}/oauth2/default",
            {
                "application_type": "private",
                "client_name": "cdss cohort writer",
                "redirect_uris": ["http://127.0.0.1/cohort-writer-unused"],
                "token_endpoint_auth_method": "client_secret_post",
                "scope": SCOPES,
            },
        )
        self.auth = PasswordGrantAuth(
            f"{self.base}/oauth2/default/token",
            client_id=client.client_id,
            client_secret=client.client_secret or "",
            username=username,
            password=password,
            scopes=SCOPES,
        )
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(
            f"{self.api}{path}", json=body, headers={"Authorization": f"Bearer {self.auth.token()}"}
        )
        if response.status_code >= 300:
            raise OpenEMRWriteError(f"POST {path}: {response.status_code} {response.text[:300]}")
        payload = response.json()
        return payload.get("data", payload) if isinstance(payload, dict) else payload

    def write(self, p: SyntheticPatient) -> str:
        """Create the patient and their record; returns OpenEMR's patient UUID."""
        created = self._post(
            "/patient",
            {
                "fname": p.given,
                "lname": p.family,
                "DOB": p.birth_date.isoformat(),
                "sex": "Male" if p.sex == "male" else "Female",
                "pubpid": p.mrn,
            },
        )
        pid, puuid = created["pid"], created["uuid"]
        if p.labs:
            last = max(lab.taken for lab in p.labs)
            self._post(
                f"/patient/{puuid}/encounter",
                {
                    "date": last.strftime("%Y-%m-%d %H:%M:%S"),
                    "reason": "Routine review",
                    "pc_catid": "5",
                    "class_code": "AMB",
                },
            )
        first = min((lab.taken for lab in p.labs), default=None)
        since = (first.date() if first else p.birth_date).isoformat()
        for condition in p.conditions:
            code, title = ICD10[condition]
            self._post(
                f"/patient/{puuid}/medical_problem",
                {"title": title, "begdate": since, "diagnosis": f"ICD10:{code}"},
            )
        if p.cancer and p.diagnosis_date is not None:
            code, title = ICD10["lung-cancer"]
            self._post(
                f"/patient/{puuid}/medical_problem",
                {
                    "title": title,
                    "begdate": p.diagnosis_date.isoformat(),
                    "diagnosis": f"ICD10:{code}",
                },
            )
        if "diabetes" in p.conditions:
            self._post(
                f"/patient/{pid}/medication",
                {"title": METFORMIN[1], "begdate": since, "diagnosis": f"RXCUI:{METFORMIN[0]}"},
            )
        self._smoking(puuid, p, since)
        return str(puuid)

    def _smoking(self, puuid: str, p: SyntheticPatient, since: str) -> None:
        if not self.simulator:
            log.warning(
                "OpenEMR has no API for tobacco history; %s's smoking status is not written", p.mrn
            )
            return
        note = f"{p.pack_years} pack-years" if p.pack_years else "never smoked"
        self._post(
            f"/_sim/patient/{puuid}/history",
            {"smoking_status": SMOKING_OPTION[p.smoking], "note": note, "date": since},
        )
