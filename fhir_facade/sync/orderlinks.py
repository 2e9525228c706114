"""Order links made by the sync itself, so a re-sync keeps them.

Order routing (fhir_facade.orders) points a lab sample's results and an acquired study at the
hub's order (`basedOn: ServiceRequest/<order>`). The sources know nothing of that reference, so
if only routing added it, the next sync of a corrected result or a re-sent study would store
the source's version and drop it. Instead the sync adds the link every time it maps:

* SENAITE: the sample's ServiceRequest carries the ClientSampleID the router set (= the
  order's id); the sample's Observations and DiagnosticReport reference that ServiceRequest,
  and gain `ServiceRequest/<order>` next to it.
* Orthanc: the ImagingStudy carries the accession number (identifier type ACSN) that the
  worklist item gave the modality; the order holds it as `urn:cdss:accession|<value>`.

Only references to orders that exist in the facade are added. Lookups are per batch: a sample
whose ServiceRequest is in the same batch (the usual case) costs no read at all.
"""

from __future__ import annotations

from typing import Any

import orjson

from adapters.senaite.terminology import CLIENT_SAMPLE_ID_SYSTEM
from fhir_facade import errors
from fhir_facade.search.query import parse_search
from fhir_facade.store.base import Unit

ACCESSION_SYSTEM = "urn:cdss:accession"  # fhir_facade.orders.intake.ACCESSION_SYSTEM
_RESULTS = ("Observation", "DiagnosticReport")


class OrderLinker:
    """Adds order references to one batch's resources (before they are stored)."""

    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self._orders: dict[str, bool] = {}  # order id -> exists in the facade
        self._samples: dict[str, str | None] = {}  # sample ServiceRequest id -> order id

    def link(self, resources: list[dict[str, Any]]) -> None:
        for res in resources:
            if res.get("resourceType") == "ServiceRequest" and res.get("id"):
                self._samples[str(res["id"])] = self._order_of_sample(res)
        for res in resources:
            kind = res.get("resourceType")
            if kind in _RESULTS:
                for sample in _service_requests(res):
                    order = self._sample_order(sample)
                    if order and order != sample:
                        _add(res, order)
            elif kind == "ImagingStudy":
                for accession in _accessions(res):
                    order = self._order_by_accession(accession)
                    if order:
                        _add(res, order)

    def _order_of_sample(self, sample: dict[str, Any]) -> str | None:
        for ident in sample.get("identifier") or []:
            if ident.get("system") == CLIENT_SAMPLE_ID_SYSTEM and ident.get("value"):
                order = str(ident["value"])
                return order if order != sample.get("id") and self._exists(order) else None
        return None

    def _sample_order(self, sample_id: str) -> str | None:
        if sample_id not in self._samples:
            try:
                stored = self.unit.read("ServiceRequest", sample_id)
            except errors.OperationOutcomeError:
                self._samples[sample_id] = None
            else:
                found = orjson.loads(stored.content or b"{}")
                self._samples[sample_id] = self._order_of_sample(found)
        return self._samples[sample_id]

    def _exists(self, order_id: str) -> bool:
        if order_id not in self._orders:
            try:
                self.unit.read("ServiceRequest", order_id)
                self._orders[order_id] = True
            except errors.OperationOutcomeError:
                self._orders[order_id] = False
        return self._orders[order_id]

    def _order_by_accession(self, accession: str) -> str | None:
        query = parse_search("ServiceRequest", [("identifier", f"{ACCESSION_SYSTEM}|{accession}")])
        query.count, query.total = 1, "none"
        found = self.unit.search(query).matches
        return found[0].id if found else None


def _service_requests(res: dict[str, Any]) -> list[str]:
    out = []
    for ref in res.get("basedOn") or []:
        text = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(text, str) and text.startswith("ServiceRequest/"):
            out.append(text.split("/", 1)[1])
    return out


def _accessions(res: dict[str, Any]) -> list[str]:
    out = []
    for ident in res.get("identifier") or []:
        codes = [c.get("code") for c in (ident.get("type") or {}).get("coding") or []]
        if "ACSN" in codes and ident.get("value"):
            out.append(str(ident["value"]))
    return out


def _add(res: dict[str, Any], order_id: str) -> None:
    ref = {"reference": f"ServiceRequest/{order_id}"}
    based = res.setdefault("basedOn", [])
    if ref not in based:
        based.append(ref)
