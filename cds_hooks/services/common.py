"""What the services share: reading draft orders one by one, and turning findings into cards.

Each draft order is judged on its own (hook library examples carry invalid resources, §2.5 of the
CDS Hooks notes): a malformed entry, or a rule that trips on one, costs that order its cards and
nothing else; the clinician gets an info card saying the order could not be checked, because a
silent gap in a safety check reads as "no problem".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cds_hooks.cards import Card, Link, Source, Suggestion, card, md_escape, shorten
from cds_hooks.clinical.findings import Finding
from cds_hooks.request import HookRequest

log = logging.getLogger(__name__)
PROJECT_SOURCE_URL = "https://cds-hooks.hl7.org/2.0/"


@dataclass(frozen=True, slots=True)
class DraftOrder:
    """One entry of context.draftOrders: the resource if it is one, and how to refer to it."""

    index: int
    resource: Mapping[str, Any] | None

    @property
    def resource_type(self) -> str | None:
        rtype = self.resource.get("resourceType") if self.resource else None
        return rtype if isinstance(rtype, str) else None

    @property
    def id(self) -> str | None:
        rid = self.resource.get("id") if self.resource else None
        return rid if isinstance(rid, str) and rid else None

    @property
    def reference(self) -> str | None:
        return f"{self.resource_type}/{self.id}" if self.resource_type and self.id else None

    @property
    def label(self) -> str:
        return self.reference or f"draft order #{self.index + 1}"


def draft_orders(request: HookRequest) -> list[DraftOrder]:
    """The draft orders to judge: on order-select only the selected ones (all of them when a
    client leaves `selections` out), on order-sign every draft."""
    bundle = request.context.get("draftOrders")
    entries = bundle.get("entry") if isinstance(bundle, Mapping) else None
    orders = [
        DraftOrder(i, e.get("resource") if isinstance(e, Mapping) else None)
        for i, e in enumerate(entries if isinstance(entries, list) else [])
    ]
    orders = [o for o in orders if o.resource is None or isinstance(o.resource, Mapping)]
    selections = request.context.get("selections")
    if request.hook == "order-select" and isinstance(selections, list):
        chosen = set(selections)
        orders = [o for o in orders if o.reference in chosen]
    return orders


def service_requests(orders: Iterable[DraftOrder]) -> list[DraftOrder]:
    return [o for o in orders if o.resource_type == "ServiceRequest"]


def judge_each(
    orders: Sequence[DraftOrder],
    judge: Callable[[DraftOrder], list[Card]],
    *,
    service: str,
) -> list[Card]:
    """Run `judge` per order; an exception costs that order its cards, never the call."""
    cards: list[Card] = []
    for order in orders:
        try:
            cards.extend(judge(order))
        except Exception:
            log.exception("%s: could not evaluate %s", service, order.label)
            cards.append(not_checked(order, service))
    return cards


def not_checked(order: DraftOrder, service: str) -> Card:
    return card(
        summary=f"{order.label} could not be checked by {service}",
        indicator="info",
        source=Source(service, PROJECT_SOURCE_URL),
        kind="not-checked",
        detail=(
            f"The draft order {md_escape(order.label)} could not be read or evaluated, so the "
            "safety checks of this service did not run for it. Review it manually."
        ),
        order=order.reference,
    )


def source_for(finding: Finding) -> Source:
    """The card's source: the guideline the finding cites (short label, its URL)."""
    label = " ".join(finding.citation.split())
    if len(label) > 100:
        head = label.split(" (")[0].split(";")[0].strip()
        label = head if len(head) >= 20 else label
    return Source(shorten(label, 120), finding.source_url)


def finding_card(
    finding: Finding,
    *,
    order: DraftOrder | None = None,
    suggestions: Sequence[Suggestion] = (),
    links: Sequence[Link] = (),
    extra_detail: str = "",
) -> Card:
    """A card from a finding: its summary, severity as indicator, its Markdown detail (the rule
    modules write it, with the citation), the cited source."""
    detail = finding.detail + (f"\n\n{extra_detail}" if extra_detail else "")
    return card(
        summary=finding.summary,
        indicator=finding.severity,
        source=source_for(finding),
        kind=finding.kind,
        detail=detail,
        suggestions=suggestions,
        links=links,
        order=order.reference if order else None,
    )


def reference(resource: Mapping[str, Any]) -> str | None:
    rtype, rid = resource.get("resourceType"), resource.get("id")
    return f"{rtype}/{rid}" if isinstance(rtype, str) and isinstance(rid, str) else None


def single(resources: list[dict[str, Any]]) -> dict[str, Any] | None:
    return resources[0] if resources else None
