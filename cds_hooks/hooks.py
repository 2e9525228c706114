"""What each hook's `context` holds (Hook Library 1.0.1), checked when a request arrives.

Only the hooks this service registers for are described in full; any other hook's context must
still be an object, and its fields are left to the service. Fields the spec marks "Prefetch
Token: Yes" are the only ones a prefetch template may name (#prefetch-tokens; the Library's
"Servers SHALL NOT use draftOrders / selections in prefetch tokens").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cds_hooks.errors import bad_request

FieldType = Literal["string", "id", "reference", "strings", "bundle"]

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# ord-1 (order-select/order-sign userId): ^[\d\w]+\/[\d\w-.]+$ ; patient-view also allows
# Patient/ and RelatedPerson/ users.
_USER = re.compile(r"[\w]+/[\w\-.]+")


@dataclass(frozen=True, slots=True)
class ContextField:
    name: str
    type: FieldType
    required: bool
    token: bool  # usable as {{context.name}} in a prefetch template
    user_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HookSpec:
    hook: str
    fields: tuple[ContextField, ...]

    @property
    def token_fields(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields if f.token)


_ORDER_USERS = ("Practitioner", "PractitionerRole")
_COMMON = (
    ContextField("patientId", "id", True, True),
    ContextField("encounterId", "id", False, True),
)
HOOKS: dict[str, HookSpec] = {
    "patient-view": HookSpec(
        "patient-view",
        (
            ContextField(
                "userId",
                "reference",
                True,
                True,
                ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson"),
            ),
            *_COMMON,
        ),
    ),
    "order-select": HookSpec(
        "order-select",
        (
            ContextField("userId", "reference", True, True, _ORDER_USERS),
            *_COMMON,
            # REQUIRED in every revision of the hook, though Inferno's sheet says optional
            # (requirements README): tolerated when absent, all drafts then count as selected.
            ContextField("selections", "strings", False, False),
            ContextField("draftOrders", "bundle", True, False),
        ),
    ),
    "order-sign": HookSpec(
        "order-sign",
        (
            ContextField("userId", "reference", True, True, _ORDER_USERS),
            *_COMMON,
            ContextField("draftOrders", "bundle", True, False),
        ),
    ),
}


def check_context(hook: str, context: Any) -> Mapping[str, Any]:
    """The context as a mapping, or a 400 naming the first field that is wrong."""
    if not isinstance(context, Mapping):
        raise bad_request("context is required and must be a JSON object", "context")
    spec = HOOKS.get(hook)
    if spec is None:
        return context
    for f in spec.fields:
        value = context.get(f.name)
        where = f"context.{f.name}"
        if value is None:
            if f.required:
                raise bad_request(f"{where} is required for the {hook} hook", where)
            continue
        _check_field(f, value, where)
    return context


def _check_field(f: ContextField, value: Any, where: str) -> None:
    if f.type == "id":
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise bad_request(f"{where} must be a FHIR id", where)
    elif f.type == "reference":
        if not isinstance(value, str) or not _USER.fullmatch(value):
            raise bad_request(f"{where} must be a relative reference Type/id", where)
        if f.user_types and value.split("/", 1)[0] not in f.user_types:
            raise bad_request(f"{where} must refer to one of {', '.join(f.user_types)}", where)
    elif f.type == "strings":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad_request(f"{where} must be an array of strings", where)
    elif f.type == "bundle" and (
        not isinstance(value, Mapping) or value.get("resourceType") != "Bundle"
    ):
        raise bad_request(f"{where} must be a FHIR Bundle", where)
