"""An info card naming each source system a service needs that is unreachable right now.

The facade holds what the sync last copied from OpenEMR, SENAITE and Orthanc, so the rules still
run when one of them is down; but anything since the outage is missing, and a silent gap in a
safety check reads as "no problem". The card says which source was not consulted so the
clinician can check it by hand. Whether a source is up comes from a monitor that probes in the
background (cdss.observability.health): the call itself never waits on a dead source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cds_hooks.cards import Card, Source, card
from cds_hooks.services.common import PROJECT_SOURCE_URL

# What each service reads, by origin: orders, medications, allergies and demographics come from
# the EHR, lab results from the LIS, prior studies from the PACS ("orthanc" or, with
# CDSS_PACS_PROFILE=dicomweb, "pacs": the name cdss.observability.health probes it under).
NEEDS: dict[str, tuple[str, ...]] = {
    "imaging-order-safety": ("openemr", "senaite", "orthanc", "pacs"),
    "lab-order-stewardship": ("openemr", "senaite"),
    "patient-imaging-summary": ("orthanc", "pacs"),
}
LABELS = {
    "openemr": ("OpenEMR (EHR)", "orders, medications, allergies and EHR results"),
    "senaite": ("SENAITE (laboratory)", "laboratory results and pending lab orders"),
    "orthanc": ("Orthanc (imaging archive)", "prior imaging studies"),
    "pacs": ("The PACS (imaging archive)", "prior imaging studies"),
}


class SourceMonitor(Protocol):
    def down(self) -> list[str]: ...


def unavailable(service_id: str, monitor: SourceMonitor | None) -> list[str]:
    if monitor is None:
        return []
    needed = NEEDS.get(service_id, ())
    return [name for name in monitor.down() if name in needed]


def missing_source_cards(service_id: str, missing: Sequence[str]) -> list[Card]:
    cards = []
    for name in missing:
        label, what = LABELS.get(name, (name, "its data"))
        cards.append(
            card(
                summary=f"{label} is unreachable: {what} since the outage are not checked",
                indicator="info",
                source=Source(service_id, PROJECT_SOURCE_URL),
                kind="source-unavailable",
                detail=(
                    f"{label} did not answer when this advice was prepared. The checks used the "
                    f"copy last synchronised from it, so recent {what} may be missing. "
                    "Check them in the source system before relying on the absence of a warning."
                ),
            )
        )
    return cards
