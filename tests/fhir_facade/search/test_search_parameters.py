"""The search parameter registry names real R4 parameters on real R4 elements.

Element paths are checked against the fhir.resources R4B models (R4B did not
change any element used here), walking every segment down to the leaf so a
misspelt or misplaced path fails here instead of silently indexing nothing.
"""

from __future__ import annotations

import importlib
import types
import typing
from collections.abc import Mapping
from typing import Any, get_args

import pytest

from fhir_facade.search.parameters import (
    COMMON_PARAMS,
    SEARCH_PARAMS,
    SUPPORTED_TYPES,
    SearchParam,
    SearchParamType,
    params_for,
)

EXPECTED_NAMES: Mapping[str, set[str]] = {
    "Patient": {
        "identifier", "name", "family", "given", "birthdate", "gender", "active", "telecom",
        "phone", "email", "address", "address-city", "address-postalcode",
        "general-practitioner", "organization",
    },
    "Practitioner": {"identifier", "name", "family", "given", "active", "telecom"},
    "Encounter": {
        "patient", "subject", "status", "class", "type", "date", "identifier", "participant",
        "practitioner", "reason-code",
    },
    "Condition": {
        "patient", "subject", "code", "category", "clinical-status", "verification-status",
        "onset-date", "recorded-date", "encounter", "identifier",
    },
    "Observation": {
        "patient", "subject", "code", "category", "status", "date", "encounter", "identifier",
        "value-quantity", "based-on", "specimen", "performer", "derived-from", "has-member",
    },
    "ServiceRequest": {
        "patient", "subject", "code", "category", "status", "intent", "authored", "requester",
        "identifier", "encounter", "based-on", "specimen", "priority", "occurrence",
    },
    "Specimen": {"patient", "subject", "identifier", "accession", "type", "collected", "status"},
    "DiagnosticReport": {
        "patient", "subject", "code", "category", "status", "date", "issued", "result",
        "based-on", "encounter", "identifier", "specimen", "performer",
    },
    "ImagingStudy": {
        "patient", "subject", "identifier", "modality", "started", "status", "basedon",
        "endpoint", "series", "instance", "bodysite", "encounter",
    },
    "MedicationRequest": {
        "patient", "subject", "code", "status", "intent", "authoredon", "identifier",
        "encounter", "requester", "medication",
    },
    "AllergyIntolerance": {
        "patient", "code", "clinical-status", "verification-status", "category", "criticality",
        "type", "date", "identifier", "onset",
    },
    "DocumentReference": {
        "patient", "subject", "type", "category", "status", "date", "identifier", "encounter",
    },
    "Endpoint": {"identifier", "status", "connection-type", "name", "organization"},
    "Provenance": {"target", "patient", "agent", "recorded", "entity"},
    "AuditEvent": {
        "date", "type", "subtype", "action", "outcome", "agent", "entity", "patient", "source",
        "site",
    },
}  # fmt: skip

# The FHIR datatypes each search parameter type can index (R4 search page, table 3.1.1.4).
LEAF_TYPES: Mapping[str, set[str]] = {
    "token": {
        "Code", "Coding", "CodeableConcept", "Identifier", "ContactPoint", "bool", "String",
        "Id", "Uri", "Oid",
    },
    "string": {"String", "HumanName", "Address", "Markdown"},
    "date": {"Date", "DateTime", "Instant", "Period", "Timing"},
    "reference": {"Reference", "Canonical", "Uri"},
    "quantity": {"Quantity"},
    "number": {"Decimal", "Integer", "PositiveInt", "UnsignedInt"},
}  # fmt: skip

ALL_PARAMS = [
    pytest.param(resource_type, param, id=f"{resource_type}.{name}")
    for resource_type, by_name in SEARCH_PARAMS.items()
    for name, param in by_name.items()
]


