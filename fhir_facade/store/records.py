"""Turning a validated resource into what the store writes: stamped bytes, hash, index rows."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from fhir_facade.search.extract import extract_index
from fhir_facade.search.values import normalize_string

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def instant(us: int) -> str:
    """A FHIR instant for microseconds since the epoch, always in UTC with a Z."""
    return (_EPOCH + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_us() -> int:
    delta = datetime.now(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def content_hash(resource: Mapping[str, Any]) -> str:
    """Hash of the resource without its identity and version stamp: equal hashes mean a no-op
    update. The id is left out because the store stamps it: a POSTed body carries none (or one
    the server replaces), while the same content PUT back carries the assigned id."""
    meta = {
        k: val
        for k, val in (resource.get("meta") or {}).items()
        if k not in ("versionId", "lastUpdated")
    }
    body = {k: val for k, val in resource.items() if k not in ("meta", "id")}
    if meta:
        body["meta"] = meta
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def stamp(resource: Mapping[str, Any], id: str, version_id: int, last_updated: str) -> bytes:
    """Canonical bytes with the server's id and meta; resourceType, id, meta lead the object."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = last_updated
    out: dict[str, Any] = {"resourceType": resource["resourceType"], "id": id, "meta": meta}
    out.update((k, val) for k, val in resource.items() if k not in ("resourceType", "id", "meta"))
    return orjson.dumps(out)


def index_rows(pk: int, resource: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Rows for each index table, keyed by search-parameter type."""
    rt = resource["resourceType"]
    rows = extract_index(resource)
    base = {"resource_pk": pk, "res_type": rt}
    return {
        "token": [{**base, "param": p, "system": s, "code": c} for p, s, c in rows.tokens],
        "string": [
            {**base, "param": p, "value_norm": normalize_string(s), "value_exact": s[:255]}
            for p, s in rows.strings
        ],
        "date": [{**base, "param": p, "low": lo, "high": hi} for p, lo, hi in rows.dates],
        "reference": [
            {**base, "param": p, "target_type": t, "target_id": i, "url": u[:512]}
            for p, t, i, u in rows.references
        ],
        "quantity": [
            {**base, "param": p, "value": val, "system": s, "code": c}
            for p, val, s, c in rows.quantities
        ],
        "number": [{**base, "param": p, "value": val} for p, val in rows.numbers],
    }
