"""HTTP access to OpenEMR's FHIR API (real or simulated), with its quirks absorbed.

- Searches come back as one unpaged `collection` Bundle; `search()` returns its resources (and
  follows `next` links should a server ever send them, which OpenEMR's FHIR API does not).
- A read of an unknown id is 404 with the body `[]`: `read()` returns None.
- 401: the token is dropped (`auth.invalidate()`) and the request retried once with a fresh one;
  a second 401 is an error (wrong client, disabled client, missing scope at the server).
- Connect/read errors and 5xx answers are retried with exponential backoff (tenacity), bounded;
  other 4xx are errors at once.
Log lines name the method, URL path, status and time; never the Authorization header or token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import httpx
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from adapters.openemr.auth import TokenProvider
from adapters.openemr.payloads import SearchBundle

log = logging.getLogger(__name__)

Params = Mapping[str, str] | Sequence[tuple[str, str]]
MAX_PAGES = 1000


class OpenEMRError(Exception):
    """OpenEMR refused or failed a request; `status` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _Transient(Exception):
    """A 5xx answer, retried like a connection error."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The resources of a search, plus what the server said about it."""

    resources: list[dict[str, Any]]
    bundle_type: str | None
    total: int | None


class OpenEMRClient:
    """FHIR reads and searches against `fhir_base` (e.g. https://host/apis/default/fhir)."""

    def __init__(
        self,
        fhir_base: str,
        auth: TokenProvider,
        *,
        timeout: float = 30.0,
        attempts: int = 4,
        backoff: float = 0.5,
        http: httpx.Client | None = None,
    ) -> None:
        self.fhir_base = fhir_base.rstrip("/")
        self._auth = auth
        self._http = http or httpx.Client(timeout=timeout)
        self._owns_http = http is None
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._backoff = backoff

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def metadata(self) -> dict[str, Any]:
        body = self._get(f"{self.fhir_base}/metadata", None).json()
        if not isinstance(body, dict):
            raise OpenEMRError("metadata is not a JSON object")
        return body

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """One resource, or None when OpenEMR answers 404 (its body is `[]`)."""
        response = self._get(f"{self.fhir_base}/{resource_type}/{resource_id}", None, found=False)
        if response.status_code == 404:
            return None
        body = response.json()
        if not isinstance(body, dict) or body.get("resourceType") != resource_type:
            raise OpenEMRError(f"read of {resource_type}/{resource_id} returned no resource")
        return body

    def search(self, resource_type: str, params: Params | None = None) -> SearchResult:
        """All matches of a search (OpenEMR: one page; other servers' next links followed)."""
        url: str | None = f"{self.fhir_base}/{resource_type}"
        query: Params | None = params
        resources: list[dict[str, Any]] = []
        bundle_type = total = None
        pages = 0
        while url is not None:
            pages += 1
            if pages > MAX_PAGES:
                raise OpenEMRError(f"search {resource_type} did not end after {MAX_PAGES} pages")
            body = self._get(url, query).json()
            if isinstance(body, list) and not body:  # OpenEMR's "nothing" on some routes
                break
            bundle = SearchBundle.model_validate(body)
            if bundle.resourceType != "Bundle":
                raise OpenEMRError(f"search {resource_type} returned a {bundle.resourceType}")
            resources += bundle.resources()
            bundle_type, total = bundle_type or bundle.type, bundle.total
            url, query = bundle.next_url(), None
        log.info("OpenEMR search %s: %d resources", resource_type, len(resources))
        return SearchResult(resources, bundle_type, total if total is not None else len(resources))

    def _get(self, url: str, params: Params | None, *, found: bool = True) -> httpx.Response:
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff, max=30.0),
            retry=retry_if_exception_type((httpx.TransportError, _Transient)),
            before_sleep=lambda state: log.warning(
                "OpenEMR GET %s failed (%s); retry %d of %d",
                httpx.URL(url).path,
                state.outcome.exception() if state.outcome else "?",
                state.attempt_number,
                self._attempts - 1,
            ),
            reraise=True,
        )
        try:
            response = retrying(self._authorized_get, url, params)
        except _Transient as exc:
            raise OpenEMRError(_describe(exc.response), status=exc.response.status_code) from None
        except httpx.TransportError as exc:
            raise OpenEMRError(f"OpenEMR unreachable at {url}: {type(exc).__name__}") from exc
        if response.status_code == 404 and not found:
            return response
        if response.status_code >= 400:
            raise OpenEMRError(_describe(response), status=response.status_code)
        return response

    def _authorized_get(self, url: str, params: Params | None) -> httpx.Response:
        response = self._send(url, params)
        if response.status_code == 401:
            log.info("OpenEMR answered 401 for %s; renewing the token once", httpx.URL(url).path)
            self._auth.invalidate()
            response = self._send(url, params)
        if response.status_code >= 500:
            raise _Transient(response)
        return response

    def _send(self, url: str, params: Params | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._auth.token()}", "Accept": "application/json"}
        started = time.monotonic()
        query = None
        if params is not None:
            pairs = params.items() if isinstance(params, Mapping) else params
            query = httpx.QueryParams(tuple(pairs))
        response = self._http.get(url, params=query, headers=headers, timeout=self._timeout)
        elapsed = (time.monotonic() - started) * 1000
        log.debug(
            "OpenEMR GET %s -> %d (%.0f ms)", response.url.path, response.status_code, elapsed
        )
        return response


def _describe(response: httpx.Response) -> str:
    """Status plus OpenEMR's own message when the body has one (never request headers)."""
    detail = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = str(body.get("message") or body.get("error") or body.get("validationErrors") or "")
    return (
        f"OpenEMR GET {response.request.url.path} -> HTTP {response.status_code} {detail}".rstrip()
    )
