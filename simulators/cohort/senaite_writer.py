"""Writes cohort lab panels into SENAITE through its JSON API, as a lab's LIMS interface would.

Per panel: one Serum sample carrying every analysis of the panel, received, resulted, submitted,
verified and published — the workflow SENAITE enforces. eGFR is reported by the lab from the
creatinine by CKD-EPI 2021, as laboratories do. Updates and transitions go in one request per
step for all of a sample's analyses (senaite.jsonapi takes a list of records).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from adapters.senaite.client import SenaiteClient
from cds_hooks.clinical.renal import egfr_ckd_epi_2021
from simulators.cohort.model import LabResult, SyntheticPatient

API_PATH = "/@@API/senaite/v1"


class SenaiteWriter:
    def __init__(self, site_url: str, *, auth: tuple[str, str] = ("admin", "admin")) -> None:
        self.client = SenaiteClient(
            site_url.rstrip("/") + API_PATH, username=auth[0], password=auth[1]
        )
        self.services = {
            s["getKeyword"]: s["uid"] for s in self.client.iter_search("AnalysisService")
        }
        self.sample_type = next(
            t["uid"] for t in self.client.iter_search("SampleType") if t.get("title") == "Serum"
        )
        self.lab_client = self._one("Client", {"Name": "Outpatient clinic", "ClientID": "OPD"})
        self.contact = self._one(
            "Contact", {"parent_uid": self.lab_client, "Firstname": "Ward", "Surname": "Clerk"}
        )

    def close(self) -> None:
        self.client.close()

    def _one(self, portal_type: str, fields: dict[str, Any]) -> str:
        body = self.client.post("/create", {"portal_type": portal_type, **fields})
        return str(body["items"][0]["uid"])

    def _update(self, records: list[dict[str, Any]]) -> None:
        if records:
            self.client.post("/update", records)

    def write(self, p: SyntheticPatient) -> tuple[int, int]:
        """All of the patient's panels; returns (samples, results) written."""
        panels: dict[datetime, list[LabResult]] = defaultdict(list)
        for lab in p.labs:
            panels[lab.taken].append(lab)
        results = 0
        for taken, labs in sorted(panels.items()):
            values = {lab.keyword: lab.value for lab in labs if lab.keyword in self.services}
            if "CREA" in values and "EGFR" in self.services:
                age = p.age_at(taken.date())
                values["EGFR"] = round(egfr_ckd_epi_2021(values["CREA"], age, p.sex))  # type: ignore[arg-type]
            self._sample(p, taken, values)
            results += len(values)
        return len(panels), results

    def _sample(self, p: SyntheticPatient, taken: datetime, values: dict[str, float]) -> None:
        created = self.client.post(
            "/create",
            {
                "portal_type": "AnalysisRequest",
                "parent_uid": self.lab_client,
                "Contact": self.contact,
                "SampleType": self.sample_type,
                "DateSampled": taken.strftime("%Y-%m-%d %H:%M:%S"),
                "MedicalRecordNumber": p.mrn,
                "PatientFullName": {"firstname": p.given, "lastname": p.family},
                "Analyses": [self.services[k] for k in values],
            },
        )["items"][0]
        self._update([{"uid": created["uid"], "transition": "receive"}])
        analyses = self.client.get(
            "/Analysis", {"getRequestID": created["id"], "complete": "yes", "limit": 100}
        )["items"]
        by_keyword = {a["Keyword"]: a["uid"] for a in analyses}
        self._update([{"uid": by_keyword[k], "Result": str(v)} for k, v in values.items()])
        for step in ("submit", "verify"):
            self._update([{"uid": uid, "transition": step} for uid in by_keyword.values()])
        self._update([{"uid": created["uid"], "transition": "publish"}])
