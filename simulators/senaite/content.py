"""Update, as senaite.jsonapi's `update_object_with_data` does it.

Fields are set through the type's schema (unknown keys are skipped, references accept a UID, a
physical path or `{"uid": ...}`), required fields are checked, then an optional `transition` runs;
a failing transition leaves the fields set, as in SENAITE (the error is caught after the writes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from simulators.senaite.catalog import QueryError, parse_date
from simulators.senaite.schemas import (
    ANALYSIS_SCHEMA,
    GENERIC_SCHEMAS,
    PATIENT_SCHEMA,
    SAMPLE_SCHEMA,
    Schema,
)
from simulators.senaite.store import Obj, Store
from simulators.senaite.workflow import transition

_CONTROL_KEYS = {
    "uid",
    "path",
    "parent_path",
    "parent_uid",
    "id",
    "portal_type",
    "transition",
    "title",
    "description",
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "Client": ("Name", "ClientID"),
    "Contact": ("Firstname", "Surname"),
    "SampleType": ("title", "Prefix"),
    "AnalysisService": ("title", "Keyword", "Category"),
}
_SAMPLE_CREATION_ONLY = {"Analyses", "ResultsRange"}
RESULT_STATES = {"unassigned", "assigned"}
_SERVICE_FIELDS = (
    "Keyword",
    "ShortTitle",
    "Unit",
    "Precision",
    "Category",
    "Department",
    "PointOfCapture",
    "LowerDetectionLimit",
    "UpperDetectionLimit",
    "ResultOptions",
    "StringResult",
    "DetectionLimitSelector",
    "AllowManualDetectionLimit",
)


class ApiError(Exception):
    """An `APIError(status, message)`: the JSON error envelope with that HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def schema_for(obj: Obj, patient_extension: bool) -> Schema:
    if obj.portal_type == "AnalysisRequest":
        return {**SAMPLE_SCHEMA, **(PATIENT_SCHEMA if patient_extension else {})}
    if obj.portal_type == "Analysis":
        return ANALYSIS_SCHEMA
    return GENERIC_SCHEMAS.get(obj.portal_type, {})


def resolve(store: Store, value: Any) -> Obj | None:
    """A reference value as SENAITE's data managers accept it: UID, path or `{"uid": ...}`."""
    if isinstance(value, Mapping):
        value = value.get("uid") or value.get("service_uid")
    if not isinstance(value, str) or not value:
        return None
    return store.by_path(value) if value.startswith("/") else store.get(value)


def find_object(store: Store, record: Mapping[str, Any]) -> Obj | None:
    """`get_object_by_record`: by uid, by path, or by parent_path + id."""
    if record.get("uid"):
        return store.get(str(record["uid"]))
    if record.get("path"):
        return store.by_path(str(record["path"]))
    if record.get("parent_path") and record.get("id"):
        return store.by_path(f"{record['parent_path']}/{record['id']}")
    return None


def _convert(store: Store, name: str, kind: str, value: Any) -> Any:
    if value in (None, ""):
        return None
    if kind in ("ref", "refs"):
        values = value if isinstance(value, list) else [value]
        uids = []
        for item in values:
            target = resolve(store, item)
            if target is None:
                raise ApiError(400, f"Cannot set field '{name}': no object for {item!r}")
            uids.append(target.uid)
        return uids if kind == "refs" else uids[0]
    if kind == "date":
        try:
            return parse_date(str(value))
        except QueryError as exc:
            raise ApiError(400, f"Cannot set field '{name}': {exc}") from None
    return _special_value(name, value)


def _special_value(name: str, value: Any) -> Any:
    """Field-specific coercions of senaite.core and senaite.patient."""
    if name in ("Result", "Priority"):
        return str(value).strip()
    if name == "MedicalRecordNumber" and isinstance(value, str):
        return {"temporary": False, "value": value}
    if name == "PatientFullName":
        if isinstance(value, str):
            return {"firstname": value, "middlename": "", "lastname": ""}
        if not isinstance(value, Mapping):
            raise ApiError(400, f"Type not supported: {type(value).__name__}")
        return {k: str(value.get(k) or "") for k in ("firstname", "middlename", "lastname")}
    if name == "DateOfBirth" and not isinstance(value, list):
        try:
            return [parse_date(str(value)).isoformat(), False, False]
        except QueryError as exc:
            raise ApiError(400, str(exc)) from None
    return value


def set_fields(store: Store, obj: Obj, record: Mapping[str, Any], *, patient: bool) -> None:
    """`update_object_with_data` without the transition: set known fields, skip the rest."""
    schema = schema_for(obj, patient)
    for key, value in record.items():
        if key == "title" or (key == "Name" and obj.portal_type == "Client"):
            obj.title = str(value)
            if obj.portal_type == "Client":
                obj.fields["Name"] = str(value)
        elif key == "description":
            obj.description = str(value)
        elif obj.portal_type == "AnalysisRequest" and key in _SAMPLE_CREATION_ONLY:
            continue  # analyses are added at creation only (not modelled on update)
        elif key in schema and key not in _CONTROL_KEYS:
            _set_field(store, obj, key, schema[key][0], value)
    if obj.portal_type == "Contact":
        names = (obj.fields.get("Firstname"), obj.fields.get("Surname"))
        obj.title = " ".join(str(n) for n in names if n) or obj.title


def _set_field(store: Store, obj: Obj, key: str, kind: str, value: Any) -> None:
    if obj.portal_type == "Analysis" and key in ("Result", "DetectionLimitOperand"):
        if obj.review_state not in RESULT_STATES:
            raise ApiError(401, f"Not allowed to set the field '{key}'")
        if key == "Result":
            _set_result(store, obj, value)
            return
    obj.fields[key] = _convert(store, key, kind, value)


def _set_result(store: Store, analysis: Obj, value: Any) -> None:
    """`setResult`: a leading `<`/`>` becomes the detection limit operand."""
    text = "" if value is None else str(value).strip()
    operand = None
    if text[:1] in ("<", ">") and not analysis.fields.get("StringResult"):
        operand, text = text[0], text[1:].strip()
    analysis.fields["Result"] = text
    analysis.fields["DetectionLimitOperand"] = operand
    analysis.fields["ResultCaptureDate"] = store.now() if text else None


def validate_required(obj: Obj) -> None:
    missing = {}
    for name in REQUIRED.get(obj.portal_type, ()):
        value = obj.title if name == "title" else obj.fields.get(name)
        if value in (None, ""):
            missing[name] = f"{name} is required, please correct."
    if missing:
        raise ApiError(400, json.dumps(missing))


def update(store: Store, obj: Obj, record: Mapping[str, Any], *, actor: str, patient: bool) -> Obj:
    """Set fields, validate, then run the transition (which may fail after the fields stuck)."""
    set_fields(store, obj, record, patient=patient)
    validate_required(obj)
    store.touch(obj)
    if obj.portal_type == "Analysis" and obj.parent is not None:
        store.touch(obj.parent)
    name = record.get("transition")
    if name:
        transition(store, obj, str(name), actor)
    return obj


def copy_service_fields(service: Obj) -> dict[str, Any]:
    fields = {k: service.fields[k] for k in _SERVICE_FIELDS if k in service.fields}
    fields["AnalysisService"] = service.uid
    return fields
