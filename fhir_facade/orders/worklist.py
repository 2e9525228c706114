"""Imaging orders -> DICOM Modality Worklist items in the folder Orthanc's worklists plugin serves.

One file per order, named after its accession number, written to a temporary name and renamed
into place: the plugin (which rescans the folder on each C-FIND) never reads half a file, and a
second write of the same order replaces the first instead of adding a duplicate item.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

MWL_FIND = UID("1.2.840.10008.5.1.4.31")  # Modality Worklist Information Model - FIND


def _pn(name: dict[str, str]) -> str:
    return f"{name.get('family', '')}^{name.get('given', '')}".upper().strip("^")


def _da_tm(when: str | None) -> tuple[str, str]:
    try:
        moment = datetime.fromisoformat(str(when).replace("Z", "+00:00")) if when else None
    except ValueError:
        moment = None
    moment = moment or datetime.now(UTC)
    return moment.strftime("%Y%m%d"), moment.strftime("%H%M%S")


def item(order_id: str, accession: str, payload: dict[str, Any], station_aet: str) -> Dataset:
    """The worklist item: patient identity, requested procedure and one scheduled step."""
    proc = payload["procedure"]
    code = Dataset()
    code.CodeValue = proc["code"]
    code.CodingSchemeDesignator = "LN" if proc["system"] == "http://loinc.org" else "CPT"
    code.CodeMeaning = proc["display"][:64]
    date, time = _da_tm(payload.get("occurrence"))
    step = Dataset()
    step.Modality = payload["modality"]
    step.ScheduledStationAETitle = station_aet
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = time
    step.ScheduledProcedureStepDescription = proc["display"][:64]
    step.ScheduledProcedureStepID = accession
    step.ScheduledProtocolCodeSequence = [code]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MWL_FIND
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[order_id])
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = _pn(payload.get("name") or {})
    ds.PatientID = payload["mrn"]
    ds.PatientBirthDate = str(payload.get("birthDate") or "").replace("-", "")
    ds.PatientSex = {"male": "M", "female": "F", "other": "O"}.get(payload.get("gender") or "", "")
    ds.AccessionNumber = accession
    ds.RequestedProcedureID = accession
    ds.RequestedProcedureDescription = proc["display"][:64]
    ds.RequestedProcedureCodeSequence = [code]
    ds.RequestedProcedurePriority = "STAT" if payload.get("priority") == "stat" else "ROUTINE"
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["study", order_id])
    ds.PlacerOrderNumberImagingServiceRequest = order_id[:64]
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def path_for(folder: Path, accession: str) -> Path:
    return folder / f"{accession}.wl"


def write(folder: Path, order_id: str, accession: str, payload: dict[str, Any], aet: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = path_for(folder, accession)
    tmp = folder / f".{accession}.tmp"
    item(order_id, accession, payload, aet).save_as(tmp, enforce_file_format=True)
    os.replace(tmp, target)
    return target


def remove(folder: Path, accession: str) -> bool:
    """Withdraw the item; False when it was not there (already removed or never written)."""
    try:
        path_for(folder, accession).unlink()
    except FileNotFoundError:
        return False
    return True
