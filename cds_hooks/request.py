"""The service request as it arrives: checked for what the spec requires, lenient about the rest.

Unknown members are ignored everywhere (#extensions; HAPI's 400 on `extension`, hapi-fhir #6262,
is the cautionary tale), so the body is read as plain JSON rather than a closed model. What is
checked is what the service relies on: `hook` (equal to the hook the service is registered for),
`hookInstance` (a UUID: the audit correlation id), `context` per hook, `prefetch` values
(resource, Bundle or null), `fhirAuthorization`'s required members and invariant cds-r-1
(fhirAuthorization requires fhirServer). Every failure is a 400 with a message naming the member.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from cds_hooks.errors import bad_request
from cds_hooks.hooks import check_context

log = logging.getLogger(__name__)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True, slots=True)
class FhirAuthorization:
    """The OAuth token the client lends for its FHIR server. Never logged, never stored."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None


@dataclass(frozen=True, slots=True)
class HookRequest:
    hook: str
    hook_instance: str
    context: Mapping[str, Any]
    prefetch: Mapping[str, Any] = field(default_factory=dict)
    fhir_server: str | None = None
    fhir_authorization: FhirAuthorization | None = None

    @property
    def patient_id(self) -> str | None:
        value = self.context.get("patientId")
        return value if isinstance(value, str) else None

    @property
    def user_id(self) -> str | None:
        value = self.context.get("userId")
        return value if isinstance(value, str) else None


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from None


def parse_request(payload: Any) -> HookRequest:
    """A HookRequest from the decoded body, or a 400 naming what is wrong."""
    if not isinstance(payload, Mapping):
        raise bad_request("the body must be a JSON object")
    hook = payload.get("hook")
    if not isinstance(hook, str) or not hook:
        raise bad_request("hook is required and must be a string", "hook")
    instance = payload.get("hookInstance")
    if not isinstance(instance, str) or not _UUID.fullmatch(instance):
        raise bad_request("hookInstance is required and must be a UUID", "hookInstance")
    context = check_context(hook, payload.get("context"))
    server = _fhir_server(payload.get("fhirServer"))
    auth = _fhir_authorization(payload.get("fhirAuthorization"))
    if auth is not None and server is None:
        raise bad_request("fhirAuthorization requires fhirServer (cds-r-1)", "fhirServer")
    return HookRequest(
        hook=hook,
        hook_instance=instance.lower(),
        context=context,
        prefetch=_prefetch(payload.get("prefetch")),
        fhir_server=server,
        fhir_authorization=auth,
    )


def _fhir_server(value: Any) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise bad_request("fhirServer must be an absolute http(s) URL", "fhirServer")
    return str(value).rstrip("/")


def _fhir_authorization(value: Any) -> FhirAuthorization | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise bad_request("fhirAuthorization must be an object", "fhirAuthorization")
    for name in ("access_token", "token_type", "scope", "subject"):
        if not isinstance(value.get(name), str) or not value[name]:
            raise bad_request(f"fhirAuthorization.{name} is required", f"fhirAuthorization.{name}")
    if value["token_type"] != "Bearer":
        raise bad_request("fhirAuthorization.token_type must be Bearer", "fhirAuthorization")
    expires = value.get("expires_in")
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise bad_request("fhirAuthorization.expires_in must be an integer", "fhirAuthorization")
    patient = value.get("patient")
    if patient is not None and not isinstance(patient, str):
        raise bad_request("fhirAuthorization.patient must be a FHIR id", "fhirAuthorization")
    if "patient/" in value["scope"] and patient is None:
        # cds-r-2 is a SHOULD: accepted, but worth knowing about.
        log.info("fhirAuthorization has patient/ scopes but no patient (cds-r-2)")
    return FhirAuthorization(
        value["access_token"], "Bearer", expires, value["scope"], value["subject"], patient
    )


def _prefetch(value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise bad_request("prefetch must be an object", "prefetch")
    for key, item in value.items():
        if item is not None and not (isinstance(item, Mapping) and "resourceType" in item):
            raise bad_request(
                f"prefetch.{key} must be a FHIR resource, a Bundle or null", f"prefetch.{key}"
            )
    return value
