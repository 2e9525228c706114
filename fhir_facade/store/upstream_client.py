"""The HTTP side of the upstream store: a fhirpy client whose requests keep status and headers.

fhirpy builds the request URLs (and refuses absolute URLs outside the upstream's base, so a
paging link can never send the store to another host) and the auth headers. Its own request
method folds 404/410 and every other error into a few exception types; the store needs the
status (410 means deleted, 412 a version conflict) and the ETag, so requests go through one
pooled httpx client here and every failure becomes the OperationOutcomeError a client should
see: the upstream's own OperationOutcome for 4xx, 502 when the upstream misbehaves, 503 when it
cannot be reached.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import orjson
from fhirpy import SyncFHIRClient

from fhir_facade import errors
from fhir_facade.errors import Issue

log = logging.getLogger(__name__)
_PASSED_THROUGH = frozenset({400, 404, 409, 410, 412, 422})
_FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: httpx.Headers
    body: Any  # parsed JSON, or None for an empty body


class UpstreamClient(SyncFHIRClient):
    """One upstream FHIR server; thread-safe (httpx's pool), shared by every unit."""

    def __init__(
        self,
        url: str,
        *,
        authorization: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url.rstrip("/"), authorization=authorization)
        self.http = httpx.Client(timeout=timeout_s, transport=transport)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request; raises OperationOutcomeError for anything but a 2xx."""
        try:
            if path.startswith("?"):  # a paging link on the base itself (HAPI's _getpages)
                url = f"{self.url}{path}"
            else:
                url = self._build_request_url(path, None).rstrip("?")
        except ValueError:  # an absolute link outside the upstream's base
            msg = f"the upstream returned a link outside its base: {path}"
            raise _upstream_error(502, msg) from None
        if params:  # repeated names keep their order (fhirpy's encoder takes a dict)
            url += ("&" if "?" in url else "?") + urlencode(list(params))
        sent = {**self._build_request_headers(), **(headers or {})}
        content = None
        if body is not None:
            sent["Content-Type"] = _FHIR_JSON
            content = orjson.dumps(body)
        try:
            response = self.http.request(method, url, content=content, headers=sent)
        except httpx.HTTPError as exc:
            log.warning("upstream FHIR server unreachable: %s %s: %s", method, path, exc)
            raise errors.OperationOutcomeError(
                503,
                [Issue("transient", "the FHIR store (upstream server) is unreachable; retry")],
                {"Retry-After": "5"},
            ) from None
        parsed = _json(response)
        if response.is_success:
            return Reply(response.status_code, response.headers, parsed)
        raise _as_error(method, path, response.status_code, parsed)

    def relative(self, link: str | None) -> str | None:
        """An upstream paging link as a path below the upstream's base, or None.

        Cursors keep only this part: clients never see the internal host, and a link is only
        ever followed on the configured server. A server that reports its address differently
        (a public name, another scheme) is matched by the base's path.
        """
        if not link:
            return None
        base, parts = urlsplit(self.url), urlsplit(link)
        if parts.scheme and parts.scheme not in ("http", "https"):
            return None
        root = base.path.rstrip("/")
        if not (parts.path == root or parts.path.startswith(root + "/")):
            log.warning("upstream paging link outside its base path ignored: %s", link)
            return None
        rest = parts.path[len(root) :].lstrip("/")
        return f"{rest}?{parts.query}" if parts.query else rest

    def check(self) -> None:
        self.call("GET", "metadata", params=[("_summary", "true")])

    def close(self) -> None:
        self.http.close()


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def _upstream_error(status: int, msg: str) -> errors.OperationOutcomeError:
    return errors.OperationOutcomeError(status, [Issue("exception", msg)])


def _issues(outcome: Any) -> list[Issue]:
    """The upstream's OperationOutcome issues, kept as they were (code, text, where)."""
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return []
    out = []
    for raw in outcome.get("issue") or []:
        if not isinstance(raw, dict):
            continue
        severity = raw.get("severity")
        out.append(
            Issue(
                str(raw.get("code") or "processing"),
                str(raw.get("diagnostics") or (raw.get("details") or {}).get("text") or ""),
                severity if severity in ("fatal", "error", "warning", "information") else "error",
                tuple(str(x) for x in raw.get("expression") or ()),
            )
        )
    return out


def _as_error(method: str, path: str, status: int, body: Any) -> errors.OperationOutcomeError:
    """A client error of the upstream is the client's error; anything else is the gateway's."""
    issues = _issues(body)
    if status in _PASSED_THROUGH:
        return errors.OperationOutcomeError(
            status, issues or [Issue("processing", f"the FHIR store answered {status}")]
        )
    log.warning("upstream FHIR server answered %s to %s %s", status, method, path)
    if status in (401, 403):
        return _upstream_error(502, "the FHIR store (upstream server) refused our credentials")
    detail = "; ".join(i.diagnostics for i in issues if i.diagnostics)[:500]
    msg = f"the FHIR store (upstream server) failed with {status}"
    return _upstream_error(502, f"{msg}: {detail}" if detail else msg)
