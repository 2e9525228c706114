"""HTTP client for the SENAITE JSON API (senaite.jsonapi v1): auth, timeouts, retries, paging.

- HTTP Basic authentication, as the OpenMRS/Ozone integration uses. Plone treats wrong
  credentials as anonymous (searches then return nothing, silently), so `check_auth` asks
  `/users/current` and fails loudly instead.
- Bounded retries with exponential backoff on connection errors and 5xx answers (reads only;
  a write is retried only when the connection was never made). One log line per retry, with
  the method and path, never the credentials or the query string (it can carry MRNs).
- SENAITE reports some failures as HTTP 200 with `{"success": false, "error": ...}`; those are
  raised as SenaiteError like any other error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from adapters.base import Closing

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({500, 502, 503, 504})
Params = Mapping[str, str | int]


class SenaiteError(RuntimeError):
    """An answer that is not a usable result (HTTP error, `success: false`, not JSON)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SenaiteAuthError(SenaiteError):
    """The credentials were refused (401) or SENAITE took the client for anonymous."""


class _Transient(Exception):
    """A 5xx answer worth another try."""

    def __init__(self, status: int, path: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.path = path


@dataclass(frozen=True, slots=True)
class Page:
    """One batch of a search answer."""

    items: list[dict[str, Any]]
    count: int
    b_start: int
    limit: int

    @property
    def next_start(self) -> int | None:
        nxt = self.b_start + self.limit
        return nxt if self.items and nxt < self.count else None


class SenaiteClient(Closing):
    """Talks to `api_url` (e.g. `http://lims:8080/senaite/@@API/senaite/v1`)."""

    def __init__(
        self,
        api_url: str,
        *,
        username: str,
        password: str,
        timeout: float = 30.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        page_size: int = 100,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.page_size = page_size
        self.max_attempts = max(1, max_attempts)
        self._wait = wait_exponential(multiplier=backoff, max=max_backoff)
        self._http = httpx.Client(
            auth=httpx.BasicAuth(username, password),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"Accept": "application/json"},
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _log_retry(self, state: RetryCallState) -> None:
        method, path = state.args[0], state.args[1]
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "SENAITE %s %s failed (%s); retry %d of %d in %.1f s",
            method,
            path,
            error or "error",
            state.attempt_number,
            self.max_attempts - 1,
            delay,
        )

    def request(
        self, method: str, path: str, *, params: Params | None = None, body: Any = None
    ) -> dict[str, Any]:
        """One API call with bounded retries; the decoded JSON object of a successful answer."""
        retriable: tuple[type[BaseException], ...] = (
            (httpx.TransportError, _Transient)
            if method == "GET"
            else (httpx.ConnectError, httpx.ConnectTimeout)
        )
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(retriable),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            response = retrying(self._once, method, path, params, body)
        except _Transient as exc:
            raise SenaiteError(
                f"SENAITE {method} {path}: HTTP {exc.status} after {self.max_attempts} attempts",
                status=exc.status,
            ) from None
        except httpx.HTTPError as exc:
            raise SenaiteError(f"SENAITE {method} {path}: {type(exc).__name__}: {exc}") from exc
        return self._decode(method, path, response)

    def _once(self, method: str, path: str, params: Params | None, body: Any) -> httpx.Response:
        url = f"{self.api_url}/{path.lstrip('/')}"
        content = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else None
        response = self._http.request(
            method, url, params=dict(params or {}), content=content, headers=headers
        )
        if response.status_code in RETRY_STATUSES and method == "GET":
            raise _Transient(response.status_code, path)
        return response

    @staticmethod
    def _decode(method: str, path: str, response: httpx.Response) -> dict[str, Any]:
        try:
            data = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError:
            data = None
        message = data.get("error") or data.get("message") if isinstance(data, dict) else None
        where = f"SENAITE {method} {path}"
        if response.status_code == 401:
            raise SenaiteAuthError(f"{where}: unauthorized ({message or 'no message'})", status=401)
        if response.status_code >= 400:
            raise SenaiteError(
                f"{where}: HTTP {response.status_code}: {message or ''}".strip(),
                status=response.status_code,
            )
        if not isinstance(data, dict):
            raise SenaiteError(f"{where}: answer is not a JSON object", status=response.status_code)
        if data.get("success") is False:
            raise SenaiteError(f"{where}: {message or 'failed'}", status=response.status_code)
        return data

    def get(self, path: str, params: Params | None = None) -> dict[str, Any]:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any) -> dict[str, Any]:
        return self.request("POST", path, body=body)

    def check_auth(self) -> str:
        """The user name SENAITE sees; raises SenaiteAuthError when it sees an anonymous user."""
        items = self.get("users/current").get("items") or [{}]
        user = items[0] if isinstance(items[0], dict) else {}
        if not user.get("authenticated"):
            raise SenaiteAuthError("SENAITE treats the configured credentials as anonymous")
        return str(user.get("username", ""))

    def search_page(
        self,
        resource: str,
        params: Params | None = None,
        *,
        b_start: int = 0,
        limit: int | None = None,
    ) -> Page:
        """One batch of `GET /<resource>` (a portal type or `search`)."""
        size = limit or self.page_size
        data = self.get(resource, {**(params or {}), "b_start": b_start, "limit": size})
        items = data.get("items")
        if not isinstance(items, list):
            raise SenaiteError(f"SENAITE GET {resource}: no items list in the answer")
        count = data.get("count")
        return Page(
            items=[i for i in items if isinstance(i, dict)],
            count=count if isinstance(count, int) else len(items),
            b_start=b_start,
            limit=size,
        )

    def iter_search(self, resource: str, params: Params | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a search, page after page (offset paging; see source.py for sync)."""
        start: int | None = 0
        while start is not None:
            page = self.search_page(resource, params, b_start=start)
            yield from page.items
            start = page.next_start
