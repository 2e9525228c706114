"""Tolerant models of SENAITE JSON API items (samples and analyses).

Lenient on read: every field the mapper uses is optional and coerced (a number where a string is
documented, an empty string for a missing date, a bare string for senaite.patient's MRN record);
each coercion is a deviation, logged and counted, never an error. Only what identifies a record
(`uid`, and `id` for a sample) is required, so a payload without it becomes a Rejected entry.
Unknown fields are kept (`extra="allow"`): SENAITE add-ons add fields freely.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

log = logging.getLogger(__name__)


class Deviations:
    """Counts what payloads did differently from the documented shapes; logs the first of each."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def note(self, kind: str, detail: str = "") -> None:
        self.counts[kind] += 1
        level = logging.WARNING if self.counts[kind] == 1 else logging.DEBUG
        log.log(level, "SENAITE payload deviation (%s): %s", kind, detail or kind)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _note(info: ValidationInfo, kind: str, detail: str) -> None:
    deviations = (info.context or {}).get("deviations")
    if isinstance(deviations, Deviations):
        deviations.note(kind, f"{info.field_name}: {detail}")


class Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Ref(Lenient):
    """A UIDReferenceField value: `{uid, url, api_url}` (`{}` when empty)."""

    uid: str | None = None
    url: str | None = None
    api_url: str | None = None


class SampleFields(Lenient):
    """Field validators shared by samples and analyses."""

    @field_validator(
        "modified",
        "created",
        "DateSampled",
        "DateReceived",
        "DatePublished",
        "getDateVerified",
        "ResultCaptureDate",
        mode="before",
        check_fields=False,
    )
    @classmethod
    def _date(cls, value: Any, info: ValidationInfo) -> datetime | None:
        if value in (None, ""):
            return None
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            _note(info, "bad-date", repr(value))
            return None
        if parsed.tzinfo is None:
            _note(info, "naive-date", repr(value))
            parsed = parsed.replace(tzinfo=UTC)
        return parsed

    @field_validator(
        "review_state",
        "SampleTypeTitle",
        "getSampleTypeTitle",
        "ContactFullName",
        "getContactFullName",
        "ClientSampleID",
        "Priority",
        "getMedicalRecordNumberValue",
        "getPatientFullName",
        "TemplateTitle",
        "Keyword",
        "getKeyword",
        "title",
        "Unit",
        "Result",
        "DetectionLimitOperand",
        "portal_type",
        mode="before",
        check_fields=False,
    )
    @classmethod
    def _text(cls, value: Any, info: ValidationInfo) -> str | None:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            _note(info, "unexpected-type", f"{type(value).__name__} dropped")
            return None
        _note(info, "number-as-string", repr(value))
        return str(value)

    @field_validator("SampleType", "RetestOf", mode="before", check_fields=False)
    @classmethod
    def _ref(cls, value: Any, info: ValidationInfo) -> Any:
        if value in (None, {}, ""):
            return None
        if isinstance(value, str):
            _note(info, "bare-uid-reference", value)
            return {"uid": value}
        if not isinstance(value, dict):
            _note(info, "unexpected-type", f"{type(value).__name__} reference dropped")
            return None
        return value


class MrnRecord(Lenient):
    """senaite.patient's TemporaryIdentifierField: `{"temporary": bool, "value": str}`."""

    value: str | None = None
    temporary: bool | None = None


class FullNameRecord(Lenient):
    firstname: str | None = None
    middlename: str | None = None
    lastname: str | None = None


class SamplePayload(SampleFields):
    """An AnalysisRequest item (complete, from the sample catalog)."""

    uid: str
    id: str
    portal_type: str | None = None
    review_state: str | None = None
    created: datetime | None = None
    modified: datetime | None = None
    DateSampled: datetime | None = None
    DateReceived: datetime | None = None
    DatePublished: datetime | None = None
    getDateVerified: datetime | None = None
    SampleType: Ref | None = None
    SampleTypeTitle: str | None = None
    getSampleTypeTitle: str | None = None
    ContactFullName: str | None = None
    getContactFullName: str | None = None
    ClientSampleID: str | None = None
    Priority: str | None = None
    TemplateTitle: str | None = None
    MedicalRecordNumber: MrnRecord | None = None
    getMedicalRecordNumberValue: str | None = None
    PatientFullName: FullNameRecord | None = None
    getPatientFullName: str | None = None

    @field_validator("MedicalRecordNumber", mode="before")
    @classmethod
    def _mrn(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            _note(info, "bare-mrn", "string instead of {temporary, value}")
            return {"value": value, "temporary": False}
        return value or None

    @field_validator("PatientFullName", mode="before")
    @classmethod
    def _fullname(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"firstname": value} if value.strip() else None
        return value or None

    @property
    def mrn(self) -> str | None:
        value = (self.MedicalRecordNumber.value if self.MedicalRecordNumber else None) or (
            self.getMedicalRecordNumberValue
        )
        return value.strip() if value and value.strip() else None

    @property
    def patient_name(self) -> str | None:
        if self.PatientFullName is not None:
            name = self.PatientFullName
            parts = [name.firstname, name.middlename, name.lastname]
            text = " ".join(p.strip() for p in parts if p and p.strip())
            if text:
                return text
        return self.getPatientFullName or None

    @property
    def sample_type(self) -> str | None:
        return self.SampleTypeTitle or self.getSampleTypeTitle or None

    @property
    def requester(self) -> str | None:
        return self.ContactFullName or self.getContactFullName or None


class AnalysisPayload(SampleFields):
    """An Analysis item (complete, from the analysis catalog, so `review_state` is present)."""

    uid: str
    id: str | None = None
    portal_type: str | None = None
    review_state: str | None = None
    Keyword: str | None = None
    getKeyword: str | None = None
    title: str | None = None
    Result: str | None = None
    Unit: str | None = None
    ResultCaptureDate: datetime | None = None
    ResultsRange: dict[str, Any] | None = None
    DetectionLimitOperand: str | None = None
    StringResult: bool | None = None
    ResultOptions: list[dict[str, Any]] | None = None
    RetestOf: Ref | None = None
    modified: datetime | None = None

    @field_validator("ResultsRange", "ResultOptions", mode="before")
    @classmethod
    def _container(cls, value: Any, info: ValidationInfo) -> Any:
        if value in (None, "", [], {}):
            return None
        expected = dict if info.field_name == "ResultsRange" else list
        if not isinstance(value, expected):
            _note(info, "unexpected-type", f"{type(value).__name__} dropped")
            return None
        return value

    @field_validator("StringResult", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> bool | None:
        return None if value is None else bool(value)

    @property
    def keyword(self) -> str | None:
        return self.Keyword or self.getKeyword or None
