"""Item shapes of samples (AnalysisRequest) and analyses, field for field as recorded.

The schema defaults are the empty values the recorded payloads show (`{}` for some empty
references, `null` for others, `"0.00"` for prices). senaite.patient fields (MRN, patient name,
birth date, sex) are added only when the site has that add-on, as they are in SENAITE.
"""

from __future__ import annotations

from typing import Any

from simulators.senaite.schemas import ANALYSIS_SCHEMA, PATIENT_SCHEMA, SAMPLE_SCHEMA
from simulators.senaite.shapes import EFFECTIVE, Context, client_of, dublin_core, iso, schema_values
from simulators.senaite.store import Obj

_COMPUTED_NULLS = (
    "ContactUsername",
    "ContactEmail",
    "CreatorEmail",
    "SamplerFullName",
    "SamplerEmail",
    "SamplePointTitle",
    "SamplePointUID",
    "StorageLocationUID",
    "BatchURL",
    "BatchID",
    "ProfilesUID",
    "ProfilesTitle",
    "ProfilesURL",
    "ProfilesTitleStr",
)

ROLES = [
    "LabManager",
    "Publisher",
    "Preserver",
    "SamplingCoordinator",
    "Verifier",
    "Manager",
    "LabClerk",
    "Sampler",
    "user:admin",
    "Analyst",
    "RegulatoryInspector",
]

VALID_ANALYSIS_STATES = (
    "registered",
    "unassigned",
    "assigned",
    "to_be_verified",
    "verified",
    "published",
)


def analyses_of(sample: Obj) -> list[Obj]:
    return [o for o in sample.children.values() if o.portal_type == "Analysis"]


def patient_fullname(sample: Obj) -> str:
    name = sample.fields.get("PatientFullName") or {}
    parts = (name.get("firstname"), name.get("middlename"), name.get("lastname"))
    return " ".join(p for p in parts if p)


def mrn_value(sample: Obj) -> str:
    mrn = sample.fields.get("MedicalRecordNumber") or {}
    return str(mrn.get("value") or "")


def sample_dict(obj: Obj, ctx: Context) -> dict[str, Any]:
    """Schema fields of a sample (see create-analysis-request.json)."""
    store = ctx.store
    out = dublin_core(obj) | schema_values(obj, SAMPLE_SCHEMA, ctx)
    if ctx.patient_extension:
        out |= schema_values(obj, PATIENT_SCHEMA, ctx)
    sample_type = store.get(obj.fields.get("SampleType"))
    contact = store.get(obj.fields.get("Contact"))
    template = store.get(obj.fields.get("Template"))
    out |= dict.fromkeys(_COMPUTED_NULLS)
    out |= {
        "SampleTypeTitle": sample_type.title if sample_type else None,
        "SampleTypeUID": sample_type.uid if sample_type else None,
        "ContactUID": contact.uid if contact else None,
        "ContactFullName": contact.title if contact else None,
        "CreatorFullName": "admin",
        "TemplateTitle": template.title if template else None,
        "TemplateUID": template.uid if template else None,
        "TemplateURL": store.path(template) if template else None,
    }
    return out


def analyses_num(sample: Obj) -> list[int]:
    """`getAnalysesNum`: [verified, total, not submitted, to be verified] of valid analyses."""
    states = [
        a.review_state for a in analyses_of(sample) if a.review_state in VALID_ANALYSIS_STATES
    ]
    verified = sum(s in ("verified", "published") for s in states)
    to_verify = sum(s == "to_be_verified" for s in states)
    return [verified, len(states), len(states) - verified - to_verify, to_verify]


