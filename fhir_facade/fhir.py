"""The one door to the FHIR models.

fhir.resources 8 defaults to R5, which rejects R4 shapes; its R4B package matches R4 (4.0.1) for
every resource this project touches. Importing the models only here keeps the choice of release in
one place (a test fails if another module imports fhir.resources).

Validation is the expensive part (about 50-80x a plain JSON parse), so it happens once, when a
resource enters the system; reads serve the canonical bytes made here.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import orjson
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

FHIR_VERSION = "4.0.1"
"""The wire format: R4. (R4B's models, identical for the supported types.)"""


# FHIR strings SHALL NOT contain code points below 32 other than tab, CR and LF (R4 2.1.28.0.1);
# PostgreSQL cannot even store a NUL in text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class InvalidResource(ValueError):
    """A resource that failed validation, with one (message, FHIRPath expression) per problem."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{where}: {msg}" for msg, where in problems))
        self.problems = problems


@cache
def model_class(resource_type: str) -> type[Resource] | None:
    """The R4B model class for a resource type name, or None when the release has no such type."""
    if not resource_type.isidentifier() or not resource_type[:1].isupper():
        return None
    try:
        module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    except ModuleNotFoundError:
        return None
    cls = getattr(module, resource_type, None)
    if isinstance(cls, type) and issubclass(cls, Resource):
        return cls
    return None


def _expression(resource_type: str, loc: tuple[int | str, ...]) -> str:
    parts = [resource_type]
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        elif not item.startswith("__") and item not in {"function-after", "function-before"}:
            parts.append(item)
    return ".".join(parts)


# A string that pydantic's lax mode could turn into a number or a boolean ("5", "true"). Only
# then can the model's values differ in JSON type from the input's.
_SCALAR_LOOKALIKE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false")

Path = tuple[int | str, ...]


def _prune(value: Any, path: Path, lookalikes: list[Path]) -> Any:
    """The value without nulls and empty strings, arrays and objects (which FHIR JSON never
    carries); appends to `lookalikes` the path of each string that lax validation might have
    coerced (all-digit codes, ids, "true")."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            kept = _prune(item, (*path, key), lookalikes)
            if kept is not None:
                out[key] = kept
        return out or None
    if isinstance(value, list):
        items = []
        for n, item in enumerate(value):
            kept = _prune(item, (*path, n), lookalikes)
            if kept is not None:
                items.append(kept)
        return items or None
    if isinstance(value, str):
        if not value:
            return None
        if _SCALAR_LOOKALIKE.fullmatch(value) is not None:
            lookalikes.append(path)
    return value


_ATTRIBUTES: dict[type, dict[str, str]] = {}


def _attributes(cls: type) -> dict[str, str]:
    """JSON name -> attribute name of a model's fields (they differ for `_x` and keywords)."""
    found = _ATTRIBUTES.get(cls)
    if found is None:
        fields = getattr(cls, "model_fields", {})
        found = _ATTRIBUTES[cls] = {(info.alias or name): name for name, info in fields.items()}
    return found


def _model_value(model: Any, path: Path) -> Any:
    value = model
    for step in path:
        if isinstance(step, int):
            value = value[step]
        else:
            value = getattr(value, _attributes(type(value))[step])
    return value


def _coerced(model: Any, lookalikes: list[Path]) -> bool:
    """Whether the model holds a non-string where the input had a number-like string: only
    elements typed decimal/integer/boolean coerce; codes, ids and strings stay strings. A path
    the walk cannot follow (pruned empties shift list indexes) counts as coerced: the model's
    own dump is then stored, which is always right, only slower."""
    for path in lookalikes:
        try:
            if not isinstance(_model_value(model, path), str):
                return True
        except (AttributeError, IndexError, KeyError, TypeError):
            return True
    return False


def validate(resource: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a resource dict against its R4 model; return the canonical dict to store.

    The canonical form is the resource as sent, without nulls and empty values. Re-serialising
    the model would cost more than validating it, and gives the same JSON except where lax
    validation coerced a string into a number or boolean; only resources where the model holds
    such a coerced value take the model's own dump (a number-like string in a string-typed
    element, such as an all-digit SNOMED or RxNorm code, does not), so the stored JSON always
    has the types the model checked.
    """
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise InvalidResource([("resourceType is missing or not a string", "resourceType")])
    cls = model_class(resource_type)
    if cls is None:
        raise InvalidResource([(f"unknown resource type {resource_type!r}", "resourceType")])
    try:
        model = cls.model_validate(dict(resource))
    except ValidationError as exc:
        problems = [
            (str(err.get("msg", "invalid")), _expression(resource_type, tuple(err.get("loc", ()))))
            for err in exc.errors()
        ]
        raise InvalidResource(problems) from None
    lookalikes: list[Path] = []
    pruned = _prune(dict(resource), (), lookalikes)
    if lookalikes and _coerced(model, lookalikes):
        dumped = model.model_dump_json(exclude_none=True, exclude_unset=True)
        canonical: dict[str, Any] = orjson.loads(dumped)
    else:
        canonical = pruned
        dumped = orjson.dumps(canonical).decode()
    if "\\u00" in dumped or "\\b" in dumped or "\\f" in dumped:  # JSON escapes of controls
        problems = list(_control_characters(canonical, resource_type))
        if problems:
            raise InvalidResource(problems)
    return canonical


def _control_characters(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        if _CONTROL.search(value):
            yield "control characters other than tab, CR and LF are not allowed", where
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _control_characters(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _control_characters(item, f"{where}[{i}]")


def is_known_type(resource_type: str) -> bool:
    """True when R4B has a model for this resource type."""
    return model_class(resource_type) is not None
