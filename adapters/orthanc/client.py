"""I/O with one Orthanc: its REST API (change log, studies, uploads) and its DICOMweb plugin.

REST calls go through httpx; DICOMweb through `dicomweb_client.DICOMwebClient` on a requests
session, so QIDO/WADO/STOW speak the standard the way an independent client does. Both share one
retry policy (tenacity): transport errors and 5xx answers are retried with exponential backoff,
then raise `OrthancUnavailable`; 4xx answers are not retried (`OrthancNotFound` for 404,
`OrthancError` otherwise). dicomweb-client's own retry loop is switched off so that the policy is
in one place. Credentials travel only in the sessions' auth; log lines carry method, path and
error, never the user or password (and any userinfo in the base URL is redacted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import requests
from pydicom.dataset import Dataset

from adapters.base import Closing
from adapters.dicomweb.errors import PacsError, PacsNotFound, PacsUnavailable
from adapters.dicomweb.policy import RetryPolicy, dicomweb_client
from adapters.dicomweb.policy import http_status as _status
from adapters.dicomweb.policy import redact as redact  # re-exported: callers import it here
from adapters.dicomweb.protocol import EXPLICIT_VR_LITTLE_ENDIAN
from adapters.dicomweb.wire import get_part10
from adapters.orthanc.payloads import ChangesPage, DicomJson, OrthancSeries, OrthancStudy

logger = logging.getLogger(__name__)

T = TypeVar("T")

OCTET_STREAM = "application/octet-stream"
"""Frames media type. dicomweb-client's default `*/*` gets HTTP 400 from DICOMweb 1.7."""


class OrthancError(PacsError):
    """An Orthanc call failed. Raised as such (not a subclass) for what retrying would not fix:
    a 4xx answer other than 404, or a 2xx answer that is not what the API promises. A PacsError,
    so code written for any PACS (adapters.dicomweb) catches it too."""


class OrthancNotFound(OrthancError, PacsNotFound):
    """404: the resource is not (or no longer) in Orthanc."""


class OrthancUnavailable(OrthancError, PacsUnavailable):
    """Orthanc did not answer usefully (connection refused, timeout, 5xx) after all retries."""


def _strip_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    parts = urlsplit(url)
    if parts.username is None:
        return url.rstrip("/"), None
    return redact(url).rstrip("/"), (parts.username, parts.password or "")


def _transient(exc: BaseException) -> bool:
    """Worth another try: the network failed or the server said 5xx."""
    if isinstance(exc, (httpx.TransportError, requests.ConnectionError, requests.Timeout)):
        return True
    status = _status(exc)
    return status is not None and status >= 500


