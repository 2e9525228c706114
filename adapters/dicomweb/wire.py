"""What comes over the wire from a DICOMweb server, checked before use: DICOM JSON arrays
(PS3.18 F.2) and multipart/related Part 10 instances (RFC 2387, PS3.18 8.7.3). Pure, except
`get_part10`, the one WADO-RS instance retrieval both PACS clients share."""

from __future__ import annotations

import re
from io import BytesIO
from typing import Any

import requests
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from adapters.dicomweb.errors import MalformedAnswer
from adapters.dicomweb.protocol import DicomJson

_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")


def dicom_json(answer: Any, what: str) -> list[DicomJson]:
    """`answer` checked to be a list of DICOM JSON datasets (PS3.18 F.2): 8-hex-digit keys whose
    values are objects with a `vr`. MalformedAnswer otherwise, so nothing half-parsed is used."""
    if not isinstance(answer, list):
        raise MalformedAnswer(f"{what}: expected a JSON array, got {type(answer).__name__}")
    for index, dataset in enumerate(answer):
        if not isinstance(dataset, dict):
            raise MalformedAnswer(f"{what}: item {index} is not a JSON object")
        for key, element in dataset.items():
            if not _TAG.match(key) or not isinstance(element, dict):
                raise MalformedAnswer(f"{what}: item {index}: {key!r} is no DICOM JSON attribute")
            if not isinstance(element.get("vr"), str):
                raise MalformedAnswer(f"{what}: item {index}: attribute {key} has no vr")
    return answer


def multipart_parts(response: requests.Response) -> list[bytes]:
    """The bodies of a multipart/related answer (RFC 2387), in order."""
    content_type = response.headers.get("Content-Type", "")
    boundary = next(
        (
            p.split("=", 1)[1].strip().strip('"')
            for p in content_type.split(";")
            if p.strip().lower().startswith("boundary=")
        ),
        None,
    )
    if not content_type.lower().startswith("multipart/related") or not boundary:
        raise MalformedAnswer(f"expected multipart/related with a boundary, got {content_type!r}")
    parts = []
    for chunk in response.content.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        _head, sep, body = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise MalformedAnswer("a multipart part without headers")
        parts.append(body[:-2] if body.endswith(b"\r\n") else body)
    return parts


def part10(data: bytes) -> Dataset:
    """A Part 10 instance, tolerating a missing preamble/"DICM" prefix (Orthanc 1.7)."""
    if data[128:132] != b"DICM":
        data = b"\0" * 128 + b"DICM" + data
    try:
        with BytesIO(data) as buffer:  # closed: the dataset would keep it, a second copy
            return dcmread(buffer)
    except (InvalidDicomError, EOFError, ValueError) as exc:
        raise MalformedAnswer(f"a part is not a DICOM instance: {exc}") from exc


def part10_accept(transfer_syntax: str) -> str:
    """The Accept header of a WADO-RS instance retrieval in one explicit transfer syntax (`*`:
    whatever the server stores). Explicit, because a server may otherwise pick a compressed
    syntax the caller cannot decode (PS3.18 8.7.3.5.2)."""
    return f'multipart/related; type="application/dicom"; transfer-syntax={transfer_syntax}'


def get_part10(
    session: requests.Session, url: str, transfer_syntax: str, timeout: float
) -> list[Dataset]:
    """GET a WADO-RS study, series or instance resource: its instances, pixel data included,
    in one multipart/related answer. Parsed here rather than by dicomweb-client because
    Orthanc's DICOMweb 1.7 sends each part without the Part 10 preamble (see `part10`)."""
    response = session.get(url, headers={"Accept": part10_accept(transfer_syntax)}, timeout=timeout)
    response.raise_for_status()
    return [part10(part) for part in multipart_parts(response)]
