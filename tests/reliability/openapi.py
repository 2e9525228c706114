"""OpenAPI 3.0 descriptions of what the facade and the CDS service truly accept, for fuzzing.

The app's own OpenAPI lists the facade's routes but not their inputs (the routes read the raw
request, as FHIR's query grammar needs), and leaves the CDS routes out. These documents fill the
gap from the running app itself: resource types and search parameters (with their FHIR types)
from the CapabilityStatement, services and prefetch keys from CDS discovery. Values are drawn
from FHIR-shaped patterns mixed with free text, so generated requests reach the parsers and the
rules rather than stopping at the first type check.
"""

from __future__ import annotations

from typing import Any

from cds_hooks.examples import CT_CHEST_CONTRAST, CT_CHEST_PLAIN, LOINC, MR_BRAIN_CONTRAST

ID = r"^[A-Za-z0-9\-.]{1,64}$"
DATE = (
    r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
TOKEN = r"^((http://loinc\.org|urn:[a-z]{1,8}|)\|)?[A-Za-z0-9\-]{0,12}$"
REFERENCE = r"^((Patient|Practitioner|ImagingStudy)/)?[A-Za-z0-9\-]{1,12}$"
NUMBER = r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?-?\d{1,6}(\.\d{1,4})?(e-?\d)?$"
QUANTITY = NUMBER[:-1] + r"(\|[a-z:/.]{0,12}\|[A-Za-z/%]{0,6})?$"
OUTCOME_RESPONSE = {"default": {"description": "a FHIR resource or an OperationOutcome"}}


def _text_or(pattern: str) -> dict[str, Any]:
    """Mostly values of the right shape, sometimes anything at all."""
    return {"anyOf": [{"type": "string", "pattern": pattern}, {"type": "string", "maxLength": 40}]}


VALUE_BY_TYPE = {
    "date": DATE,
    "token": TOKEN,
    "reference": REFERENCE,
    "number": NUMBER,
    "quantity": QUANTITY,
    "uri": r"^(https?://[a-z.]{1,12}/[a-z]{0,8}|urn:uuid:[0-9a-f\-]{36})$",
}
COMMON_QUERY = {
    "_count": {"type": "integer", "minimum": -5, "maximum": 100000},
    "_sort": _text_or(r"^-?(_id|_lastUpdated|date|code|status|name)(,-?(date|_id))?$"),
    "_total": {"type": "string", "enum": ["none", "estimate", "accurate", "all"]},
    "_summary": {"type": "string", "enum": ["true", "false", "count", "text", "data"]},
    "_elements": _text_or(r"^[a-z]{1,10}(,[a-z]{1,10})?$"),
    "_include": _text_or(r"^[A-Z][a-z]{2,14}:[a-z\-]{2,12}(:[A-Z][a-z]{2,10})?$"),
    "_revinclude": _text_or(r"^[A-Z][a-z]{2,14}:[a-z\-]{2,12}$"),
    "_format": {"type": "string", "enum": ["json", "application/fhir+json", "xml", "text/html"]},
}


def _param(name: str, schema: dict[str, Any], where: str = "query") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": schema}


def _search_params(params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [_param(k, v) for k, v in COMMON_QUERY.items()]
    for p in params:
        name, ptype = str(p["name"]), str(p.get("type", "string"))
        out.append(_param(name, _text_or(VALUE_BY_TYPE.get(ptype, r"^[A-Za-z \-]{0,12}$"))))
        out.append(_param(f"{name}:missing", {"type": "string", "enum": ["true", "false", "x"]}))
    return out


def resource_schema(types: list[str]) -> dict[str, Any]:
    """A FHIR resource, loosely: right resourceType, common elements, anything else allowed."""
    coding = {
        "type": "object",
        "properties": {
            "system": {"type": "string", "enum": [LOINC, "http://snomed.info/sct", "urn:x"]},
            "code": _text_or(r"^\d{3,6}-\d$"),
            "display": {"type": "string", "maxLength": 20},
        },
    }
    concept = {
        "type": "object",
        "properties": {"coding": {"type": "array", "items": coding, "maxItems": 2}},
    }
    reference = {"type": "object", "properties": {"reference": _text_or(REFERENCE)}}
    return {
        "type": "object",
        "required": ["resourceType"],
        "properties": {
            "resourceType": {"type": "string", "enum": types},
            "id": _text_or(ID),
            "meta": {"type": "object", "properties": {"versionId": {"type": "string"}}},
            "status": {"type": "string", "enum": ["final", "active", "draft", "available", "?"]},
            "intent": {"type": "string", "enum": ["order", "plan"]},
            "gender": {"type": "string", "enum": ["female", "male", "other", "unknown", "x"]},
            "birthDate": _text_or(DATE),
            "name": {
                "type": "array",
                "maxItems": 2,
                "items": {"type": "object", "properties": {"family": {"type": "string"}}},
            },
            "code": concept,
            "subject": reference,
            "patient": reference,
            "effectiveDateTime": _text_or(DATE),
            "started": _text_or(DATE),
            "valueQuantity": {
                "type": "object",
                "properties": {"value": {"type": "number"}, "unit": {"type": "string"}},
            },
        },
    }


def facade_openapi(capability: dict[str, Any]) -> dict[str, Any]:
    """The facade's interface, from its CapabilityStatement (paths under /fhir)."""
    rest = capability["rest"][0]["resource"]
    types = [str(r["type"]) for r in rest]
    rtype = _param("rtype", {"type": "string", "enum": types}, "path")
    rid = _param("id", _text_or(ID), "path")
    resource = resource_schema(types)
    prefer = _param(
        "Prefer",
        {
            "type": "string",
            "enum": ["return=minimal", "return=OperationOutcome", "handling=strict"],
        },
        "header",
    )
    json_body = {"required": True, "content": {"application/fhir+json": {"schema": resource}}}
    ops = {"responses": OUTCOME_RESPONSE}
    paths: dict[str, Any] = {
        "/fhir/metadata": {"get": {**ops, "operationId": "metadata"}},
        "/fhir/_history": {
            "get": {
                **ops,
                "parameters": [
                    _param("_since", _text_or(DATE)),
                    _param("_count", COMMON_QUERY["_count"]),
                ],
            }
        },
        "/fhir/": {
            "post": {
                **ops,
                "operationId": "transaction",
                "requestBody": {
                    "required": True,
                    "content": {"application/fhir+json": {"schema": _bundle(resource)}},
                },
            }
        },
        "/fhir/{rtype}/{id}": {
            "get": {**ops, "parameters": [rtype, rid]},
            "put": {
                **ops,
                "parameters": [
                    rtype,
                    rid,
                    prefer,
                    _param("If-Match", _text_or(r'^W/"\d{1,3}"$'), "header"),
                ],
                "requestBody": json_body,
            },
            "delete": {**ops, "parameters": [rtype, rid]},
        },
        "/fhir/{rtype}/{id}/_history": {"get": {**ops, "parameters": [rtype, rid]}},
        "/fhir/{rtype}/{id}/_history/{vid}": {
            "get": {
                **ops,
                "parameters": [rtype, rid, _param("vid", _text_or(r"^\d{1,3}$"), "path")],
            }
        },
        "/fhir/{rtype}": {
            "post": {
                **ops,
                "parameters": [
                    rtype,
                    prefer,
                    _param(
                        "If-None-Exist", _text_or(r"^(_id|identifier)=[a-z0-9|]{1,12}$"), "header"
                    ),
                ],
                "requestBody": json_body,
            }
        },
    }
    for entry in rest:
        params = _search_params(list(entry.get("searchParam", [])))
        paths[f"/fhir/{entry['type']}"] = {"get": {**ops, "parameters": params}}
        form = {
            "type": "object",
            "properties": {p["name"]: p["schema"] for p in params if ":" not in p["name"]},
        }
        paths[f"/fhir/{entry['type']}/_search"] = {
            "post": {
                **ops,
                "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": form}}},
            }
        }
    return _document("FHIR R4 facade", paths)