def model_class(resource_type: str) -> Any:
    """The fhir.resources R4B model class of a resource type."""
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def unwrap(annotation: Any) -> Any:
    """Strip Optional/Union-with-None and List from a field annotation."""
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            (annotation,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        elif origin is list:
            (annotation,) = get_args(annotation)
        else:
            return annotation


def label(annotation: Any) -> str:
    """A FHIR datatype name for a leaf: model class name or primitive marker name."""
    if typing.get_origin(annotation) is typing.Annotated:
        return type(annotation.__metadata__[0]).__name__
    if hasattr(annotation, "get_model_klass"):
        return str(annotation.get_model_klass().__name__)
    return str(annotation.__name__)


def field_by_element(model: Any, element: str) -> Any:
    """The pydantic field whose FHIR element name (alias) is ``element``."""
    for name, info in model.model_fields.items():
        if (info.alias or name) == element:
            return info
    raise AssertionError(f"{model.__name__} has no element {element!r}")


def test_supported_types_are_the_fifteen() -> None:
    assert set(EXPECTED_NAMES) == SUPPORTED_TYPES
    assert len(SUPPORTED_TYPES) == 15
    assert set(SEARCH_PARAMS) == SUPPORTED_TYPES


@pytest.mark.parametrize("resource_type", sorted(EXPECTED_NAMES))
def test_parameter_names(resource_type: str) -> None:
    by_name = params_for(resource_type)
    assert set(by_name) == EXPECTED_NAMES[resource_type] | {"_tag"}
    assert all(param.name == name for name, param in by_name.items())


@pytest.mark.parametrize("resource_type", ["Basic", "Bundle", "patient", ""])
def test_unknown_types_have_no_parameters(resource_type: str) -> None:
    assert dict(params_for(resource_type)) == {}


def test_common_params_are_documented_not_tabled() -> None:
    assert dict(COMMON_PARAMS) == {"_id": "token", "_lastUpdated": "date"}
    for by_name in SEARCH_PARAMS.values():
        assert not set(by_name) & set(COMMON_PARAMS)


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        SEARCH_PARAMS["Patient"]["x"] = SearchParam("x", "token", ("x",))  # type: ignore[index]


@pytest.mark.parametrize(("resource_type", "param"), ALL_PARAMS)
def test_param_is_well_formed(resource_type: str, param: SearchParam) -> None:
    assert param.type in get_args(SearchParamType)
    assert param.paths
    assert len(set(param.paths)) == len(param.paths)
    assert all(path and "" not in path.split(".") for path in param.paths)
    if param.targets:
        assert param.type == "reference"


@pytest.mark.parametrize(("resource_type", "param"), ALL_PARAMS)
def test_paths_name_r4_elements_of_a_matching_type(resource_type: str, param: SearchParam) -> None:
    root = model_class(resource_type)
    assert root.get_resource_type() == resource_type
    for path in param.paths:
        model, info = root, None
        segments = path.split(".")
        for depth, element in enumerate(segments):
            info = field_by_element(model, element)
            leaf = unwrap(info.annotation)
            if depth < len(segments) - 1:
                model = leaf.get_model_klass()
        assert info is not None
        leaf_type = label(unwrap(info.annotation))
        assert leaf_type in LEAF_TYPES[param.type], f"{path} is {leaf_type}"
        allowed = (info.json_schema_extra or {}).get("enum_reference_types")
        if param.targets and allowed and "Resource" not in allowed:
            assert set(param.targets) <= set(allowed), f"{path} cannot reference {param.targets}"


@pytest.mark.parametrize(
    ("resource_type", "name", "type_", "paths", "targets"),
    [
        ("Observation", "patient", "reference", ("subject",), ("Patient",)),
        ("Observation", "subject", "reference", ("subject",), ()),
        ("Observation", "date", "date",
         ("effectiveDateTime", "effectivePeriod", "effectiveTiming", "effectiveInstant"), ()),
        ("Encounter", "class", "token", ("class",), ()),
        ("Encounter", "practitioner", "reference", ("participant.individual",), ("Practitioner",)),
        ("Patient", "phone", "token", ("telecom",), ()),
        ("Patient", "address-postalcode", "string", ("address.postalCode",), ()),
        ("ImagingStudy", "basedon", "reference", ("basedOn",), ()),
        ("ImagingStudy", "instance", "token", ("series.instance.uid",), ()),
        ("MedicationRequest", "authoredon", "date", ("authoredOn",), ()),
        ("MedicationRequest", "code", "token", ("medicationCodeableConcept",), ()),
        ("MedicationRequest", "medication", "reference", ("medicationReference",), ()),
        ("AllergyIntolerance", "code", "token", ("code", "reaction.substance"), ()),
        ("AllergyIntolerance", "date", "date", ("recordedDate",), ()),
        ("DocumentReference", "identifier", "token", ("masterIdentifier", "identifier"), ()),
        ("AuditEvent", "date", "date", ("recorded",), ()),
        ("AuditEvent", "patient", "reference", ("agent.who", "entity.what"), ("Patient",)),
        ("Provenance", "patient", "reference", ("target",), ("Patient",)),
        ("Specimen", "accession", "token", ("accessionIdentifier",), ()),
        ("Condition", "onset-date", "date", ("onsetDateTime", "onsetPeriod"), ()),
    ],
)  # fmt: skip
def test_selected_definitions(
    resource_type: str,
    name: str,
    type_: SearchParamType,
    paths: tuple[str, ...],
    targets: tuple[str, ...],
) -> None:
    assert params_for(resource_type)[name] == SearchParam(name, type_, paths, targets)
