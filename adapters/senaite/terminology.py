"""Code systems and value maps for SENAITE -> FHIR: statuses, units, specimen types, identifiers.

Status maps follow the SENAITE vendor's own FHIR mapping (naralabs/senaite.fhir, see
docs/source-systems.md section 4.2). Units are normalised to UCUM because SENAITE stores whatever
the lab typed ("mg/dl", "x10^9/L", "umol/l"); a unit that cannot be normalised is kept as display
text only, never given a made-up UCUM code.
"""

from __future__ import annotations

import functools
import re

UCUM_SYSTEM = "http://unitsofmeasure.org"
SNOMED_SYSTEM = "http://snomed.info/sct"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
REPORT_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0074"
IDENTIFIER_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"

# The facade's own namespaces for SENAITE identifiers.
SAMPLE_ID_SYSTEM = "urn:cdss:senaite:sample-id"
CLIENT_SAMPLE_ID_SYSTEM = "urn:cdss:senaite:client-sample-id"
UID_SYSTEM = "urn:cdss:senaite:uid"
KEYWORD_SYSTEM = "urn:cdss:senaite:keyword"
SOURCE_NAME = "senaite"

# Analysis review_state -> Observation.status (vendor map; default registered).
OBSERVATION_STATUS = {
    "registered": "registered",
    "unassigned": "registered",
    "assigned": "registered",
    "to_be_verified": "registered",
    "verified": "preliminary",
    "published": "final",
    "retracted": "entered-in-error",
    "rejected": "cancelled",
    "cancelled": "cancelled",
}
REPORTED_ANALYSIS_STATES = frozenset({"to_be_verified", "verified", "published"})
# Withdrawn after a result existed: re-emitted so a result reported earlier is corrected.
WITHDRAWN_ANALYSIS_STATES = frozenset({"retracted", "rejected"})

# Sample review_state -> ServiceRequest.status (vendor map; default active).
SERVICE_REQUEST_STATUS = {
    "sample_received": "active",
    "to_be_verified": "active",
    "published": "completed",
    "dispatched": "completed",
    "invalid": "entered-in-error",
    "retracted": "entered-in-error",
    "rejected": "revoked",
    "cancelled": "revoked",
}

# Sample review_state -> DiagnosticReport.status; other states get no report.
DIAGNOSTIC_REPORT_STATUS = {
    "verified": "preliminary",
    "published": "final",
    "invalid": "entered-in-error",
}

# Sample review_state -> Specimen.status (states before receipt: not stated).
SPECIMEN_STATUS = {
    "sample_received": "available",
    "to_be_verified": "available",
    "verified": "available",
    "published": "available",
    "invalid": "available",
    "rejected": "unsatisfactory",
    "cancelled": "unavailable",
}

# SENAITE Priority "1" (highest) .. "5" -> ServiceRequest.priority.
PRIORITY = {"1": "stat", "2": "urgent", "3": "routine", "4": "routine", "5": "routine"}

# Sample type title (case-insensitive) -> SNOMED CT specimen concept (IPS specimen value set).
SPECIMEN_TYPES = {
    "serum": ("119364003", "Serum specimen"),
    "plasma": ("119361006", "Plasma specimen"),
    "whole blood": ("258580003", "Whole blood specimen"),
    "blood": ("119297000", "Blood specimen"),
    "urine": ("122575003", "Urine specimen"),
}

INTERPRETATION_DISPLAY = {
    "N": "Normal",
    "L": "Low",
    "H": "High",
    "LL": "Critical low",
    "HH": "Critical high",
}

_UNIT_ALIASES = {
    "mg/dl": "mg/dL",
    "g/dl": "g/dL",
    "g/l": "g/L",
    "mg/l": "mg/L",
    "ng/ml": "ng/mL",
    "ug/l": "ug/L",
    "pg/ml": "pg/mL",
    "umol/l": "umol/L",
    "mmol/l": "mmol/L",
    "mmol/mol": "mmol/mol",
    "meq/l": "meq/L",
    "u/l": "U/L",
    "iu/l": "[iU]/L",
    "[iu]/l": "[iU]/L",
    "[u]/l": "[U]/L",
    "u/ml": "U/mL",
    "[u]/ml": "[U]/mL",
    "iu/ml": "[iU]/mL",
    "[iu]/ml": "[iU]/mL",
    "%": "%",
    "10*3/ul": "10*3/uL",
    "10^3/ul": "10*3/uL",
    "x10^3/ul": "10*3/uL",
    "k/ul": "10*3/uL",
    "10*9/l": "10*9/L",
    "10^9/l": "10*9/L",
    "x10^9/l": "10*9/L",
    "x10e9/l": "10*9/L",
    "ml/min/{1.73_m2}": "mL/min/{1.73_m2}",
    "ml/min/1.73m2": "mL/min/{1.73_m2}",
    "ml/min/1.73 m2": "mL/min/{1.73_m2}",
    "ml/min/1.73m²": "mL/min/{1.73_m2}",
    "ml/min/1.73 m²": "mL/min/{1.73_m2}",
}


@functools.cache
def ucum_unit(unit: str | None) -> str | None:
    """The UCUM code for a unit as typed in SENAITE, or None when it is not recognised."""
    if unit is None or not unit.strip():
        return None
    key = re.sub(r"\s+", " ", unit.strip()).replace("µ", "u").replace("μ", "u").lower()
    return _UNIT_ALIASES.get(key)
