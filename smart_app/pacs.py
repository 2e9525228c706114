"""The viewer proxy's upstream: the site's PACS as `adapters.dicomweb` configures it.

The proxy forwards raw DICOMweb bytes with httpx (async, streaming-friendly), while the PACS
authentication objects (`adapters.dicomweb.factory.pacs_auth`: basic, bearer, OAuth2 client
credentials) are `requests` auth handlers shared with every other imaging consumer. `PacsAuth`
lets httpx use them: the handler stamps a throwaway `requests` request and its Authorization
header is copied. An OAuth2 token fetch blocks, so it runs in a worker thread; a 401 with a
token we thought valid drops the cached token and the request is sent once more.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

import anyio.to_thread
import httpx
import requests
from requests.auth import AuthBase

from adapters.dicomweb.factory import pacs_auth
from adapters.dicomweb.settings import PacsSettings


class PacsAuth(httpx.Auth):
    """httpx auth from a `requests` AuthBase (the PACS factory's)."""

    def __init__(self, inner: AuthBase) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"PacsAuth({self.inner!r})"

    def _header(self, request: httpx.Request) -> str | None:
        probe = requests.Request("GET", str(request.url)).prepare()
        header = self.inner(probe).headers.get("Authorization")
        return header.decode() if isinstance(header, bytes) else header

    def _stamp(self, request: httpx.Request, header: str | None) -> None:
        if header is not None:
            request.headers["Authorization"] = header

    def _invalidate(self) -> bool:
        drop = getattr(self.inner, "invalidate", None)
        if drop is None:
            return False
        drop()
        return True

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        self._stamp(request, self._header(request))
        response = yield request
        if response.status_code == 401 and self._invalidate():
            self._stamp(request, self._header(request))
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        self._stamp(request, await anyio.to_thread.run_sync(self._header, request))
        response = yield request
        if response.status_code == 401 and self._invalidate():
            self._stamp(request, await anyio.to_thread.run_sync(self._header, request))
            yield request


def upstream(pacs: PacsSettings) -> tuple[str | None, httpx.Auth | None]:
    """(the DICOMweb root the proxy forwards to, its auth) from CDSS_PACS_* settings."""
    inner = pacs_auth(pacs)
    return pacs.dicomweb_url, PacsAuth(inner) if inner is not None else None
