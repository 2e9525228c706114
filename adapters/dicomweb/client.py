"""A standard-only DICOMweb client: QIDO-RS, WADO-RS and STOW-RS, nothing vendor-specific.

Built on `dicomweb_client.DICOMwebClient` over a requests session carrying the configured auth
(adapters.dicomweb.auth). One retry policy (tenacity) for every call: transport errors, time-outs,
5xx answers and 2xx answers that are not DICOM JSON are retried with exponential backoff, then
raise PacsUnavailable (or PacsError for a body that stayed malformed); 404 raises PacsNotFound at
once and other 4xx PacsError. dicomweb-client's own retry loop is off so the policy is in one
place. Log lines name the server (without userinfo) and the call, never a credential.

Differences between servers handled here: QIDO paging is explicit (`limit`/`offset` until an
empty page, or until the expected count is reached), because a server may cap its answers
(dcm4chee-arc's QIDO limit, Orthanc's LimitFindResults); WADO-RS retrievals name their transfer
syntax in the Accept header (a server may otherwise pick a compressed one the caller cannot
decode, or refuse `*/*` as Orthanc's DICOMweb 1.7 does for frames).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from pydicom.dataset import Dataset
from requests.auth import AuthBase

from adapters.base import Closing
from adapters.dicomweb.errors import MalformedAnswer, PacsError, PacsNotFound, PacsUnavailable
from adapters.dicomweb.policy import RetryPolicy, dicomweb_client
from adapters.dicomweb.policy import http_status as _status
from adapters.dicomweb.policy import redact as redact  # re-exported: callers import it here
from adapters.dicomweb.protocol import EXPLICIT_VR_LITTLE_ENDIAN, OCTET_STREAM, DicomJson
from adapters.dicomweb.wire import dicom_json, get_part10

logger = logging.getLogger(__name__)

T = TypeVar("T")
_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")


def transient(exc: BaseException) -> bool:
    """Worth another try: the network failed, the server said 5xx, or the body was garbled."""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, MalformedAnswer)):
        return True
    if isinstance(exc, requests.JSONDecodeError):
        return True
    status = _status(exc)
    return status is not None and status >= 500


def describe(exc: BaseException | None) -> str:
    """A short account of a failure for logs: status and the server's message, no secrets."""
    if exc is None:
        return "no answer"
    status = _status(exc)
    if status is None:
        return f"{type(exc).__name__}: {exc}"
    response = getattr(exc, "response", None)
    reason = getattr(response, "reason", "") or ""
    return f"HTTP {status}" + (f" {reason}" if reason else "")


