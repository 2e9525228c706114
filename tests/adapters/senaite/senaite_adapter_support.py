"""Helpers for the SENAITE adapter tests: a lab driver over the JSON API, paths, a clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from tests.simulators.senaite.senaite_sim_support import Clock, fixture, fixtures_dir

__all__ = ["GOLDEN", "Api", "Clock", "LabDriver", "fixture", "fixtures_dir"]

GOLDEN = Path(__file__).resolve().parent / "golden"


class Api(Protocol):
    """What the driver needs: SenaiteClient has it, and so does a TestClient wrapper."""

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> dict[str, Any]: ...

    def post(self, path: str, body: Any) -> dict[str, Any]: ...


class LabDriver:
    """Creates clients, samples and results through the JSON API only, like the cohort."""

    def __init__(self, api: Api, clock: Clock | None = None) -> None:
        self.api = api
        self.clock = clock
        services = api.get("AnalysisService", {"limit": 100})["items"]
        self.services = {s["getKeyword"]: s["uid"] for s in services}
        self.types = {s["title"]: s["uid"] for s in api.get("SampleType")["items"]}
        self.client = self.create(
            {"portal_type": "Client", "Name": "Oncology clinic", "ClientID": "ONC"}
        )
        self.contact = self.create(
            {
                "portal_type": "Contact",
                "parent_uid": self.client["uid"],
                "Firstname": "Grace",
                "Surname": "Hopper",
            }
        )

    def tick(self) -> None:
        if self.clock is not None:
            self.clock.advance(1)

    def post(self, path: str, body: Any) -> dict[str, Any]:
        self.tick()
        answer = self.api.post(path, body)
        assert answer.get("success") is not False, answer
        return answer

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = self.post("create", body)["items"][0]
        return item

    def sample(
        self,
        keywords: Sequence[str],
        *,
        mrn: str | None = "MRN-0001",
        sample_type: str = "Serum",
        name: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "portal_type": "AnalysisRequest",
            "parent_uid": self.client["uid"],
            "Contact": self.contact["uid"],
            "SampleType": self.types[sample_type],
            "DateSampled": "2024-10-07T07:45:00+00:00",
            "ClientSampleID": "ORD-1",
            "Analyses": [self.services[k] for k in keywords],
        }
        if mrn is not None:
            body["MedicalRecordNumber"] = mrn
            body["PatientFullName"] = dict(name or {"firstname": "Ada", "lastname": "Lovelace"})
        return self.create(body)

    def analyses(self, sample: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        items = self.api.get(
            "Analysis", {"getRequestID": sample["id"], "complete": "yes", "limit": 100}
        )["items"]
        return {a["id"]: a for a in items}

    def transition(self, uid: str, name: str) -> None:
        self.post("update", {"uid": uid, "transition": name})

    def results(
        self, sample: Mapping[str, Any], values: Mapping[str, str], *, verify: bool = True
    ) -> None:
        """Receive the sample, enter and submit results, verify them (to `verified`)."""
        self.transition(sample["uid"], "receive")
        analyses = self.analyses(sample)
        for keyword, value in values.items():
            self.post("update", {"uid": analyses[keyword]["uid"], "Result": value})
            self.transition(analyses[keyword]["uid"], "submit")
        if verify:
            for keyword in values:
                self.transition(analyses[keyword]["uid"], "verify")

    def published(self, keywords_values: Mapping[str, str], **kwargs: Any) -> dict[str, Any]:
        sample = self.sample(list(keywords_values), **kwargs)
        self.results(sample, keywords_values)
        self.transition(sample["uid"], "publish")
        return sample

    def raw_sample(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        """The sample as the sync reads it (complete, from the sample catalog)."""
        items = self.api.get(
            "AnalysisRequest",
            {"UID": sample["uid"], "complete": "yes", "catalog": "senaite_catalog_sample"},
        )["items"]
        item: dict[str, Any] = items[0]
        return item
