"""batch and transaction Bundles (FHIR R4 3.1.0.11).

A transaction runs in one unit of work: every entry succeeds or nothing is written. Entries run in
the order the specification prescribes (DELETE, POST, PUT, GET) while the response keeps the
request order, and `urn:uuid:` fullUrls are replaced by the ids the server assigns, wherever the
other entries reference them. A batch runs each entry in its own unit and reports each outcome.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson

from fhir_facade import errors
from fhir_facade.api import interactions as ix
from fhir_facade.api.context import Context
from fhir_facade.store import records
from fhir_facade.store.base import Unit

R = TypeVar("R")
UnitFactory = Callable[[], AbstractContextManager[Unit]]
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content"}
_LOCAL_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass(slots=True)
class Entry:
    index: int
    method: str
    path: list[str]
    query: list[tuple[str, str]]
    full_url: str | None
    resource: dict[str, Any] | None
    if_none_exist: str | None = None
    if_match: int | None = None
    result: ix.Result | None = None
    assigned: str | None = None  # "Type/id" a POST will get, for reference rewriting
    problems: list[str] = field(default_factory=list)

    def where(self, *rest: str) -> str:
        return ".".join((f"Bundle.entry[{self.index}]", *rest))


def _parse_entry(index: int, raw: Any) -> Entry:
    here = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise errors.bad_request("a Bundle entry must be an object", here)
    request = raw.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("url"), str):
        raise errors.bad_request("the entry has no request.url", f"{here}.request")
    method = str(request.get("method", "")).upper()
    if method not in _ORDER:
        raise errors.bad_request(
            f"request.method {method!r} is not supported", f"{here}.request.method"
        )
    path, _, qs = request["url"].lstrip("/").partition("?")
    resource = raw.get("resource")
    if resource is not None and not isinstance(resource, dict):
        raise errors.bad_request("entry.resource must be a resource object", f"{here}.resource")
    if_match = None
    if request.get("ifMatch"):
        m = re.match(r'^(?:W/)?"(\d+)"$', str(request["ifMatch"]))
        if m is None:
            raise errors.bad_request("ifMatch must be a version ETag", f"{here}.request.ifMatch")
        if_match = int(m[1])
    return Entry(
        index,
        method,
        [p for p in path.split("/") if p],
        parse_qsl(qs, keep_blank_values=True),
        raw.get("fullUrl"),
        resource,
        request.get("ifNoneExist"),
        if_match,
    )


def _parse(bundle: Any, max_entries: int) -> tuple[str, list[Entry]]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise errors.bad_request(
            "POST to the base takes a batch or transaction Bundle", "resourceType"
        )
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise errors.bad_request(
            f"Bundle.type {kind!r} cannot be processed; use batch or transaction", "Bundle.type"
        )
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise errors.bad_request("Bundle.entry must be an array", "Bundle.entry")
    if len(raw_entries) > max_entries:
        raise errors.too_large(
            f"the Bundle has {len(raw_entries)} entries; at most {max_entries} are accepted"
        )
    return kind, [_parse_entry(i, e) for i, e in enumerate(raw_entries)]


def _run(unit: Unit, entry: Entry, ctx: Context) -> ix.Result:
    """One entry's interaction, the same code the REST routes use."""
    m, p = entry.method, entry.path
    if m in ("GET", "HEAD"):
        return _run_get(unit, p, entry.query, ctx)
    if entry.query:
        raise errors.not_supported(
            "conditional update and delete are not supported", entry.where("request", "url")
        )
    if m == "DELETE" and len(p) == 2:
        return ix.delete(unit, p[0], p[1])
    if m == "POST" and len(p) == 1:
        body = ix.localize_references(_body(entry, p[0]), ctx.base_url)
        if entry.if_none_exist and entry.assigned is None:  # batch: no ids reserved
            return ix.create(unit, p[0], body, ctx, entry.if_none_exist)
        ix.require_type(p[0])
        assigned = entry.assigned.split("/")[1] if entry.assigned else None
        return ix.created(unit, body, assigned)
    if m == "PUT" and len(p) == 2:
        body = ix.localize_references(_body(entry, p[0]), ctx.base_url)
        return ix.update(unit, p[0], p[1], body, entry.if_match)
    raise errors.bad_request(
        f"{m} {'/'.join(p)} is not an interaction this server supports", entry.where("request")
    )


def _run_get(unit: Unit, p: list[str], query: list[tuple[str, str]], ctx: Context) -> ix.Result:
    if len(p) == 1:
        return ix.search(unit, p[0], query, ctx)
    if len(p) == 2 and p[1] == "_history":
        return ix.history(unit, p[0], None, query, ctx)
    if len(p) == 2:
        return ix.read(unit, p[0], p[1])
    if len(p) == 3 and p[2] == "_history":
        return ix.history(unit, p[0], p[1], query, ctx)
    if len(p) == 4 and p[2] == "_history":
        return ix.vread(unit, p[0], p[1], p[3])
    raise errors.bad_request(f"GET {'/'.join(p)} is not supported in a Bundle")


