"""The retry policy and error wrapping every PACS client shares (standard DICOMweb and Orthanc).

(Named policy.py, not retry.py: log captures show the file name, and tests count "retry" in them.)

One place for: exponential-backoff retries of transient failures (tenacity) with one warning
per retry, and the mapping of the final failure onto `PacsError` and its subclasses. Each
client passes what differs: its transient test, how it describes a failure, its logger and
label, and its own error classes (Orthanc's subclass the Pacs ones), so log lines and raised
types stay each client's own. Log lines name the server without userinfo, never a credential.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import requests
from dicomweb_client.api import DICOMwebClient
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from adapters.dicomweb.errors import PacsError

T = TypeVar("T")
E = TypeVar("E", bound=PacsError)


def redact(url: str) -> str:
    """The URL without any user:password@ part, for log lines and error messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an httpx or requests status error; None for anything else."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return int(exc.response.status_code)
    return None


def dicomweb_client(url: str, session: requests.Session, timeout: float) -> DICOMwebClient:
    """dicomweb-client over `session`, with its own retry loop off: RetryPolicy retries."""
    client = DICOMwebClient(url=url, session=session, timeout=timeout)
    client.set_http_retry_params(retry=False)
    return client


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one client retries and reports: `label` and `server` open each log line
    ("pacs http://host/rs: QIDO /studies failed (HTTP 503); retry 1/3 in 0.50s")."""

    label: str
    server: str
    attempts: int
    backoff: float
    transient: Callable[[BaseException], bool]
    describe: Callable[[BaseException | None], str]
    logger: logging.Logger

    def run(self, what: str, fn: Callable[[], T]) -> T:
        """`fn` under the policy: transient failures retried, the last one re-raised as is."""

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            self.logger.warning(
                "%s %s: %s failed (%s); retry %d/%d in %.2fs",
                self.label,
                self.server,
                what,
                self.describe(exc),
                state.attempt_number,
                self.attempts - 1,
                delay,
            )

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff, max=30),
            retry=retry_if_exception(self.transient),
            before_sleep=log_retry,
            reraise=True,
        )
        return retrying(fn)

    def error(
        self,
        where: str,
        exc: BaseException,
        *,
        unavailable: type[E],
        not_found: type[E],
        other: type[E],
    ) -> E:
        """The error to raise for `exc`, the final failure of `where` ("PACS at url: what"):
        `unavailable` (logged) once retries are spent, `not_found` for 404, else `other`."""
        status = http_status(exc)
        if self.transient(exc):
            message = f"{where} failed after {self.attempts} attempts: {self.describe(exc)}"
            self.logger.error("%s", message)
            return unavailable(message, status=status)
        if status == 404:
            return not_found(f"{where}: not found (404)", status=status)
        return other(f"{where}: {self.describe(exc)}", status=status)
