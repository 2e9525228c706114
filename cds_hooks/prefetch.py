"""Prefetch fulfilment: use what the client sent, fetch what it did not, fail only when required.

The rules (#prefetch-template, and HAPI's written algorithm in its cds_hooks_intro):
- key present with a resource or Bundle: used; a Bundle with a `next` link is followed, with the
  client's token, only on its own allow-listed fhirServer (else the key counts as missing);
- key present with `null`: the client looked and found nothing; never refetched;
- key absent, or an OperationOutcome (or a Bundle carrying an error OperationOutcome): fetched
  from `fhirServer` with `fhirAuthorization`, but only when that server is allow-listed for the
  authenticated client (anything else would send the token to, or trust data from, a server an
  attacker named); otherwise from the facade, in process, through its store;
- a required key that none of this could fill: 412 Precondition Failed.
Fetches from the client's server run concurrently under one time budget so the call stays near
the spec's "on the order of 500 ms"; a fetch that misses it counts as unobtainable. Fetches from
the facade run together in one unit of work, under a looser budget (see FetchPolicy).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl

from cds_hooks.errors import precondition_failed
from cds_hooks.request import HookRequest
from cds_hooks.templates import render

log = logging.getLogger(__name__)


class FetchFailed(RuntimeError):
    """A fallback fetch that did not produce data (network, status, budget)."""


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    timeout_s: float = 0.4  # one HTTP request to a client's FHIR server
    budget_s: float = 0.45  # all fetches from a client's FHIR server in one call together
    # The facade is in process: slow only when the whole service is, and then a late answer
    # serves the clinician better than a 412. Its budget only guards against a stuck database.
    facade_budget_s: float = 2.0
    max_pages: int = 10
    max_resources: int = 1000
    max_bytes: int = 20 * 1024 * 1024
    facade_fallback: bool = True


class Source(Protocol):
    name: str

    async def fetch_many(self, queries: Mapping[str, str], budget_s: float) -> dict[str, Any]: ...

    async def follow(self, url: str) -> Any: ...


@dataclass(slots=True)
class Fulfilled:
    """What each prefetch key resolved to, and where it came from (for logs and tests)."""

    data: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)


def is_failure(value: Any) -> bool:
    """An OperationOutcome, or a Bundle carrying one with an error: the client failed."""
    if not isinstance(value, Mapping):
        return False
    if value.get("resourceType") == "OperationOutcome":
        return True
    if value.get("resourceType") != "Bundle":
        return False
    for entry in value.get("entry") or ():
        res = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(res, Mapping) and res.get("resourceType") == "OperationOutcome":
            issues = res.get("issue") or ()
            if any(
                i.get("severity") in ("error", "fatal") for i in issues if isinstance(i, Mapping)
            ):
                return True
    return False


def next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or ():
        if isinstance(link, Mapping) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


def _merge_page(into: dict[str, Any], page: Any) -> None:
    if not isinstance(page, Mapping) or page.get("resourceType") != "Bundle":
        raise FetchFailed("a next page is not a Bundle")
    into.setdefault("entry", []).extend(page.get("entry") or ())


async def follow_pages(bundle: Mapping[str, Any], source: Source, policy: FetchPolicy) -> Any:
    """All pages of a searchset as one Bundle (entries concatenated, next link dropped)."""
    out = {k: v for k, v in bundle.items() if k not in ("link", "entry")}
    out["entry"] = list(bundle.get("entry") or ())
    url = next_link(bundle)
    pages = 1
    while url:
        if pages >= policy.max_pages or len(out["entry"]) >= policy.max_resources:
            log.warning("prefetch paging stopped after %d pages", pages)
            break
        page = await source.follow(url)
        _merge_page(out, page)
        url = next_link(page)
        pages += 1
    return out


async def fulfil(
    request: HookRequest,
    templates: Mapping[str, str],
    required: frozenset[str],
    *,
    remote: Source | None,
    facade: Source | None,
    policy: FetchPolicy,
) -> Fulfilled:
    """Resolve every template key of the service for this call (see the module docstring)."""
    result = Fulfilled()
    missing: list[str] = []
    for key in templates:
        if key not in request.prefetch:
            missing.append(key)
            continue
        value = request.prefetch[key]
        if value is None:
            result.data[key], result.origin[key] = None, "prefetch-null"
        elif is_failure(value):
            missing.append(key)
        elif (
            value.get("resourceType") == "Bundle"
            and next_link(value)
            and wants_all_pages(templates[key])
        ):
            if remote is None:
                missing.append(key)
                continue
            try:
                result.data[key] = await follow_pages(value, remote, policy)
                result.origin[key] = "prefetch+pages"
            except FetchFailed as exc:
                log.warning("prefetch %s: next page not obtained (%s)", key, exc)
                missing.append(key)
        else:
            result.data[key], result.origin[key] = value, "prefetch"
    if missing:
        await _fetch_missing(request, templates, required, missing, remote, facade, policy, result)
    return result


async def _fetch_missing(
    request: HookRequest,
    templates: Mapping[str, str],
    required: frozenset[str],
    missing: list[str],
    remote: Source | None,
    facade: Source | None,
    policy: FetchPolicy,
    result: Fulfilled,
) -> None:
    source = remote or (facade if policy.facade_fallback else None)
    queries = {key: render(templates[key], request.context) for key in missing}
    wanted = {k: q for k, q in queries.items() if q is not None}
    budget = policy.budget_s if source is remote else policy.facade_budget_s
    fetched = await source.fetch_many(wanted, budget) if source and wanted else {}
    for key in missing:
        value = fetched.get(key, _NOT_FETCHED)
        if not isinstance(value, BaseException) and value is not _NOT_FETCHED:
            result.data[key], result.origin[key] = value, source.name if source else ""
            continue
        reason = _reason(source, queries[key], value)
        if key in required:
            raise precondition_failed(
                f"prefetch {key!r} was not provided and could not be fetched ({reason})",
                f"prefetch.{key}",
            )
        log.info("prefetch %s: no data (%s)", key, reason)
        result.data[key], result.origin[key] = None, "unobtainable"


_NOT_FETCHED = object()


def _reason(source: Source | None, query: str | None, value: object) -> str:
    if source is None:
        return "no FHIR server this service may use"
    if query is None:
        return "a template token has no value in this call"
    if isinstance(value, TimeoutError) or value is _NOT_FETCHED:
        return "the fetch did not finish within the time budget"
    return f"{type(value).__name__} from {source.name}"


def wants_all_pages(template: str) -> bool:
    """A template with `_count` asks for one page (the N most recent, say); others want every
    match, so their pages are followed."""
    return not any(k == "_count" for k, _ in parse_qsl(template.partition("?")[2]))
