"""The data model of the simulated site: schema fields per type and the catalogs' indexes.

Each schema maps a field to how it renders (a plain value, a UID reference, a list of references
or a date) and to the empty value the recorded payloads show for it: `{}` for some unset
references, `null` for others, `"0.00"` for prices. Index names are those of SENAITE 2.x catalogs
(`senaite_catalog_sample`, `senaite_catalog_analysis`, `senaite_catalog_setup`, `portal_catalog`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Kind = Literal["value", "ref", "refs", "date"]
Schema = Mapping[str, tuple[Kind, Any]]


def names(text: str) -> list[str]:
    """A list of field or index names written as words (the tables stay readable)."""
    return text.split()


CLIENT_TYPES = names(
    """
    Folder AnalysisProfile ARTemplate AnalysisRequest AnalysisSpec Attachment Batch Contact
    Invoice SamplePoint
    """
)

CLIENT_SCHEMA: Schema = dict.fromkeys(
    names(
        """
        Name ClientID RestrictedCategories MemberDiscountApplies BankName BankBranch Fax
        AccountNumber relatedItems BillingAddress Phone DefaultCategories AccountName
        BulkDiscount PostalAddress excludeFromNav nextPreviousEnabled constrainTypesMode
        CCEmails EmailAddress PhysicalAddress AccountType TaxNumber
        """
    ),
    ("value", None),
) | {"DecimalMark": ("value", "."), "DefaultDecimalMark": ("value", True)}

CONTACT_SCHEMA: Schema = dict.fromkeys(
    names(
        """
        Salutation Firstname Middleinitial Middlename Surname JobTitle Department Username
        EmailAddress BusinessPhone BusinessFax HomePhone MobilePhone PhysicalAddress
        PostalAddress City District Country PostalCode CCContact
        """
    ),
    ("value", None),
)

SAMPLETYPE_SCHEMA: Schema = {
    "Prefix": ("value", ""),
    "Hazardous": ("value", False),
    "MinimumVolume": ("value", ""),
    "RetentionPeriod": ("value", None),
    "SampleMatrix": ("ref", {}),
    "ContainerType": ("ref", {}),
    "SamplePoints": ("refs", []),
    "AdmittedStickerTemplates": ("value", None),
}

SERVICE_SCHEMA: Schema = {
    "Keyword": ("value", ""),
    "ShortTitle": ("value", None),
    "Unit": ("value", None),
    "Precision": ("value", 2),
    "ExponentialFormatPrecision": ("value", 7),
    "LowerDetectionLimit": ("value", "0.0000000"),
    "UpperDetectionLimit": ("value", "1000000000.0000000"),
    "DetectionLimitSelector": ("value", None),
    "AllowManualDetectionLimit": ("value", None),
    "Category": ("ref", {}),
    "Department": ("ref", {}),
    "Method": ("ref", {}),
    "Instrument": ("ref", {}),
    "Calculation": ("ref", None),
    "PointOfCapture": ("value", "lab"),
    "ResultOptions": ("value", None),
    "ResultOptionsType": ("value", "select"),
    "StringResult": ("value", None),
    "Accredited": ("value", None),
    "SortKey": ("value", None),
    "CommercialID": ("value", None),
    "ProtocolID": ("value", None),
    "ScientificName": ("value", None),
    "Price": ("value", "0.00"),
    "BulkPrice": ("value", "0.00"),
    "VAT": ("value", "0.00"),
    "MaxTimeAllowed": ("value", {"days": 0, "hours": 2, "minutes": 0}),
}

GENERIC_SCHEMAS: dict[str, Schema] = {
    "Client": CLIENT_SCHEMA,
    "Contact": CONTACT_SCHEMA,
    "SampleType": SAMPLETYPE_SCHEMA,
    "AnalysisService": SERVICE_SCHEMA,
    "AnalysisCategory": {"Department": ("ref", {}), "Comments": ("value", None)},
    "Department": {"Manager": ("ref", {})},
    "AnalysisSpec": {"SampleType": ("ref", {}), "ResultsRange": ("value", [])},
    "ARTemplate": {
        "SampleType": ("ref", None),
        "SamplePoint": ("ref", None),
        "SamplePointUID": ("value", None),
        "AnalysisProfile": ("ref", None),
        "Analyses": ("value", []),
        "Partitions": ("value", []),
        "Composite": ("value", None),
        "AutoPartition": ("value", True),
        "SamplingRequired": ("value", None),
        "AnalysisServicesSettings": ("value", None),
        "Remarks": ("value", None),
    },
}


_EMPTY_REF_OBJECT = names(
    """
    SamplePoint StorageLocation SamplingDeviation SampleCondition Container Preservation
    ParentAnalysisRequest
    """
)
_NULL_REF = names(
    """
    Template SampleType Contact Client Batch PrimaryAnalysisRequest Specification
    PublicationSpecification Invalidated DetachedFrom Retest
    """
)
_NULL_VALUES = names(
    """
    RejectionReasons ResultsInterpretation ClientSampleID SubGroup InternalUse Printed
    AnalysisServicesSettings EnvironmentalConditions CCEmails Invoiced Preserver Attachment
    Sampler ScheduledSamplingSampler Composite ClientOrderNumber ServiceConditions ReceivedBy
    InvoiceExclude Invoice ClientReference Profile _ARAttachment RetentionPeriod Remarks
    DefaultContainerType ResultsInterpretationDepts ResultsRange
    """
)

SAMPLE_SCHEMA: Schema = (
    dict.fromkeys(_EMPTY_REF_OBJECT, ("ref", {}))
    | dict.fromkeys(_NULL_REF, ("ref", None))
    | dict.fromkeys(_NULL_VALUES, ("value", None))
    | dict.fromkeys(
        ("DateSampled", "DateReceived", "DatePublished", "DatePreserved", "SamplingDate"),
        ("date", None),
    )
    | {
        "CCContact": ("refs", None),
        "Profiles": ("refs", None),
        "Analyses": ("refs", []),
        "MemberDiscount": ("value", "0.00"),
        "Priority": ("value", "3"),
    }
)

PATIENT_SCHEMA: Schema = {
    "MedicalRecordNumber": ("value", {"temporary": False, "value": ""}),
    "PatientFullName": ("value", None),
    "PatientAddress": ("value", None),
    "DateOfBirth": ("value", [None, False, False]),
    "Sex": ("value", ""),
    "Gender": ("value", ""),
}

_ANALYSIS_FIELDS: dict[str, tuple[Kind, Any]] = {
    "Category": ("ref", {}),
    "Department": ("ref", {}),
    "RetestOf": ("ref", {}),
    "Method": ("ref", {}),
    "Instrument": ("ref", {}),
    "AnalysisService": ("ref", {}),
    "Attachment": ("ref", {}),
    "Calculation": ("ref", None),
    "ResultCaptureDate": ("date", None),
    "Result": ("value", ""),
    "ShortTitle": ("value", None),
    "Keyword": ("value", ""),
    "Unit": ("value", None),
    "Precision": ("value", 2),
    "ExponentialFormatPrecision": ("value", 7),
    "LowerDetectionLimit": ("value", "0.0000000"),
    "UpperDetectionLimit": ("value", "1000000000.0000000"),
    "DetectionLimitOperand": ("value", None),
    "ResultsRange": ("value", None),
    "ResultOptions": ("value", None),
    "ResultOptionsType": ("value", "select"),
    "StringResult": ("value", None),
    "Remarks": ("value", None),
    "Uncertainty": ("value", None),
    "PointOfCapture": ("value", "lab"),
    "HiddenManually": ("value", False),
    "ManualEntryOfResults": ("value", True),
    "NumberOfRequiredVerifications": ("value", -1),
    "SelfVerification": ("value", -1),
    "MaxTimeAllowed": ("value", {"hours": 2, "minutes": 0, "days": 0}),
    "DuplicateVariation": ("value", "10.00"),
    "Price": ("value", "0.00"),
    "BulkPrice": ("value", "0.00"),
    "VAT": ("value", "0.00"),
}
ANALYSIS_SCHEMA: Schema = _ANALYSIS_FIELDS | dict.fromkeys(
    names(
        """
        Uncertainties SortKey ProtocolID CommercialID InterimFields Hidden ScientificName
        PrecisionFromUncertainty AttachmentRequired AllowManualDetectionLimit Accredited
        InstrumentEntryOfResults DetectionLimitSelector AllowManualUncertainty
        """
    ),
    ("value", None),
)


_BASE = "UID id getId portal_type review_state is_active created Creator path title"
_SAMPLE = """
    assigned_state getBatchUID getClientID getClientSampleID getClientTitle getClientUID
    getDatePublished getDateReceived getDateSampled getDateVerified getDueDate getPrioritySortkey
    getSampleTypeUID is_received modified sortable_title medical_record_number is_temporary_mrn
