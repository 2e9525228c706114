"""A protocol-faithful SENAITE LIS (senaite.jsonapi v1) simulator for the demo, cohort and tests.

`create_senaite_app()` serves `/<site>/@@API/senaite/v1`; its lab set-up (sample types, analysis
services with UCUM units and ranges, one specification) is in `catalogue.py`. Content is created
only through the JSON API, exactly as against a real SENAITE.
"""

from simulators.senaite.app import DEFAULT_USERS, SenaiteState, create_senaite_app
from simulators.senaite.catalogue import SAMPLE_TYPES, SERVICES, SampleTypeDef, ServiceDef

__all__ = [
    "DEFAULT_USERS",
    "SAMPLE_TYPES",
    "SERVICES",
    "SampleTypeDef",
    "SenaiteState",
    "ServiceDef",
    "create_senaite_app",
]
