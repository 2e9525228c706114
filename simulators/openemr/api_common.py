"""Response shapes of OpenEMR's standard API, shared by its route modules.

Two families exist in OpenEMR and the simulator keeps both: routes on the newer services answer
the envelope `{"validationErrors": [], "internalErrors": [], "data": ...}`
(RestControllerHelper::handleProcessingResult), the older ones (lists, vitals, documents) answer
their payload bare through `responseHandler`, which turns an empty result into 404 `null`.
Values leave as strings, as MySQL hands them to PHP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from simulators.openemr.security import ApiError
from simulators.openemr.store import Row
from simulators.openemr.validation import Messages

API_PREFIX = "/apis/default/api"


def envelope(data: Any, status: int = 200) -> JSONResponse:
    body = {"validationErrors": [], "internalErrors": [], "data": data}
    return JSONResponse(body, status_code=status)


def invalid(messages: Messages) -> JSONResponse:
    body = {"validationErrors": messages, "internalErrors": [], "data": []}
    return JSONResponse(body, status_code=400)


def bare(payload: Any, status: int = 200) -> JSONResponse:
    """responseHandler(): a falsy payload (empty list, False) becomes 404 with `null`."""
    if not payload:
        return JSONResponse(None, status_code=404)
    return JSONResponse(payload, status_code=status)


def as_text(row: Row) -> dict[str, Any]:
    """A row as the API returns it: internal columns dropped, scalars as strings."""
    return {
        k: (v if v is None or isinstance(v, str) else str(v))
        for k, v in row.items()
        if not k.startswith("_")
    }


async def json_object(request: Request) -> dict[str, Any]:
    """`(array) json_decode(php://input)`: an object, or 400."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, {"validationErrors": {"body": "A JSON object is required"}})
    return body


def only(data: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """A controller's whitelist filter (ConditionRestController::WHITELISTED_FIELDS etc.)."""
    return {k: data[k] for k in fields if k in data}


def not_found(field: str, value: Any) -> JSONResponse:
    return invalid({field: {"Record::NOT_FOUND": f"{field} {value} was not found"}})