def _body(entry: Entry, rtype: str) -> dict[str, Any]:
    if entry.resource is None:
        raise errors.bad_request("the entry needs a resource", entry.where("resource"))
    if entry.resource.get("resourceType") != rtype:
        raise errors.bad_request(
            f"the resource is not a {rtype}", entry.where("resource", "resourceType")
        )
    return entry.resource


def _rewrite(value: Any, ids: dict[str, str]) -> Any:
    """Replace references to other entries' fullUrls by the ids they were given."""
    if isinstance(value, dict):
        out = {k: _rewrite(v, ids) for k, v in value.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in ids:
            out["reference"] = ids[ref]
        return out
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    return value


def _reserve_ids(unit: Unit, entries: list[Entry], ctx: Context) -> dict[str, str]:
    """Give every POST its id up front (or the existing match of its ifNoneExist)."""
    ids: dict[str, str] = {}
    for e in entries:
        if e.method == "POST" and len(e.path) == 1:
            e.assigned = f"{e.path[0]}/{records.new_id()}"
            if e.if_none_exist:
                found = _located(partial(ix.existing, unit, e.path[0], e.if_none_exist, ctx), e)
                if found is not None:
                    e.result = ix.Result(200, found)
                    e.assigned = f"{e.path[0]}/{found.id}"
        elif e.method == "PUT" and len(e.path) == 2:
            e.assigned = "/".join(e.path)
        if e.full_url and e.assigned:
            ids[e.full_url] = e.assigned
    return ids


def _located(run: Callable[[], R], entry: Entry) -> R:
    """Run an entry, prefixing any error's location with the entry it came from."""
    try:
        return run()
    except errors.OperationOutcomeError as exc:
        for i, issue in enumerate(exc.issues):
            where = tuple(_within(entry, x) for x in issue.expression) or (entry.where(),)
            exc.issues[i] = errors.Issue(issue.code, issue.diagnostics, issue.severity, where)
        raise


def _within(entry: Entry, expression: str) -> str:
    """An issue's FHIRPath as seen from the Bundle: `Patient.birthDate` in entry 2's resource
    is `Bundle.entry[2].resource.birthDate`."""
    if expression.startswith("Bundle"):
        return expression
    rtype = (entry.resource or {}).get("resourceType")
    if isinstance(rtype, str) and (expression == rtype or expression.startswith(f"{rtype}.")):
        return entry.where("resource", *expression.split(".", 1)[1:])
    return entry.where(expression)


def transaction(units: UnitFactory, entries: list[Entry], ctx: Context) -> list[Entry]:
    with units() as unit:
        for e in sorted(entries, key=lambda e: _ORDER[e.method]):
            if e.method == "DELETE":
                e.result = _located(partial(_run, unit, e, ctx), e)
        ids = _reserve_ids(unit, [e for e in entries if e.method != "DELETE"], ctx)
        for e in sorted(entries, key=lambda e: _ORDER[e.method]):
            if e.method == "DELETE" or e.result is not None:
                continue
            if e.resource is not None:
                e.resource = _rewrite(e.resource, ids)
            e.result = _located(partial(_run, unit, e, ctx), e)
    return entries


def batch(units: UnitFactory, entries: list[Entry], ctx: Context) -> Iterator[Entry]:
    for e in entries:
        try:
            with units() as unit:
                e.result = _run(unit, e, ctx)
        except errors.OperationOutcomeError as exc:
            e.result = ix.Result(exc.status, body=orjson.dumps(exc.outcome))
        yield e


def response_entry(e: Entry, ctx: Context, minimal: bool) -> dict[str, Any]:
    res = e.result
    assert res is not None
    response: dict[str, Any] = {"status": _STATUS_TEXT.get(res.status, str(res.status))}
    out: dict[str, Any] = {}
    if res.resource is not None:
        stored = res.resource
        out["fullUrl"] = f"{ctx.base_url}/{stored.resource_type}/{stored.id}"
        if e.method in ("POST", "PUT"):
            response["location"] = stored.location
        response["etag"] = stored.etag
        response["lastModified"] = stored.last_updated
        if not minimal or e.method == "GET":
            out["resource"] = orjson.Fragment(stored.content or b"{}")
    elif res.body is not None:
        if res.status >= 400:
            response["outcome"] = orjson.Fragment(res.body)
        else:
            out["resource"] = orjson.Fragment(res.body)
    out["response"] = response
    return out


def process(
    units: UnitFactory, body: Any, ctx: Context, *, max_entries: int, minimal: bool
) -> dict[str, Any]:
    kind, entries = _parse(body, max_entries)
    done = transaction(units, entries, ctx) if kind == "transaction" else batch(units, entries, ctx)
    out = [response_entry(e, ctx, minimal) for e in done]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": f"{kind}-response"}
    if out:
        bundle["entry"] = out
    return bundle
