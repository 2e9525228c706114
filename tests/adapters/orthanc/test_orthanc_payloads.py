"""Readers of Orthanc's REST JSON and of DICOM JSON, on the captured 1.10.1 payloads."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.orthanc.payloads import (
    ChangesPage,
    OrthancSeries,
    OrthancStudy,
    bulk_data_uri,
    fhir_datetime,
    integer,
    items,
    parse_offset,
    person_display,
    tag,
    text,
    texts,
)

CAPTURED = Path(__file__).parent / "captured"


def captured(name: str) -> Any:
    return json.loads((CAPTURED / name).read_text())


def test_changes_page_from_the_captured_log() -> None:
    page = ChangesPage.from_json(captured("changes.json"))
    assert page.done is True and page.last == 11
    assert [c.seq for c in page.changes] == list(range(1, 12))
    kinds = [c.change_type for c in page.changes]
    assert kinds[:4] == ["NewInstance", "NewSeries", "NewStudy", "NewPatient"]
    assert kinds.count("StableStudy") == 2  # a later instance makes the study stable again
    stable = page.changes[5]
    assert (stable.resource_type, stable.path) == ("Study", f"/studies/{stable.id}")


def test_a_partial_page_says_where_to_continue() -> None:
    page = ChangesPage.from_json(captured("changes-limit2.json"))
    assert (page.done, page.last, len(page.changes)) == (False, 2, 2)


def test_the_book_example_and_malformed_entries() -> None:
    raw = captured("book-changes.json")
    raw["Changes"].append({"ChangeType": "NewStudy"})  # no Seq, no ID: skipped
    raw["Changes"].append("junk")
    page = ChangesPage.from_json(raw)
    assert [c.seq for c in page.changes] == [921, 922, 923, 924]
    assert ChangesPage.from_json({}) == ChangesPage(changes=[], done=True, last=0)


def test_study_and_series_objects() -> None:
    study = OrthancStudy.from_json(captured("study.json"))
    assert study.study_instance_uid == "1.2.276.0.7230010.3.1.2.8323328.15814.1795940383.468356"
    assert study.patient_id == "SYN-0001"
    assert study.is_stable and study.series == ["1c2d47ff-89992d48-f8c5f8f9-0b29d7c2-34ddb860"]
    series = OrthancSeries.from_json(captured("series.json"))
    assert series.main_dicom_tags["BodyPartExamined"] == "CHEST"
    assert len(series.instances) == 2 and series.expected_number_of_instances is None
    assert OrthancStudy.from_json({}).study_instance_uid is None


def test_dicom_json_readers() -> None:
    study = captured("qido-studies.json")[0]
    assert tag("StudyInstanceUID") == "0020000D" == tag("0020000d")
    with pytest.raises(KeyError):
        tag("NoSuchKeyword")
    assert text(study, "PatientName") == "SYNTHETIC^TEST"
    assert integer(study, "NumberOfStudyRelatedInstances") == 2
    assert integer({"00201208": {"vr": "IS", "Value": [" 7 "]}}, "00201208") == 7
    assert texts(study, "ModalitiesInStudy") == ["CT"]
    assert text(study, "StudyDescription") is None  # not in a default QIDO answer
    assert text({"00081030": {"vr": "LO"}}, "StudyDescription") is None
    assert text({"00081030": {"vr": "LO", "Value": ["  "]}}, "StudyDescription") is None


def test_sequences_and_bulk_data() -> None:
    stow = captured("stow-response.json")
    refs = items(stow, "ReferencedSOPSequence")
    assert text(refs[0], "ReferencedSOPClassUID") == "1.2.840.10008.5.1.4.1.1.7"
    assert items(stow, "FailedSOPSequence") == []
    metadata = captured("wado-study-metadata.json")[0]
    assert str(bulk_data_uri(metadata, "PixelData")).endswith("/bulk/7fe00010")
    assert bulk_data_uri(metadata, "PatientID") is None


@pytest.mark.parametrize(
    ("pn", "shown"),
    [
        ("DOE^JANE", "JANE DOE"),
        ("DOE^JANE^Q^DR^JR", "DR JANE Q DOE JR"),
        ("DOE", "DOE"),
        ("^^", None),
        ("", None),
        ("YAMADA^TARO=山田^太郎", "TARO YAMADA"),
    ],
)
def test_person_display(pn: str, shown: str | None) -> None:
    assert person_display(pn) == shown


def test_dates_times_and_offsets() -> None:
    assert parse_offset("-0530").utcoffset(None) == -timedelta(hours=5, minutes=30)
    for bad in ("+1500", "0100", "+01:00", "CET"):
        with pytest.raises(ValueError):
            parse_offset(bad)
    assert fhir_datetime("20240115", "101500", UTC) == ("2024-01-15T10:15:00Z", None)
    assert fhir_datetime("2024.01.15", "10:15", UTC) == ("2024-01-15T10:15:00Z", None)
    assert fhir_datetime("20240115", "081943.000000", UTC)[0] == "2024-01-15T08:19:43Z"
    assert fhir_datetime("20240115", "10", None) == ("2024-01-15", None)
    assert fhir_datetime("20240115", "1099", UTC)[1] is not None
    with pytest.raises(ValueError):
        fhir_datetime("20240230", None, None)
