"""The facade's one seam for orders: the API's ServiceRequest writes call these functions.

Off by default (facade tests and deployments without order routing see plain FHIR behaviour);
`install()` turns it on for the process (the composition root when CDSS_ORDERS_ENABLED, or a
test). A module switch rather than a field on the facade state keeps the API wiring to three
calls in interactions.py (bundles.py's create path goes through `interactions.created`).
"""

from __future__ import annotations

from typing import Any

from fhir_facade.store.base import StoredResource, Unit

_enabled = False


def install(enabled: bool = True) -> None:
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


def before_create(unit: Unit, resource: dict[str, Any]) -> StoredResource | None:
    if not _enabled or resource.get("resourceType") != "ServiceRequest":
        return None
    from fhir_facade.orders import intake

    return intake.before_create(unit, resource)


def after_write(unit: Unit, stored: StoredResource) -> None:
    if _enabled and stored.resource_type == "ServiceRequest":
        from fhir_facade.orders import intake

        intake.after_write(unit, stored)


def after_delete(unit: Unit, resource_type: str, id: str) -> None:
    if _enabled and resource_type == "ServiceRequest":
        from fhir_facade.orders import intake

        intake.after_delete(unit, resource_type, id)
