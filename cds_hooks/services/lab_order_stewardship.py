"""lab-order-stewardship: a lab test ordered again inside its minimum retest interval.

On order-select and order-sign, each draft lab ServiceRequest whose LOINC has a G147 minimum
retest interval (RCPath/ACB/IBMS G147, March 2021; table in cds_hooks/clinical/data) is checked
against the patient's results and active orders for the same test: resulted inside the interval
-> info card with the last result's value and date; an active order already pending -> card as
well; both suggest removing the draft (a delete by resourceId). Each draft is judged on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from cds_hooks.cards import Card
from cds_hooks.clinical.retest import LabHistory, intervals, retest_too_soon_of
from cds_hooks.registry import HookData, ServiceEntry
from cds_hooks.request import HookRequest
from cds_hooks.services import suggestions as make
from cds_hooks.services.common import (
    DraftOrder,
    draft_orders,
    finding_card,
    judge_each,
    service_requests,
)

ID = "lab-order-stewardship"
_CODES = ",".join(f"http://loinc.org|{code}" for code in sorted(intervals()))
PREFETCH = {
    "results": f"Observation?patient={{{{context.patientId}}}}&code={_CODES}&_sort=-date",
    "pending": f"ServiceRequest?patient={{{{context.patientId}}}}&status=active&code={_CODES}",
}
ENTRIES = tuple(
    ServiceEntry(
        id=ID,
        hook=hook,
        title="Lab order stewardship",
        description=(
            "Flags a lab test drafted again within its minimum retest interval (RCPath/ACB/IBMS "
            "G147), showing the last result, and offers to remove the draft."
        ),
        prefetch=PREFETCH,
        required=frozenset(PREFETCH),
    )
    for hook in ("order-select", "order-sign")
)


def evaluate(request: HookRequest, data: HookData) -> Sequence[Card]:
    orders = service_requests(draft_orders(request))
    if not orders:
        return []
    history = LabHistory(  # read once, shared by every draft order
        observations=data.resources("results", "Observation"),
        pending_orders=data.resources("pending", "ServiceRequest"),
    )
    return judge_each(orders, lambda order: _judge(order, data, history), service=ID)


def _judge(order: DraftOrder, data: HookData, history: LabHistory) -> list[Card]:
    assert order.resource is not None  # service_requests() keeps resources only
    finding = retest_too_soon_of(service_request=order.resource, history=history, now=data.now)
    if finding is None:
        return []
    remove = make.remove(order, "Remove this draft order")
    return [finding_card(finding, order=order, suggestions=[remove] if remove else [])]
