"""Errors every PACS client raises, whatever the server: catch these, not a vendor's."""

from __future__ import annotations


class PacsError(RuntimeError):
    """A PACS call failed for a reason retrying would not fix (a 4xx other than 404, or an
    answer that is not what DICOMweb promises, even after retries)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PacsNotFound(PacsError):
    """404: the study, series or instance is not (or no longer) on the PACS."""


class PacsUnavailable(PacsError):
    """The PACS did not answer usefully (refused, timed out, 5xx) after all retries."""


class MalformedAnswer(ValueError):
    """A 2xx answer whose body is not DICOM JSON (truncated by a proxy, an HTML error page...).
    Retried like a 5xx, since a proxy in between is the usual cause."""