class OrthancClient(Closing):
    """One Orthanc server: REST at `base_url`, DICOMweb at `base_url + dicomweb_root`."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: tuple[str, str] | None = None,
        timeout: float = 30.0,
        attempts: int = 4,
        backoff: float = 0.5,
        dicomweb_root: str = "/dicom-web",
    ) -> None:
        self.base_url, url_auth = _strip_userinfo(base_url)
        auth = auth or url_auth
        self.dicomweb_url = self.base_url + "/" + dicomweb_root.strip("/")
        self._attempts = max(1, attempts)
        self._timeout = timeout
        self._http = httpx.Client(base_url=self.base_url, auth=auth, timeout=timeout)
        self._session = requests.Session()
        if auth is not None:
            self._session.auth = auth
        self._dicomweb = dicomweb_client(self.dicomweb_url, self._session, timeout)
        self._retry = RetryPolicy(
            "orthanc", self.base_url, self._attempts, backoff, _transient, _describe, logger
        )

    def close(self) -> None:
        self._http.close()
        self._session.close()

    # ------------------------------------------------------------ retry policy

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one request under the retry policy; `what` names it in logs ("GET /changes")."""
        try:
            return self._retry.run(what, fn)
        except (httpx.HTTPError, requests.RequestException) as exc:
            raise self._error(what, exc) from exc
        except ValueError as exc:  # a 2xx answer that is not the JSON it should be
            raise OrthancError(f"Orthanc at {self.base_url}: {what}: bad answer: {exc}") from exc

    def _error(self, what: str, exc: BaseException) -> OrthancError:
        return self._retry.error(
            f"Orthanc at {self.base_url}: {what}",
            exc,
            unavailable=OrthancUnavailable,
            not_found=OrthancNotFound,
            other=OrthancError,
        )

    def _get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        def request() -> Any:
            response = self._http.get(path, params=params)
            response.raise_for_status()
            return response.json()

        return self._call(f"GET {path}", request)

    # ------------------------------------------------------------ REST

    def system(self) -> dict[str, Any]:
        """`GET /system`: version, AET, ports (also a cheap liveness probe)."""
        found: dict[str, Any] = self._get_json("/system")
        return found

    def changes(self, since: int = 0, *, limit: int = 100) -> ChangesPage:
        """`GET /changes?since=&limit=`: change log entries with Seq > since, oldest first."""
        return ChangesPage.from_json(self._get_json("/changes", {"since": since, "limit": limit}))

    def study(self, orthanc_id: str) -> OrthancStudy:
        """`GET /studies/{id}`; OrthancNotFound once deleted (Orthanc answers an empty 404)."""
        return OrthancStudy.from_json(self._get_json(f"/studies/{orthanc_id}"))

    def study_series(self, orthanc_id: str) -> list[OrthancSeries]:
        """`GET /studies/{id}/series`: the study's series, expanded."""
        raw = self._get_json(f"/studies/{orthanc_id}/series")
        return [OrthancSeries.from_json(s) for s in raw if isinstance(s, Mapping)]

    def upload(self, dicom: bytes) -> dict[str, Any]:
        """`POST /instances` with one Part 10 file; Orthanc's answer (ID, Status, Parent*)."""

        def request() -> dict[str, Any]:
            response = self._http.post(
                "/instances", content=dicom, headers={"Content-Type": "application/dicom"}
            )
            response.raise_for_status()
            found: dict[str, Any] = response.json()
            return found

        return self._call("POST /instances", request)

    # ------------------------------------------------------------ DICOMweb

    def search_for_studies(
        self,
        *,
        search_filters: Mapping[str, Any] | None = None,
        fields: Sequence[str] = (),
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[DicomJson]:
        """QIDO-RS `/studies`; `fields` become includefield (Orthanc omits StudyDescription)."""
        return self._call(
            "QIDO /studies",
            lambda: self._dicomweb.search_for_studies(
                search_filters=dict(search_filters or {}),
                fields=list(fields) or None,
                limit=limit,
                offset=offset,
            ),
        )

    def search_for_series(
        self,
        study_uid: str,
        *,
        fields: Sequence[str] = (),
        search_filters: Mapping[str, Any] | None = None,
        expected: int | None = None,
    ) -> list[DicomJson]:
        """QIDO-RS `/studies/{study}/series`, every page (a server limit must not truncate it).

        `expected`: how many there are (the study's NumberOfStudyRelatedSeries); a first answer
        that holds them all is complete, without the empty request that otherwise ends paging.
        """
        return self._all_pages(
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
        """QIDO-RS `/studies/{study}[/series/{series}]/instances`, every page (`expected` as for
        search_for_series: NumberOfStudyRelatedInstances or NumberOfSeriesRelatedInstances)."""
        return self._all_pages(
            f"QIDO /studies/{study_uid}/instances",
            lambda **page: self._dicomweb.search_for_instances(
                study_uid, series_uid, fields=list(fields) or None, **page
            ),
            expected,
        )

    def _all_pages(
        self, what: str, search: Callable[..., list[DicomJson]], expected: int | None
    ) -> list[DicomJson]:
        """Every page of a QIDO search. Without `expected`, dicomweb-client pages until an empty
        answer; with it, a first answer short of `expected` (a server limit) is paged on."""
        if expected is None:
            return self._call(what, lambda: search(get_remaining=True))
        found = self._call(what, lambda: search(get_remaining=False))
        if found and len(found) < expected:
            found += self._call(what, lambda: search(offset=len(found), get_remaining=True))
        return found

    def retrieve_study_metadata(self, study_uid: str) -> list[DicomJson]:
        """WADO-RS `/studies/{study}/metadata`: every instance's attributes (bulk data by URI)."""
        return self._call(
            f"WADO /studies/{study_uid}/metadata",
            lambda: self._dicomweb.retrieve_study_metadata(study_uid),
        )

    def retrieve_instance_metadata(
        self, study_uid: str, series_uid: str, sop_uid: str
    ) -> DicomJson:
        """WADO-RS metadata of one instance."""
        return self._call(
            f"WADO /studies/{study_uid}/.../instances/{sop_uid}/metadata",
            lambda: self._dicomweb.retrieve_instance_metadata(study_uid, series_uid, sop_uid),
        )

    def retrieve_frames(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        frame_numbers: Sequence[int] = (1,),
        *,
        media_type: str = OCTET_STREAM,
    ) -> list[bytes]:
        """WADO-RS frames, always with an explicit media type (pitfall 1 in environment.md)."""
        return self._call(
            f"WADO /studies/{study_uid}/.../instances/{sop_uid}/frames",
            lambda: self._dicomweb.retrieve_instance_frames(
                study_uid,
                series_uid,
                sop_uid,
                frame_numbers=list(frame_numbers),
                media_types=(media_type,),
            ),
        )

    def retrieve_series(
        self,
        study_uid: str,
        series_uid: str,
        *,
        transfer_syntax: str = EXPLICIT_VR_LITTLE_ENDIAN,
    ) -> list[Dataset]:
        """WADO-RS `/studies/{study}/series/{series}`: every instance with its pixel data in
        one request, uncompressed unless asked otherwise (`*`: as Orthanc stores them). A
        part that is no DICOM instance raises OrthancError (a bad answer, not retried)."""
        url = f"{self.dicomweb_url}/studies/{study_uid}/series/{series_uid}"
        return self._call(
            f"WADO /studies/{study_uid}/series/{series_uid}",
            lambda: get_part10(self._session, url, transfer_syntax, self._timeout),
        )

    def store_instances(self, datasets: Sequence[Dataset]) -> DicomJson:
        """STOW-RS `POST /studies`; the answer as DICOM JSON (00081199 stored, 00081198 failed)."""
        answer = self._call("STOW /studies", lambda: self._dicomweb.store_instances(list(datasets)))
        found: DicomJson = answer.to_json_dict()
        return found


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no answer"
    status = _status(exc)
    if status is None:
        return f"{type(exc).__name__}: {exc}"
    response = getattr(exc, "response", None)
    try:  # HttpDescribeErrors: {"Message": ..., "Details": ...}; a 404 may have no body at all
        body = response.json() if response is not None else None
    except ValueError:
        body = None
    said = [str(body[k]) for k in ("Message", "Details") if isinstance(body, dict) and body.get(k)]
    return f"HTTP {status}" + (f" ({'; '.join(said)})" if said else "")