class DicomwebClient(Closing):
    """One DICOMweb service at `url` (e.g. http://pacs:8080/dcm4chee-arc/aets/DCM4CHEE/rs)."""

    def __init__(
        self,
        url: str,
        *,
        auth: AuthBase | tuple[str, str] | None = None,
        timeout: float = 30.0,
        attempts: int = 4,
        backoff: float = 0.5,
        page_size: int = 500,
        transfer_syntax: str = EXPLICIT_VR_LITTLE_ENDIAN,
    ) -> None:
        self.dicomweb_url = redact(url).rstrip("/")
        self.page_size = max(1, page_size)
        self.transfer_syntax = transfer_syntax
        self._attempts = max(1, attempts)
        self._timeout = timeout
        self._session = requests.Session()
        parts = urlsplit(url)
        if auth is None and parts.username is not None:
            auth = (parts.username, parts.password or "")
        if auth is not None:
            self._session.auth = auth
        self._dicomweb = dicomweb_client(self.dicomweb_url, self._session, timeout)
        self._retry = RetryPolicy(
            "pacs", self.dicomweb_url, self._attempts, backoff, transient, describe, logger
        )

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------ retry policy

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one request under the retry policy; `what` names it in logs ("QIDO /studies")."""
        try:
            return self._retry.run(what, fn)
        except (requests.RequestException, ValueError) as exc:
            raise self._error(what, exc) from exc

    def _error(self, what: str, exc: BaseException) -> PacsError:
        where = f"PACS at {self.dicomweb_url}: {what}"
        if isinstance(exc, (MalformedAnswer, requests.JSONDecodeError)):
            message = f"{where}: malformed DICOM JSON after {self._attempts} attempts: {exc}"
            logger.error("%s", message)
            return PacsError(message, status=_status(exc))
        return self._retry.error(
            where, exc, unavailable=PacsUnavailable, not_found=PacsNotFound, other=PacsError
        )

    def _json(self, what: str, fn: Callable[[], Any]) -> list[DicomJson]:
        return self._call(what, lambda: dicom_json(fn(), what))

    def _pages(
        self, what: str, search: Callable[..., Any], expected: int | None
    ) -> list[DicomJson]:
        """Every match, `page_size` at a time: until an empty page, or `expected` are in hand."""
        found: list[DicomJson] = []
        while True:

            def one_page(offset: int = len(found)) -> Any:
                return search(limit=self.page_size, offset=offset)

            page = self._json(what, one_page)
            found += page
            if not page or (expected is not None and len(found) >= expected):
                return found

    # ------------------------------------------------------------ QIDO-RS

    def search_for_studies(
        self,
        *,
        search_filters: Mapping[str, Any] | None = None,
        fields: Sequence[str] = (),
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[DicomJson]:
        """QIDO-RS `/studies`: at most `limit` matches (from `offset`: one page the caller
        walks, as the sync's listing does), or every page of them when `limit` is None."""

        def search(**page: Any) -> Any:
            return self._dicomweb.search_for_studies(
                search_filters=dict(search_filters or {}), fields=list(fields) or None, **page
            )

        if limit is not None:
            return self._json("QIDO /studies", lambda: search(limit=limit, offset=offset or 0))
        return self._pages("QIDO /studies", search, None)

    def search_for_series(
        self,
        study_uid: str,
        *,
        fields: Sequence[str] = (),
        search_filters: Mapping[str, Any] | None = None,
        expected: int | None = None,
    ) -> list[DicomJson]:
        """QIDO-RS `/studies/{study}/series`, every page (`expected`: NumberOfStudyRelatedSeries,
        which spares the request for the empty page when known)."""
        return self._pages(
            f"QIDO /studies/{study_uid}/series",
            lambda **page: self._dicomweb.search_for_series(
                study_uid,
                fields=list(fields) or None,
                search_filters=dict(search_filters or {}),
                **page,
            ),
            expected,
        )

    def search_for_instances(
        self,
        study_uid: str,
        series_uid: str | None = None,
        *,
        fields: Sequence[str] = (),
        expected: int | None = None,
    ) -> list[DicomJson]:
        """QIDO-RS `/studies/{study}[/series/{series}]/instances`, every page."""
        return self._pages(
            f"QIDO /studies/{study_uid}/instances",
            lambda **page: self._dicomweb.search_for_instances(
                study_uid, series_uid, fields=list(fields) or None, **page
            ),
            expected,
        )

    # ------------------------------------------------------------ WADO-RS

    def retrieve_study_metadata(self, study_uid: str) -> list[DicomJson]:
        """WADO-RS `/studies/{study}/metadata`: every instance's attributes (bulk data by URI)."""
        what = f"WADO /studies/{study_uid}/metadata"
        return self._json(what, lambda: self._dicomweb.retrieve_study_metadata(study_uid))

    def retrieve_instance_metadata(
        self, study_uid: str, series_uid: str, sop_uid: str
    ) -> DicomJson:
        """WADO-RS metadata of one instance."""
        what = f"WADO /studies/{study_uid}/.../instances/{sop_uid}/metadata"

        def fetch() -> list[DicomJson]:
            found = self._dicomweb.retrieve_instance_metadata(study_uid, series_uid, sop_uid)
            return dicom_json([found] if isinstance(found, dict) else found, what)

        datasets = self._call(what, fetch)
        if len(datasets) != 1:
            raise PacsError(f"PACS at {self.dicomweb_url}: {what}: {len(datasets)} datasets")
        return datasets[0]

    def retrieve_frames(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        frame_numbers: Sequence[int] = (1,),
        *,
        media_type: str = OCTET_STREAM,
        transfer_syntax: str | None = None,
    ) -> list[bytes]:
        """WADO-RS frames as multipart/related parts of `media_type`; octet-stream frames are
        asked for in `transfer_syntax` (default: the client's, uncompressed explicit VR LE)."""
        accept: tuple[str | tuple[str, str], ...] = (media_type,)
        if media_type == OCTET_STREAM:
            accept = ((media_type, transfer_syntax or self.transfer_syntax),)
        return self._call(
            f"WADO /studies/{study_uid}/.../instances/{sop_uid}/frames",
            lambda: self._dicomweb.retrieve_instance_frames(
                study_uid,
                series_uid,
                sop_uid,
                frame_numbers=list(frame_numbers),
                media_types=accept,
            ),
        )

    def retrieve_study(
        self, study_uid: str, *, transfer_syntax: str | None = None
    ) -> list[Dataset]:
        """WADO-RS `/studies/{study}`: multipart/related application/dicom in an explicit
        transfer syntax (`*` lets the server keep what it stores)."""
        return self._instances(f"/studies/{study_uid}", transfer_syntax)

    def retrieve_series(
        self, study_uid: str, series_uid: str, *, transfer_syntax: str | None = None
    ) -> list[Dataset]:
        """WADO-RS `/studies/{study}/series/{series}`: every instance with its pixel data in
        one request (the AI pipeline's fetch), in the client's transfer syntax by default."""
        return self._instances(f"/studies/{study_uid}/series/{series_uid}", transfer_syntax)

    def retrieve_instance(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        *,
        transfer_syntax: str | None = None,
    ) -> Dataset:
        """WADO-RS one instance, multipart/related application/dicom in an explicit syntax."""
        path = f"/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
        found = self._instances(path, transfer_syntax)
        if len(found) != 1:
            raise PacsError(f"PACS at {self.dicomweb_url}: WADO {path}: {len(found)} instances")
        return found[0]

    def _instances(self, path: str, transfer_syntax: str | None) -> list[Dataset]:
        syntax = transfer_syntax or self.transfer_syntax
        return self._call(
            f"WADO {path}",
            lambda: get_part10(self._session, self.dicomweb_url + path, syntax, self._timeout),
        )

    # ------------------------------------------------------------ STOW-RS

    def store_instances(self, datasets: Sequence[Dataset]) -> DicomJson:
        """STOW-RS `POST /studies`; the answer as DICOM JSON (00081199 stored, 00081198 failed)."""
        answer = self._call("STOW /studies", lambda: self._dicomweb.store_instances(list(datasets)))
        found: DicomJson = answer.to_json_dict()
        return found
