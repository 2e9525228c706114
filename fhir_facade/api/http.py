"""HTTP details of the FHIR REST API: formats, Prefer, bodies, and FHIR responses.

Responses are assembled from the stored bytes with orjson.Fragment, so a search Bundle embeds
each resource as stored without parsing it again (ARCHITECTURE 3.2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from fastapi.responses import Response

from fhir_facade import errors

FHIR_JSON = "application/fhir+json"
_JSON_TYPES = {"application/fhir+json", "application/json", "application/json+fhir", "json"}
_XML_TYPES = {"application/fhir+xml", "application/xml", "application/xml+fhir", "xml", "text/xml"}
_ETAG = re.compile(r'^(?:W/)?"(\d+)"$')

ReturnPref = Literal["minimal", "representation", "OperationOutcome"]


@dataclass(frozen=True, slots=True)
class Prefer:
    return_: ReturnPref = "representation"
    strict: bool = False


def parse_prefer(request: Request) -> Prefer:
    header = ",".join(request.headers.getlist("prefer"))
    values = {}
    for part in header.replace(";", ",").split(","):
        key, _, val = part.strip().partition("=")
        values[key.strip().lower()] = val.strip().strip('"')
    ret = values.get("return", "representation")
    if ret not in ("minimal", "representation", "OperationOutcome"):
        ret = "representation"
    return Prefer(ret, values.get("handling") == "strict")  # type: ignore[arg-type]


def check_format(request: Request) -> None:
    """Only JSON is served; asking for XML explicitly gets 406 rather than a silent JSON."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        if fmt.split(";")[0].strip() in _JSON_TYPES:
            return
        raise errors.OperationOutcomeError(
            406, [errors.Issue("not-supported", f"_format={fmt} is not supported; use json")]
        )
    accept = request.headers.get("accept", "")
    kinds = {a.split(";")[0].strip() for a in accept.split(",") if a.strip()}
    if kinds and kinds <= _XML_TYPES:
        raise errors.OperationOutcomeError(
            406,
            [errors.Issue("not-supported", "XML is not supported; accept application/fhir+json")],
        )


def parse_if_match(request: Request) -> int | None:
    value = request.headers.get("if-match")
    if value is None:
        return None
    match = _ETAG.match(value.strip())
    if match is None:
        raise errors.bad_request(f'If-Match must be a version ETag like W/"3", not {value!r}')
    return int(match[1])


async def read_json_body(request: Request, limit: int) -> Any:
    """The request body as JSON, refusing oversize bodies while streaming (not after)."""
    ctype = request.headers.get("content-type", FHIR_JSON).split(";")[0].strip().lower()
    if ctype in _XML_TYPES:
        raise errors.OperationOutcomeError(
            415, [errors.Issue("not-supported", "XML bodies are not supported; send FHIR JSON")]
        )
    if ctype not in _JSON_TYPES:
        raise errors.OperationOutcomeError(
            415, [errors.Issue("not-supported", f"Content-Type {ctype} is not FHIR JSON")]
        )
    body = await _read_body(request, limit)
    if not body.strip():
        raise errors.bad_request("the request body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"the body is not valid JSON: {exc}") from None


async def read_form_body(request: Request, limit: int) -> list[tuple[str, str]]:
    """An application/x-www-form-urlencoded body as (name, value) pairs, within the size limit
    (parsed here: Starlette's form parser needs python-multipart and has no limit for it)."""
    body = await _read_body(request, limit)
    try:
        return parse_qsl(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        raise errors.bad_request("the form body is not UTF-8") from None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.too_large(f"the body is larger than the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.too_large(f"the body is larger than the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def require_resource(body: Any, expected_type: str | None = None) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.bad_request("the body must be a JSON object (a FHIR resource)")
    rtype = body.get("resourceType")
    if not isinstance(rtype, str):
        raise errors.bad_request("the resource has no resourceType", "resourceType")
    if expected_type is not None and rtype != expected_type:
        raise errors.bad_request(
            f"resourceType {rtype!r} does not match the URL's {expected_type!r}", "resourceType"
        )
    return body


def fhir_response(
    content: bytes | None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(
        content=content,
        status_code=status,
        headers=dict(headers or {}),
        media_type=FHIR_JSON if content is not None else None,
    )


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return fhir_response(orjson.dumps(body), status, headers)


def outcome_response(exc: errors.OperationOutcomeError) -> Response:
    return json_response(exc.outcome, exc.status, exc.headers)
