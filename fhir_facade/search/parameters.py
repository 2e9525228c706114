"""Typed registry of the FHIR R4 search parameters the store indexes.

The store, the extractor and the CapabilityStatement must agree on which
parameters exist and how each is typed; this module is that single source. It
wraps the raw table in ``registry_data`` into frozen ``SearchParam`` objects and
read-only mappings, checking the types once at import so a typo in the table
fails loudly at start-up rather than as a silently unindexed parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, cast, get_args

from fhir_facade.search.registry_data import RAW_PARAMS

__all__ = [
    "COMMON_PARAMS",
    "SEARCH_PARAMS",
    "SUPPORTED_TYPES",
    "SearchParam",
    "SearchParamType",
    "params_for",
]

SearchParamType = Literal["token", "string", "date", "reference", "quantity", "number"]

_PARAM_TYPES: Final[frozenset[str]] = frozenset(get_args(SearchParamType))


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter of one resource type.

    ``paths`` are dotted element paths from the resource root; lists along the way
    are traversed transparently. ``targets``, when non-empty, restricts a
    reference parameter to references of those resource types (the spec's
    ``where(resolve() is Patient)``).
    """

    name: str
    type: SearchParamType
    paths: tuple[str, ...]
    targets: tuple[str, ...] = ()


COMMON_PARAMS: Final[Mapping[str, SearchParamType]] = MappingProxyType(
    {"_id": "token", "_lastUpdated": "date"}
)
"""Parameters valid on every type; the store answers them from its own columns
(logical id, version timestamp), so they have no rows in the index tables."""


def _param_type(resource_type: str, name: str, raw: str) -> SearchParamType:
    """Narrow a table string to ``SearchParamType``, refusing anything unknown."""
    if raw not in _PARAM_TYPES:
        raise ValueError(f"{resource_type}.{name}: unknown search parameter type {raw!r}")
    # Membership was just checked, so the narrowing is sound.
    return cast(SearchParamType, raw)


def _build() -> Mapping[str, Mapping[str, SearchParam]]:
    """Turn the raw table into read-only mappings, rejecting duplicate names."""
    registry: dict[str, Mapping[str, SearchParam]] = {}
    for resource_type, rows in RAW_PARAMS.items():
        by_name: dict[str, SearchParam] = {}
        for name, raw_type, paths, targets in rows:
            if name in by_name:
                raise ValueError(f"{resource_type}.{name}: defined twice")
            if name in COMMON_PARAMS:
                raise ValueError(f"{resource_type}.{name}: common parameters belong to the store")
            param_type = _param_type(resource_type, name, raw_type)
            if targets and param_type != "reference":
                raise ValueError(f"{resource_type}.{name}: only references take targets")
            by_name[name] = SearchParam(name, param_type, paths, targets)
        # _tag is common to every type but, unlike _id/_lastUpdated, lives in the resource
        # body, so it is indexed like any token parameter (sync marks sources and links).
        by_name["_tag"] = SearchParam("_tag", "token", ("meta.tag",))
        registry[resource_type] = MappingProxyType(by_name)
    return MappingProxyType(registry)


SEARCH_PARAMS: Final[Mapping[str, Mapping[str, SearchParam]]] = _build()

SUPPORTED_TYPES: Final[frozenset[str]] = frozenset(SEARCH_PARAMS)

_EMPTY: Final[Mapping[str, SearchParam]] = MappingProxyType({})


def params_for(resource_type: str) -> Mapping[str, SearchParam]:
    """Return the parameters of a type, or an empty mapping for unsupported types.

    Empty rather than ``KeyError`` so callers can index or reject any resource
    uniformly; whether an unsupported type is an error is the API's decision.
    """
    return SEARCH_PARAMS.get(resource_type, _EMPTY)
