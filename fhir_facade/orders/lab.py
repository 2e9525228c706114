"""Lab orders -> SENAITE samples, and SENAITE review states -> the order's status.

Delivery is idempotent by the sample's ClientSampleID, which is the ServiceRequest id (as the
OpenMRS/Ozone integration does): before creating, the router asks SENAITE for a sample with that
ClientSampleID, so a worker killed after SENAITE created the sample but before the outbox row
said so finds the sample on its next try instead of creating a second one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.senaite.client import SenaiteClient, SenaiteError
from adapters.senaite.terminology import SERVICE_REQUEST_STATUS
from fhir_facade.orders.config import OrderSettings

log = logging.getLogger(__name__)
API_PATH = "/@@API/senaite/v1"
SAMPLE_CATALOG = "senaite_catalog_sample"


class Permanent(RuntimeError):
    """The target refused the order for good (retrying cannot help)."""


class NotReady(RuntimeError):
    """Routing is not configured or the target's set-up is missing (no client, contact, sample
    type): retried with backoff, so orders flow once an operator fixes it, none are failed."""


@dataclass(frozen=True, slots=True)
class Sample:
    uid: str
    id: str
    review_state: str


def make_client(settings: OrderSettings) -> SenaiteClient:
    if not settings.senaite_url:
        raise NotReady("CDSS_SENAITE_URL is not set: lab orders cannot be routed")
    return SenaiteClient(
        settings.senaite_url.rstrip("/") + API_PATH,
        username=settings.senaite_user,
        password=settings.senaite_password.get_secret_value(),
        timeout=settings.orders_timeout_s,
        max_attempts=1,  # the outbox retries, with its own backoff
    )


class LabRouter:
    """Creates, finds and cancels samples; looks the lab set-up up once per process."""

    def __init__(self, client: SenaiteClient, settings: OrderSettings) -> None:
        self.client = client
        self.settings = settings
        self._setup: tuple[str, str, str, dict[str, str]] | None = None

    def setup(self) -> tuple[str, str, str, dict[str, str]]:
        """(client UID, contact UID, sample type UID, keyword -> service UID)."""
        if self._setup is None:
            s = self.settings
            clients = self.client.get("Client", {"getClientID": s.orders_senaite_client_id})
            items = [
                i
                for i in clients.get("items", [])
                if i.get("getClientID", "") in ("", s.orders_senaite_client_id)
            ]
            if not items:
                raise NotReady(f"SENAITE has no client {s.orders_senaite_client_id!r}")
            client_uid = str(items[0]["uid"])
            contact = s.orders_senaite_contact or self._first_contact(client_uid)
            types = [
                t
                for t in self.client.iter_search("SampleType")
                if t.get("title") == s.orders_senaite_sample_type
            ]
            if not types:
                raise NotReady(f"SENAITE has no sample type {s.orders_senaite_sample_type!r}")
            services = {
                str(a.get("getKeyword")): str(a["uid"])
                for a in self.client.iter_search("AnalysisService")
            }
            self._setup = (client_uid, contact, str(types[0]["uid"]), services)
        return self._setup

    def _first_contact(self, client_uid: str) -> str:
        for contact in self.client.iter_search("Contact", {"getParentUID": client_uid}):
            if contact.get("parent_uid") == client_uid:
                return str(contact["uid"])
        raise NotReady("the SENAITE client has no contact; set CDSS_ORDERS_SENAITE_CONTACT")

    def _one(self, **index: str) -> Sample | None:
        """A sample from the catalog listing, whose metadata carries `review_state` (complete
        objects may not: source-systems.md §2.6)."""
        found = self.client.get("AnalysisRequest", {**index, "catalog": SAMPLE_CATALOG})
        for item in found.get("items", []):
            return Sample(
                str(item["uid"]),
                str(item.get("getId") or item.get("id") or ""),
                str(item.get("review_state") or ""),
            )
        return None

    def find(self, key: str) -> Sample | None:
        return self._one(getClientSampleID=key)

    def route(self, key: str, payload: dict[str, Any]) -> Sample:
        """The order's sample: the one SENAITE already has for `key`, else a new one."""
        existing = self.find(key)
        if existing is not None:
            return existing
        client_uid, contact, sample_type, services = self.setup()
        missing = [k for k in payload["keywords"] if k not in services]
        if missing:
            raise Permanent(f"SENAITE has no analysis service for {missing}")
        name = payload.get("name") or {}
        record = {
            "portal_type": "AnalysisRequest",
            "parent_uid": client_uid,
            "Contact": contact,
            "SampleType": sample_type,
            "DateSampled": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "ClientSampleID": key,
            "Priority": "1" if payload.get("priority") == "stat" else "3",
            "MedicalRecordNumber": payload["mrn"],
            "PatientFullName": {
                "firstname": name.get("given", ""),
                "lastname": name.get("family", ""),
            },
            "Analyses": [services[k] for k in payload["keywords"]],
        }
        try:
            item = self.client.post("/create", record)["items"][0]
        except SenaiteError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 401:
                raise Permanent(str(exc)) from exc
            raise
        return Sample(str(item["uid"]), str(item["id"]), str(item.get("review_state") or ""))

    def cancel(self, uid: str) -> str | None:
        """Cancel the sample; None when done, else why SENAITE would not (e.g. already received)."""
        try:
            self.client.post("/update", {"uid": uid, "transition": "cancel"})
        except SenaiteError as exc:
            if exc.status is None or exc.status >= 500:
                raise
            return str(exc)
        state = self.state(uid)
        return (
            None if state == "cancelled" else f"the sample is {state!r}; SENAITE did not cancel it"
        )

    def state(self, uid: str) -> str:
        sample = self._one(UID=uid)
        if sample is None:
            raise Permanent(f"SENAITE has no sample {uid}")
        return sample.review_state


def order_status(review_state: str) -> str | None:
    """The ServiceRequest status a sample state means, when it ends the order."""
    status = SERVICE_REQUEST_STATUS.get(review_state)
    return status if status in ("completed", "revoked", "entered-in-error") else None
