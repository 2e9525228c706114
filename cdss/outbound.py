"""Outbound requests only to configured hosts: the guard against SSRF.

Every URL the server fetches on someone's behalf (a CDS client's `fhirServer`, a JWT's `jku`, an
authorization server's JWKS or introspection endpoint) must name an origin (scheme, host, port)
that configuration lists. Redirects are never followed (a 3xx from an allowed host could point
anywhere); the guard also runs as an httpx request hook, so a URL assembled later (paging links,
a library's own request) is checked at the moment it leaves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

_PORTS = {"http": 80, "https": 443}


class OutboundRefused(httpx.RequestError):
    """A request to a host configuration does not list (raised before anything is sent)."""


def origin(url: str) -> str | None:
    """`scheme://host:port` of an absolute http(s) URL without user info, else None."""
    try:
        parts = urlsplit(url)
        port = parts.port or _PORTS.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in _PORTS or not parts.hostname or parts.username or parts.password:
        return None
    return f"{parts.scheme}://{parts.hostname.lower()}:{port}"


@dataclass(frozen=True, slots=True)
class OutboundGuard:
    origins: frozenset[str]

    @classmethod
    def from_urls(cls, urls: Iterable[str]) -> OutboundGuard:
        return cls(frozenset(o for o in map(origin, urls) if o is not None))

    def allows(self, url: str) -> bool:
        found = origin(url)
        return found is not None and found in self.origins

    def check(self, url: str) -> None:
        if not self.allows(url):
            raise OutboundRefused(f"outbound request to a host not configured: {origin(url)}")

    async def on_request(self, request: httpx.Request) -> None:
        """httpx event hook: refuse before the connection is opened."""
        self.check(str(request.url))


def guarded_client(guard: OutboundGuard, **kwargs: Any) -> httpx.AsyncClient:
    """An AsyncClient that never follows redirects and only reaches the guard's origins."""
    hooks = kwargs.pop("event_hooks", {}) or {}
    hooks = {**hooks, "request": [*hooks.get("request", []), guard.on_request]}
    return httpx.AsyncClient(follow_redirects=False, event_hooks=hooks, **kwargs)