def sample_brain(obj: Obj, ctx: Context) -> dict[str, Any]:
    """senaite_catalog_sample columns (see get-analysis-request.json)."""
    store = ctx.store
    client = client_of(obj)
    contact = store.get(obj.fields.get("Contact"))
    sample_type = store.get(obj.fields.get("SampleType"))
    template = store.get(obj.fields.get("Template"))
    num = analyses_num(obj)
    created = iso(obj.created)
    cols: dict[str, Any] = dict.fromkeys(
        (
            "getSamplerEmail",
            "getClientReference",
            "getSamplerFullName",
            "getContactEmail",
            "getSampler",
            "getProfilesTitleStr",
            "getContactUsername",
            "getStorageLocationTitle",
            "getStorageLocationUID",
            "getBatchID",
            "getSamplingDeviationTitle",
            "getSamplePointTitle",
            "getBatchURL",
            "getCreatorEmail",
        ),
        "",
    )
    cols |= dict.fromkeys(
        (
            "getDistrict",
            "getRawParentAnalysisRequest",
            "getDueDate",
            "state_title",
            "getProvince",
            "getSamplingDate",
            "getBatchUID",
            "location",
        )
    )
    cols |= {
        key: []
        for key in ("getProfilesUID", "getProfilesURL", "getDescendantsUIDs", "getProfilesTitle")
    }
    cols |= {
        "id": obj.id,
        "title": obj.title,
        "description": obj.description,
        "author": "admin",
        "portal_type": obj.portal_type,
        "created": created,
        "modified": iso(obj.modified),
        "effective": EFFECTIVE,
        "tags": [],
        "review_state": obj.review_state,
        "assigned_state": "not_applicable" if obj.review_state == "sample_due" else "unassigned",
        "getInternalUse": False,
        "getInvoiceExclude": False,
        "getHazardous": False,
        "getSamplingWorkflowEnabled": False,
        "getPrinted": "0",
        "getSampleTypeUID": sample_type.uid if sample_type else "",
        "getSampleTypeTitle": sample_type.title if sample_type else "",
        "getContactUID": contact.uid if contact else "",
        "getContactFullName": contact.title if contact else "",
        "getContactURL": store.path(contact) if contact else "",
        "getTemplateTitle": template.title if template else "",
        "getTemplateUID": template.uid if template else "",
        "getTemplateURL": store.path(template) if template else "",
        "getClientSampleID": obj.fields.get("ClientSampleID") or "",
        "getClientOrderNumber": obj.fields.get("ClientOrderNumber") or "",
        "getClientTitle": client.title if client else "",
        "getClientID": client.fields.get("ClientID") if client else None,
        "getClientUID": client.uid if client else "",
        "getClientURL": store.path(client) if client else "",
        "getDateSampled": iso(obj.fields.get("DateSampled")),
        "getDateReceived": iso(obj.fields.get("DateReceived")),
        "getDatePublished": iso(obj.fields.get("DatePublished")),
        "getDateVerified": iso(obj.fields.get("DateVerified")),
        "getAnalysesNum": num,
        "getProgress": _progress(obj, num),
        "getCreatorFullName": "admin",
        "getPrioritySortkey": f"{obj.fields.get('Priority') or '3'}.{created}",
        "allowedRolesAndUsers": list(ROLES),
        "getPhysicalPath": store.path(obj).split("/"),
    }
    if ctx.patient_extension:
        cols |= {
            "getMedicalRecordNumberValue": mrn_value(obj),
            "getPatientFullName": patient_fullname(obj),
        }
    return cols


def _progress(sample: Obj, num: list[int]) -> int:
    if sample.review_state in ("published", "verified"):
        return 100
    verified, total = num[0], num[1]
    return int(100 * verified / total) if total else 0


def analysis_dict(obj: Obj, ctx: Context) -> dict[str, Any]:
    """Schema fields of an analysis (see get-analyses.json)."""
    return dublin_core(obj) | schema_values(obj, ANALYSIS_SCHEMA, ctx)


def analysis_brain(obj: Obj, ctx: Context) -> dict[str, Any]:
    """senaite_catalog_analysis columns: the review_state lives here, not in the schema."""
    store = ctx.store
    sample = obj.parent
    assert sample is not None
    client = client_of(sample)
    verifiers = [h["actor"] for h in obj.history if h.get("action") == "verify"]
    submitters = [h["actor"] for h in obj.history if h.get("action") == "submit"]
    return {
        "id": obj.id,
        "title": obj.title,
        "description": obj.description,
        "author": "admin",
        "portal_type": obj.portal_type,
        "created": iso(obj.created),
        "modified": iso(obj.modified),
        "effective": EFFECTIVE,
        "tags": [],
        "location": None,
        "review_state": obj.review_state,
        "state_title": None,
        "allowedRolesAndUsers": list(ROLES),
        "getPhysicalPath": store.path(obj).split("/"),
        "getKeyword": obj.fields.get("Keyword"),
        "getResult": obj.fields.get("Result") or "",
        "getUnit": obj.fields.get("Unit") or "",
        "getResultCaptureDate": iso(obj.fields.get("ResultCaptureDate")),
        "getRequestID": sample.id,
        "getRequestUID": sample.uid,
        "getRequestTitle": sample.title,
        "getRequestURL": store.path(sample),
        "getDateReceived": iso(sample.fields.get("DateReceived")),
        "getDateSampled": iso(sample.fields.get("DateSampled")),
        "getDueDate": None,
        "getServiceUID": obj.fields.get("AnalysisService"),
        "getSampleTypeUID": sample.fields.get("SampleType"),
        "getClientTitle": client.title if client else "",
        "getClientUID": client.uid if client else "",
        "getClientOrderNumber": sample.fields.get("ClientOrderNumber") or "",
        "getMethodTitle": None,
        "getPointOfCapture": "lab",
        "getAnalyst": "",
        "getNumberOfVerifications": len(verifiers),
        "getNumberOfRequiredVerifications": 1,
        "getVerificators": verifiers,
        "getLastVerificator": verifiers[-1] if verifiers else None,
        "getSubmittedBy": submitters[-1] if submitters else None,
        "getResultOptions": obj.fields.get("ResultOptions") or [],
        "getRetestOfUID": obj.fields.get("RetestOf") or "",
        "getRemarks": obj.fields.get("Remarks") or "",
        "getPrioritySortkey": f"{sample.fields.get('Priority') or '3'}.{iso(sample.created)}",
    }