"""
_ANALYSIS = """
    getAnalyst getAncestorsUIDs getCategoryUID getClientTitle getClientUID getDateReceived
    getDueDate getKeyword getPointOfCapture getRequestID getResultCaptureDate getSampleTypeUID
    getServiceUID sortable_title
"""
_SETUP = "getKeyword getCategoryUID getCategoryTitle getClientUID sortable_title Description Title"
_PORTAL = "Title Description modified getClientID sortable_title Type"

INDEXES: dict[str, frozenset[str]] = {
    "senaite_catalog_sample": frozenset(names(f"{_BASE} allowedRolesAndUsers {_SAMPLE}")),
    "senaite_catalog_analysis": frozenset(names(f"{_BASE} allowedRolesAndUsers {_ANALYSIS}")),
    "senaite_catalog_setup": frozenset(names(f"{_BASE} allowedRolesAndUsers {_SETUP} modified")),
    "portal_catalog": frozenset(names(f"{_BASE} allowedRolesAndUsers {_PORTAL}")),
}
DATE_INDEXES = frozenset(
    names(
        """
        created modified getDateSampled getDateReceived getDatePublished getDateVerified
        getDueDate getResultCaptureDate
        """
    )
)
KEYWORD_INDEXES = frozenset({"getAncestorsUIDs", "medical_record_number", "allowedRolesAndUsers"})
BOOLEAN_INDEXES = frozenset({"is_active", "is_received", "is_temporary_mrn"})
