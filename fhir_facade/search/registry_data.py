"""The FHIR R4 (4.0.1) search parameters this server indexes, as plain data.

Kept apart from ``parameters.py`` so the table can be read (and reviewed against
the spec's per-resource search pages) without the code that validates and wraps
it. Each row is ``(name, type, paths, targets)``:

* ``paths`` are the spec's FHIRPath expressions flattened to dotted element paths
  from the resource root; lists are traversed transparently and a choice element
  (``effective[x]``) is spelled out once per type the expression admits.
* ``targets`` is non-empty only where the spec's expression narrows a polymorphic
  reference with ``where(resolve() is X)`` (``patient`` on ``subject``); there the
  extractor drops references of other types. Plain reference parameters keep
  ``()`` so references whose type is not in the literal (``urn:uuid:``,
  ``#contained``) are still indexed.

Names are the R4 ones even where later versions renamed them (ImagingStudy
``basedon``, MedicationRequest ``authoredon``). Parameters that clients asked for
but R4 does not define are listed in comments, not invented.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

RawParam = tuple[str, str, tuple[str, ...], tuple[str, ...]]

_PATIENT: Final = ("Patient",)

RAW_PARAMS: Final[Mapping[str, tuple[RawParam, ...]]] = {
    "Patient": (
        ("identifier", "token", ("identifier",), ()),
        ("name", "string", ("name",), ()),
        ("family", "string", ("name.family",), ()),
        ("given", "string", ("name.given",), ()),
        ("birthdate", "date", ("birthDate",), ()),
        ("gender", "token", ("gender",), ()),
        ("active", "token", ("active",), ()),
        ("telecom", "token", ("telecom",), ()),
        # phone/email: Patient.telecom.where(system='phone'|'email'); the extractor
        # applies the system filter by parameter name.
        ("phone", "token", ("telecom",), ()),
        ("email", "token", ("telecom",), ()),
        ("address", "string", ("address",), ()),
        ("address-city", "string", ("address.city",), ()),
        ("address-postalcode", "string", ("address.postalCode",), ()),
        ("general-practitioner", "reference", ("generalPractitioner",), ()),
        ("organization", "reference", ("managingOrganization",), ()),
    ),
    "Practitioner": (
        ("identifier", "token", ("identifier",), ()),
        ("name", "string", ("name",), ()),
        ("family", "string", ("name.family",), ()),
        ("given", "string", ("name.given",), ()),
        ("active", "token", ("active",), ()),
        ("telecom", "token", ("telecom",), ()),
    ),
    "Encounter": (
        ("patient", "reference", ("subject",), _PATIENT),
        ("subject", "reference", ("subject",), ()),
        ("status", "token", ("status",), ()),
        ("class", "token", ("class",), ()),
        ("type", "token", ("type",), ()),
        ("date", "date", ("period",), ()),
        ("identifier", "token", ("identifier",), ()),
        ("participant", "reference", ("participant.individual",), ()),
        ("practitioner", "reference", ("participant.individual",), ("Practitioner",)),
        ("reason-code", "token", ("reasonCode",), ()),
    ),
    "Condition": (
        ("patient", "reference", ("subject",), _PATIENT),
        ("subject", "reference", ("subject",), ()),
        ("code", "token", ("code",), ()),
        ("category", "token", ("category",), ()),
        ("clinical-status", "token", ("clinicalStatus",), ()),
        ("verification-status", "token", ("verificationStatus",), ()),
        ("onset-date", "date", ("onsetDateTime", "onsetPeriod"), ()),
        ("recorded-date", "date", ("recordedDate",), ()),
        ("encounter", "reference", ("encounter",), ()),
        ("identifier", "token", ("identifier",), ()),
    ),
    # combo-code and the other component-* / code-value-* composites are not
    # supported: composite parameters need paired rows the index does not model.
    "Observation": (
        ("patient", "reference", ("subject",), _PATIENT),
        ("subject", "reference", ("subject",), ()),
        ("code", "token", ("code",), ()),
        ("category", "token", ("category",), ()),
        ("status", "token", ("status",), ()),
        (
            "date",
            "date",
            ("effectiveDateTime", "effectivePeriod", "effectiveTiming", "effectiveInstant"),
            (),
        ),
        ("encounter", "reference", ("encounter",), ()),
        ("identifier", "token", ("identifier",), ()),
        ("value-quantity", "quantity", ("valueQuantity",), ()),
        ("based-on", "reference", ("basedOn",), ()),
        ("specimen", "reference", ("specimen",), ()),
        ("performer", "reference", ("performer",), ()),
        ("derived-from", "reference", ("derivedFrom",), ()),
        ("has-member", "reference", ("hasMember",), ()),
    ),
    "ServiceRequest": (
        ("patient", "reference", ("subject",), _PATIENT),
        ("subject", "reference", ("subject",), ()),
        ("code", "token", ("code",), ()),
        ("category", "token", ("category",), ()),
        ("status", "token", ("status",), ()),
        ("intent", "token", ("intent",), ()),
        ("authored", "date", ("authoredOn",), ()),
        ("requester", "reference", ("requester",), ()),
        ("identifier", "token", ("identifier",), ()),
        ("encounter", "reference", ("encounter",), ()),
        ("based-on", "reference", ("basedOn",), ()),
        ("specimen", "reference", ("specimen",), ()),
        ("priority", "token", ("priority",), ()),
        (
            "occurrence",
            "date",
            ("occurrenceDateTime", "occurrencePeriod", "occurrenceTiming"),
            (),
        ),
    ),
    # R4 defines no "request" parameter on Specimen (Specimen.request exists as an
    # element only), so none is offered.
    "Specimen": (
        ("patient", "reference", ("subject",), _PATIENT),
        ("subject", "reference", ("subject",), ()),
        ("identifier", "token", ("identifier",), ()),
        ("accession", "token", ("accessionIdentifier",), ()),
        ("type", "token", ("type",), ()),
        ("collected", "date", ("collection.collectedDateTime", "collection.collectedPeriod"), ()),
        ("status", "token", ("status",), ()),
    ),
    # R4 defines no "imaging-study" parameter on DiagnosticReport.
    "DiagnosticReport": (
        ("patient", "reference", ("subject",), _PATIENT),
        ("subject", "reference", ("subject",), ()),
        ("code", "token", ("code",), ()),
        ("category", "token", ("category",), ()),
        ("status", "token", ("status",), ()),
        ("date", "date", ("effectiveDateTime", "effectivePeriod"), ()),
        ("issued", "date", ("issued",), ()),
        ("result", "reference", ("result",), ()),
        ("based-on", "reference", ("basedOn",), ()),
        ("encounter", "reference", ("encounter",), ()),
        ("identifier", "token", ("identifier",), ()),
        ("specimen", "reference", ("specimen",), ()),
        ("performer", "reference", ("performer",), ()),
    ),
    "ImagingStudy": (
        ("patient", "reference", ("subject",), _PATIENT),
        ("subject", "reference", ("subject",), ()),
        ("identifier", "token", ("identifier",), ()),
        ("modality", "token", ("series.modality",), ()),
        ("started", "date", ("started",), ()),
        ("status", "token", ("status",), ()),
        ("basedon", "reference", ("basedOn",), ()),
        ("endpoint", "reference", ("endpoint", "series.endpoint"), ()),
        ("series", "token", ("series.uid",), ()),
        ("instance", "token", ("series.instance.uid",), ()),
        ("bodysite", "token", ("series.bodySite",), ()),
        ("encounter", "reference", ("encounter",), ()),
    ),
    "MedicationRequest": (
        ("patient", "reference", ("subject",), _PATIENT),
        ("subject", "reference", ("subject",), ()),
        ("code", "token", ("medicationCodeableConcept",), ()),
        ("status", "token", ("status",), ()),
        ("intent", "token", ("intent",), ()),
        ("authoredon", "date", ("authoredOn",), ()),
        ("identifier", "token", ("identifier",), ()),
        ("encounter", "reference", ("encounter",), ()),
        ("requester", "reference", ("requester",), ()),
        ("medication", "reference", ("medicationReference",), ()),
    ),
    "AllergyIntolerance": (
        ("patient", "reference", ("patient",), ()),
        ("code", "token", ("code", "reaction.substance"), ()),
        ("clinical-status", "token", ("clinicalStatus",), ()),
        ("verification-status", "token", ("verificationStatus",), ()),
        ("category", "token", ("category",), ()),
        ("criticality", "token", ("criticality",), ()),
        ("type", "token", ("type",), ()),
        ("date", "date", ("recordedDate",), ()),
        ("identifier", "token", ("identifier",), ()),
        ("onset", "date", ("reaction.onset",), ()),
    ),
    # "related" (DocumentReference.context.related) exists in R4 but is left out on
    # request: nothing here queries by it.
    "DocumentReference": (
        ("patient", "reference", ("subject",), _PATIENT),
        ("subject", "reference", ("subject",), ()),
        ("type", "token", ("type",), ()),
        ("category", "token", ("category",), ()),
        ("status", "token", ("status",), ()),
        ("date", "date", ("date",), ()),
        ("identifier", "token", ("masterIdentifier", "identifier"), ()),
        ("encounter", "reference", ("context.encounter",), ()),
    ),
    "Endpoint": (
        ("identifier", "token", ("identifier",), ()),
        ("status", "token", ("status",), ()),
        ("connection-type", "token", ("connectionType",), ()),
        ("name", "string", ("name",), ()),
        ("organization", "reference", ("managingOrganization",), ()),
    ),
    "Provenance": (
        ("target", "reference", ("target",), ()),
        ("patient", "reference", ("target",), _PATIENT),
        ("agent", "reference", ("agent.who",), ()),
        ("recorded", "date", ("recorded",), ()),
        ("entity", "reference", ("entity.what",), ()),
    ),
    "AuditEvent": (
        ("date", "date", ("recorded",), ()),
        ("type", "token", ("type",), ()),
        ("subtype", "token", ("subtype",), ()),
        ("action", "token", ("action",), ()),
        ("outcome", "token", ("outcome",), ()),
        ("agent", "reference", ("agent.who",), ()),
        ("entity", "reference", ("entity.what",), ()),
        ("patient", "reference", ("agent.who", "entity.what"), _PATIENT),
        ("source", "reference", ("source.observer",), ()),
        ("site", "token", ("source.site",), ()),
    ),
}
