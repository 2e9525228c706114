"""Where missing prefetch comes from: the client's FHIR server, or the facade in process.

RemoteSource is only ever built for a fhirServer allow-listed for the authenticated client, and
sends the client's token there and nowhere else (next links must stay on that server).
FacadeSource runs the same queries against the facade's store, all of one call in one unit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
from starlette.concurrency import run_in_threadpool

from cds_hooks.prefetch import (
    FetchFailed,
    FetchPolicy,
    follow_pages,
    is_failure,
    wants_all_pages,
)
from fhir_facade.errors import OperationOutcomeError
from fhir_facade.search.query import Limits, parse_search
from fhir_facade.store.base import Store, Unit


class RemoteSource:
    """The client's FHIR server, called with the client's token; only ever built for a server
    that is allow-listed for the authenticated client. Next links must stay on that server."""

    name = "fhirServer"

    def __init__(self, http: httpx.AsyncClient, base: str, token: str, policy: FetchPolicy):
        self.http = http
        self.base = base.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
        self.policy = policy

    async def fetch(self, query: str) -> Any:
        """One template's result; a searchset's next pages are followed unless it asks for
        `_count` results only."""
        value = await self._get(f"{self.base}/{query}", read="?" not in query)
        if (
            isinstance(value, Mapping)
            and value.get("resourceType") == "Bundle"
            and wants_all_pages(query)
        ):
            return await follow_pages(value, self, self.policy)
        return value

    async def fetch_many(self, queries: Mapping[str, str], budget_s: float) -> dict[str, Any]:
        """Every query at once; each key maps to its value, or the exception that stopped it
        (TimeoutError when the budget ran out first)."""
        jobs = {key: asyncio.ensure_future(self.fetch(query)) for key, query in queries.items()}
        _done, pending = await asyncio.wait(jobs.values(), timeout=budget_s)
        for job in pending:
            job.cancel()
        out: dict[str, Any] = {}
        for key, job in jobs.items():
            if job in pending:
                out[key] = TimeoutError()
            else:
                out[key] = job.exception() or job.result()
        return out

    async def follow(self, url: str) -> Any:
        if not (url == self.base or url.startswith(self.base + "/")):
            raise FetchFailed("a next link leaves the client's FHIR server")
        return await self._get(url, read=False)

    async def _get(self, url: str, *, read: bool) -> Any:
        try:
            resp = await self.http.get(url, headers=self._headers, timeout=self.policy.timeout_s)
        except httpx.HTTPError as exc:
            raise FetchFailed(type(exc).__name__) from None
        if read and resp.status_code in (404, 410):
            return None
        if resp.status_code != 200:
            raise FetchFailed(f"HTTP {resp.status_code}")
        if len(resp.content) > self.policy.max_bytes:
            raise FetchFailed("response too large")
        try:
            value = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise FetchFailed("response is not JSON") from None
        if not isinstance(value, Mapping) or is_failure(value):
            raise FetchFailed("response is not a usable FHIR resource")
        return value


class FacadeSource:
    """The facade's own store, in process: no HTTP, no token, the same search semantics."""

    name = "facade"

    def __init__(self, store: Store, policy: FetchPolicy) -> None:
        self.store = store
        self.policy = policy

    async def fetch_many(self, queries: Mapping[str, str], budget_s: float) -> dict[str, Any]:
        """All queries in one thread hop and one unit of work: on SQLite a unit holds the write
        lock, so taking it once per call rather than once per key matters under load."""
        work = run_in_threadpool(self.fetch_all_sync, dict(queries))
        try:
            return await asyncio.wait_for(work, timeout=budget_s)
        except TimeoutError:
            return {key: TimeoutError() for key in queries}

    async def follow(self, url: str) -> Any:  # noqa: ARG002
        raise FetchFailed("facade results are never paged")

    def fetch_all_sync(self, queries: Mapping[str, str]) -> dict[str, Any]:
        """Each key's value, or the FetchFailed that stopped it: reads by id on the store's
        reader, searches together in one read-only unit (it runs beside writers)."""
        out = {k: self._read(q) for k, q in queries.items() if "?" not in q}
        searches = {k: q for k, q in queries.items() if "?" in q}
        if searches:
            with self.store.read_unit() as unit:
                for key, query in searches.items():
                    try:
                        out[key] = self._search(unit, query)
                    except OperationOutcomeError as exc:
                        out[key] = FetchFailed(str(exc))
        return out

    def _read(self, query: str) -> Any:
        rtype, _, rid = query.partition("/")
        try:
            return orjson.loads(self.store.read(rtype, rid).content or b"null")
        except OperationOutcomeError as exc:
            return None if exc.status in (404, 410) else FetchFailed(str(exc))

    def _search(self, unit: Unit, template: str) -> dict[str, Any]:
        rtype, _, qs = template.partition("?")
        pairs = parse_qsl(qs, keep_blank_values=True)
        one_page = not wants_all_pages(template)
        cap = self.policy.max_resources
        query = parse_search(rtype, pairs, limits=Limits(default_count=cap, max_count=cap))
        query.total = "none"
        entries: list[dict[str, Any]] = []
        while True:
            page = unit.search(query)
            entries += [{"resource": orjson.loads(m.content)} for m in page.matches if m.content]
            if one_page or page.next_position is None or len(entries) >= cap:
                break
            query.after = page.next_position
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        if entries:
            bundle["entry"] = entries[:cap]
        return bundle
