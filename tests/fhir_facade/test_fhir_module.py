"""fhir_facade/fhir.py is the one door to fhir.resources (ARCHITECTURE 3.1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fhir_facade.fhir import InvalidResource, is_known_type, validate

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "cdss",
    "fhir_facade",
    "adapters",
    "cds_hooks",
    "cdw",
    "models",
    "smart_app",
    "simulators",
    "bench",
)


def _imports_fhir_resources(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            names = [
                a.value
                for a in node.args
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
        if any(n == "fhir.resources" or n.startswith("fhir.resources.") for n in names):
            return True
    return False


def test_only_fhir_module_imports_fhir_resources() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for pkg in PACKAGES
        for p in (ROOT / pkg).rglob("*.py")
        if p != ROOT / "fhir_facade" / "fhir.py" and _imports_fhir_resources(p)
    ]
    assert offenders == []
    assert _imports_fhir_resources(ROOT / "fhir_facade" / "fhir.py")


def test_validate_returns_canonical_r4_json() -> None:
    out = validate(
        {"gender": "female", "resourceType": "Patient", "name": [{"family": "Doe"}], "active": None}
    )
    assert out == {"resourceType": "Patient", "gender": "female", "name": [{"family": "Doe"}]}


def test_r4_shapes_are_accepted_where_r5_differs() -> None:
    # ImagingStudy.modality is a Coding list in R4 (CodeableConcept in R5).
    study = {
        "resourceType": "ImagingStudy",
        "status": "available",
        "subject": {"reference": "Patient/1"},
        "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}],
    }
    assert validate(study)["modality"][0]["code"] == "CT"


@pytest.mark.parametrize(
    ("resource", "where"),
    [
        ({"resourceType": "Patient", "birthDate": "1970-13-01"}, "Patient.birthDate"),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "valueQuantity": "abc",
            },
            "Observation.valueQuantity",
        ),
        ({"resourceType": "Nope"}, "resourceType"),
        ({"name": []}, "resourceType"),
    ],
)
def test_invalid_resources_name_the_element(resource: dict[str, object], where: str) -> None:
    with pytest.raises(InvalidResource) as info:
        validate(resource)
    assert any(expr.startswith(where) for _, expr in info.value.problems)


def test_known_types() -> None:
    assert is_known_type("ImagingStudy")
    assert not is_known_type("imagingstudy")
    assert not is_known_type("Foo")


def test_number_like_strings_keep_their_type_where_the_element_is_a_string(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fhir_facade import fhir

    slow: list[bool] = []
    real = fhir._coerced
    monkeypatch.setattr(fhir, "_coerced", lambda m, p: slow.append(real(m, p)) or slow[-1])
    med = {
        "resourceType": "MedicationRequest", "id": "123", "status": "active", "intent": "order",
        "subject": {"reference": "Patient/1"},
        "medicationCodeableConcept": {"coding": [
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975"}]},
        "note": [{"text": "true"}],
    }  # fmt: skip
    assert validate(med) == med  # all-digit RxNorm code, numeric id, "true" text: strings
    enc = {"resourceType": "Encounter", "status": "finished", "class": {"code": "123"}}
    assert validate(enc) == enc  # `class` is a keyword attribute in the model
    assert slow == [False, False]  # the fast path, though the strings look like numbers
    coerced = validate(
        {
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/1"}, "medicationCodeableConcept": {"text": "x"},
            "dosageInstruction": [{"sequence": "2", "asNeededBoolean": "true"}],
        }
    )  # fmt: skip
    assert coerced["dosageInstruction"] == [{"sequence": 2, "asNeededBoolean": True}]
    obs = validate(
        {
            "resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "valueQuantity": {"value": "1.5", "code": "1"},
        }
    )  # fmt: skip
    assert obs["valueQuantity"] == {"value": 1.5, "code": "1"}
    assert slow[2:] == [True, True]
