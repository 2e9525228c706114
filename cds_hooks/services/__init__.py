"""The CDS services shipped with the hub, one module each (its discovery entries as data and a
pure `evaluate`), and the registry that serves them."""

from __future__ import annotations

from cds_hooks.registry import Registry, Service
from cds_hooks.services import (
    imaging_order_safety,
    lab_order_stewardship,
    patient_imaging_summary,
)

MODULES: tuple[Service, ...] = (
    imaging_order_safety,
    lab_order_stewardship,
    patient_imaging_summary,
)


def default_registry() -> Registry:
    registry = Registry()
    for module in MODULES:
        registry.register_module(module)
    return registry