def _bundle(resource: dict[str, Any]) -> dict[str, Any]:
    entry = {
        "type": "object",
        "properties": {
            "fullUrl": _text_or(
                r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
            ),
            "resource": resource,
            "request": {
                "type": "object",
                "required": ["method", "url"],
                "properties": {
                    "method": {"type": "string", "enum": ["GET", "POST", "PUT", "DELETE", "PATCH"]},
                    "url": _text_or(
                        r"^(Patient|Observation|ImagingStudy)(/[a-z0-9]{1,5})?(\?[a-z_]{1,8}=[a-z0-9]{0,5})?$"
                    ),
                    "ifMatch": {"type": "string"},
                    "ifNoneExist": {"type": "string"},
                },
            },
        },
    }
    return {
        "type": "object",
        "required": ["resourceType", "type"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["Bundle", "Patient"]},
            "type": {"type": "string", "enum": ["transaction", "batch", "searchset", "collection"]},
            "entry": {"type": "array", "items": entry, "maxItems": 4},
        },
    }


def cds_openapi(discovery: dict[str, Any]) -> dict[str, Any]:
    """The CDS Hooks service's interface, from its discovery document (paths /cds-services)."""
    services = discovery["services"]
    ids = sorted({str(s["id"]) for s in services})
    hooks = sorted({str(s["hook"]) for s in services})
    keys = sorted({k for s in services for k in s.get("prefetch", {})})
    codes = [CT_CHEST_CONTRAST[0], CT_CHEST_PLAIN[0], MR_BRAIN_CONTRAST[0], "2160-0", "24323-8"]
    coding = {
        "type": "object",
        "properties": {
            "system": {"type": "string", "enum": [LOINC, "http://snomed.info/sct"]},
            "code": {"anyOf": [{"type": "string", "enum": codes}, {"type": "string"}]},
        },
    }
    draft = {
        "type": "object",
        "properties": {
            "resourceType": {"type": "string", "enum": ["ServiceRequest", "MedicationRequest"]},
            "id": _text_or(ID),
            "status": {"type": "string", "enum": ["draft", "active"]},
            "intent": {"type": "string", "enum": ["order", "proposal"]},
            "code": {
                "type": "object",
                "properties": {"coding": {"type": "array", "items": coding}},
            },
            "subject": {"type": "object", "properties": {"reference": _text_or(REFERENCE)}},
            "authoredOn": _text_or(DATE),
        },
    }
    prefetch_value = {
        "anyOf": [
            {"type": "null"},
            {
                "type": "object",
                "properties": {
                    "resourceType": {
                        "type": "string",
                        "enum": ["Bundle", "Patient", "OperationOutcome"],
                    },
                    "type": {"type": "string", "enum": ["searchset", "collection"]},
                    "entry": {
                        "type": "array",
                        "maxItems": 3,
                        "items": {"type": "object", "properties": {"resource": draft}},
                    },
                    "birthDate": _text_or(DATE),
                    "started": _text_or(DATE),
                },
            },
        ]
    }
    hook_request = {
        "type": "object",
        "required": ["hook", "hookInstance", "context"],
        "properties": {
            "hook": {"anyOf": [{"type": "string", "enum": hooks}, {"type": "string"}]},
            "hookInstance": {"type": "string", "format": "uuid"},
            "fhirServer": {"type": "string", "enum": ["https://ehr.example.org/fhir"]},
            "context": {
                "type": "object",
                "properties": {
                    "userId": _text_or(r"^(Practitioner|PractitionerRole|Patient)/[a-z0-9]{1,8}$"),
                    "patientId": _text_or(ID),
                    "encounterId": _text_or(ID),
                    "selections": {"type": "array", "items": _text_or(REFERENCE), "maxItems": 2},
                    "draftOrders": {
                        "type": "object",
                        "properties": {
                            "resourceType": {"type": "string", "enum": ["Bundle"]},
                            "entry": {
                                "type": "array",
                                "maxItems": 3,
                                "items": {"type": "object", "properties": {"resource": draft}},
                            },
                        },
                    },
                },
            },
            "prefetch": {"type": "object", "properties": dict.fromkeys(keys, prefetch_value)},
        },
    }
    feedback = {
        "type": "object",
        "required": ["feedback"],
        "properties": {
            "feedback": {
                "type": "array",
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {
                        "card": {"type": "string", "format": "uuid"},
                        "outcome": {"type": "string", "enum": ["accepted", "overridden", "x"]},
                        "acceptedSuggestions": {
                            "type": "array",
                            "items": {"type": "object", "properties": {"id": {"type": "string"}}},
                        },
                        "overrideReason": {
                            "type": "object",
                            "properties": {
                                "reason": {"type": "object"},
                                "userComment": {"type": "string"},
                            },
                        },
                        "outcomeTimestamp": _text_or(DATE),
                    },
                },
            }
        },
    }
    service = _param(
        "service_id", {"anyOf": [{"type": "string", "enum": ids}, {"type": "string"}]}, "path"
    )
    ops = {"responses": {"default": {"description": "cards, or the CDS error (OperationOutcome)"}}}
    paths = {
        "/cds-services": {"get": {**ops, "operationId": "discovery"}},
        "/cds-services/{service_id}": {
            "post": {
                **ops,
                "parameters": [service],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": hook_request}},
                },
            }
        },
        "/cds-services/{service_id}/feedback": {
            "post": {
                **ops,
                "parameters": [service],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": feedback}},
                },
            }
        },
    }
    return _document("CDS Hooks service", paths)


def _document(title: str, paths: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1"},
        "servers": [{"url": "/"}],
        "paths": paths,
    }
