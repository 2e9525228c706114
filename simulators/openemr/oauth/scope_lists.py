"""The scopes OpenEMR 8.2.0-dev's authorization server knows (source-systems.md §1.4).

Transcribed from `ServerScopeListEntity` / `ScopeRepository` of that release, with system scopes
enabled (the simulator serves SMART Backend Services). A scope outside `SUPPORTED_SCOPES` is
`invalid_scope` at registration and at /authorize, exactly as OpenEMR rejects it, so a client
that works against the simulator asks only for what the real server grants.
"""

from __future__ import annotations

from itertools import chain

REQUIRED_SMART = (
    "openid",
    "fhirUser",
    "online_access",
    "offline_access",
    "launch",
    "launch/patient",
    "api:oemr",
    "api:fhir",
    "api:port",
    "system/Patient.$export",
    "system/Group.$export",
    "system/*.$bulkdata-status",
    "system/*.$export",
)

OIDC = (
    "openid",
    "profile",
    "name",
    "address",
    "given_name",
    "family_name",
    "nickname",
    "phone",
    "phone_verified",
    "email",
    "email_verified",
    "offline_access",
    "api:oemr",
    "api:fhir",
    "api:port",
)

SITE_SCOPE = "site:default"

V1_READ = (
    "AllergyIntolerance",
    "Appointment",
    "CarePlan",
    "CareTeam",
    "Condition",
    "Coverage",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Binary",
    "Encounter",
    "Goal",
    "Group",
    "Immunization",
    "Location",
    "Medication",
    "MedicationRequest",
    "Observation",
    "Organization",
    "Patient",
    "Person",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "ValueSet",
    "OperationDefinition",
)

WRITABLE = frozenset({"Patient", "Practitioner", "Organization"})
"""FHIR types with a write scope and write routes (§1.4); everything else is read-only."""

V2_READ = (
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Condition",
    "Coverage",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "Goal",
    "Immunization",
    "Media",
    "MedicationDispense",
    "MedicationRequest",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "ServiceRequest",
    "Specimen",
)

GRANULAR = {
    "Condition": (
        "category=http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern",
        "category=http://terminology.hl7.org/CodeSystem/condition-category|encounter-diagnosis",
        "category=http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item",
    ),
    "Observation": (
        "category=http://hl7.org/fhir/us/core/CodeSystem/us-core-category|sdoh",
        # OpenEMR's own typo, advertised verbatim (§1.4).
        "category=http://terminology.hl7.org//CodeSystem-observation-category|social-history",
        "category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
        "category=http://terminology.hl7.org/CodeSystem/observation-category|survey",
        "category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs",
    ),
    "DocumentReference": (
        "category=http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
        "|clinical-note",
    ),
}

# fmt: off  (dense data tables: one scope per line would triple the file)
API_V1 = (
    "patient/patient.read",
    "patient/appointment.read",
    "patient/encounter.read",
    *(
        f"user/{name}"
        for name in (
            "allergy.read",
            "allergy.write",
            "appointment.read",
            "appointment.write",
            "dental_issue.read",
            "dental_issue.write",
            "document.read",
            "document.write",
            "drug.read",
            "employer.read",
            "encounter.read",
            "encounter.write",
            "facility.read",
            "facility.write",
            "immunization.read",
            "insurance.read",
            "insurance.write",
            "insurance_company.read",
            "insurance_company.write",
            "insurance_type.read",
            "list.read",
            "medical_problem.read",
            "medical_problem.write",
            "medication.read",
            "medication.write",
            "message.write",
            "patient.read",
            "patient.write",
            "practitioner.read",
            "practitioner.write",
            "prescription.read",
            "procedure.read",
            "product.read",
            "soap_note.read",
            "soap_note.write",
            "surgery.read",
            "surgery.write",
            "transaction.read",
            "transaction.write",
            "user.read",
            "version.read",
            "vital.read",
            "vital.write",
        )
    ),
)

API_V2 = (
    *(
        f"user/{name}"
        for name in (
            "allergy.cruds",
            "appointment.cruds",
            "dental_issue.cruds",
            "document.crs",
            "drug.rs",
            "employer.s",
            "encounter.crus",
            "facility.crus",
            "immunization.rs",
            "insurance.crus",
            "insurance_company.crus",
            "insurance_type.s",
            "list.r",
            "medical_problem.cruds",
            "medication.cruds",
            "message.cud",
            "patient.crus",
            "practitioner.crus",
            "prescription.rs",
            "procedure.rs",
            "product.s",
            "soap_note.crus",
            "surgery.cruds",
            "transaction.cuds",
            "user.rs",
            "version.s",
            "vital.crus",
            "insurance.$swap-insurance",
        )
    ),
    "patient/patient.s",
    "patient/encounter.rs",
    "patient/appointment.rs",
)

# fmt: on

CONTEXTS = ("patient", "user", "system")


def _fhir_v1() -> list[str]:
    scopes = [f"{ctx}/{res}.read" for res in V1_READ for ctx in CONTEXTS]
    scopes += [f"{ctx}/{res}.write" for res in sorted(WRITABLE) for ctx in ("user", "system")]
    scopes += [f"{ctx}/DocumentReference.$docref" for ctx in CONTEXTS]
    return scopes


def _fhir_v2() -> list[str]:
    scopes = [f"{ctx}/{res}.rs" for res in V2_READ for ctx in CONTEXTS]
    for res, restrictions in GRANULAR.items():
        scopes += [f"{ctx}/{res}.rs?{r}" for r in restrictions for ctx in CONTEXTS]
    return scopes


def _unique(items: chain[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


SMART_SCOPES = _unique(chain(REQUIRED_SMART, OIDC, (SITE_SCOPE,), _fhir_v1(), _fhir_v2()))
"""What /.well-known documents advertise (ScopeRepository::getCurrentSmartScopes)."""

SUPPORTED_SCOPES = frozenset(SMART_SCOPES) | frozenset(API_V1) | frozenset(API_V2)
"""Every scope a client may register or request: SMART, OIDC and standard-API scopes."""

CLAIMS_SUPPORTED = (
    "profile",
    "email",
    "email_verified",
    "phone",
    "phone_verified",
    "family_name",
    "given_name",
    "fhirUser",
    "locale",
    "api:oemr",
    "api:fhir",
    "api:port",
    "aud",
    "iat",
    "iss",
    "exp",
    "sub",
)
