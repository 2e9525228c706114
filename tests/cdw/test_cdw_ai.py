"""AI findings (docs/ai-findings.md) -> measurement (probability) + image_feature linked to the
image_occurrence of the ImagingStudy in `derivedFrom`; updates and deletes reflected."""

from __future__ import annotations

from typing import Any

from cdw_cohort import DCM, SCT, UCUM, write_cohort
from sqlalchemy import select

from cdw.etl import Etl
from cdw.mapping_ai import MEASUREMENT_FIELD
from cdw.pseudonym import Pseudonymizer
from cdw.schema import measurement
from cdw.schema_ext import image_feature, image_occurrence
from fhir_facade.store.sql_store import SqlStore

AI = "urn:cdss:ai"
NODULE = "786838002"  # SNOMED CT |Nodule of lung| (docs/ai-findings.md)


def _study(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "ImagingStudy", "id": f"ct-{pid}", "status": "available",
        "subject": {"reference": f"Patient/{pid}"}, "started": "2024-05-02T08:00:00Z",
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:1.2.40.{pid[-1]}"}],
        "series": [
            {"uid": f"1.2.40.{pid[-1]}.1", "modality": {"system": DCM, "code": "CT"}},
            {"uid": f"1.2.40.{pid[-1]}.2", "modality": {"system": DCM, "code": "CT"}},
        ],
    }  # fmt: skip


def _comp(code: str, **value: Any) -> dict[str, Any]:
    return {"code": {"coding": [{"system": AI, "code": code}]}, **value}


def finding(pid: str, probability: float, series: str | None) -> dict[str, Any]:
    """An Observation built as the contract says (tag, components by code, derivedFrom)."""
    present = probability >= 0.5
    components = [
        _comp("model", valueString="nodule-net@1.2.0"),
        _comp("probability", valueQuantity={"value": probability, "unit": "1",
                                            "system": UCUM, "code": "1"}),
    ]  # fmt: skip
    if series:
        components += [
            _comp("series-instance-uid", valueString=series),
            _comp("sop-instance-uid", valueString=f"{series}.77"),
            _comp("location-x", valueQuantity={"value": -42.5, "unit": "mm", "code": "mm"}),
            _comp("pixel-row", valueInteger=211),
        ]
    return {
        "resourceType": "Observation", "id": f"ai-{pid}", "status": "final",
        "meta": {"tag": [{"system": AI, "code": "finding"}]},
        "category": [{"coding": [{"code": "imaging"}]}],
        "code": {"coding": [{"system": SCT, "code": NODULE}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2024-05-02T08:00:00Z", "issued": "2024-05-02T09:30:00Z",
        "valueCodeableConcept": {"coding": [
            {"system": SCT, "code": "52101004" if present else "2667000"}]},
        "derivedFrom": [{"reference": f"ImagingStudy/ct-{pid}"}],
        "contained": [{"resourceType": "Device", "id": "model",
                       "deviceName": [{"name": "nodule-net", "type": "model-name"}],
                       "version": [{"value": "1.2.0"}]}],
        "device": {"reference": "#model", "display": "nodule-net@1.2.0"},
        "component": list(reversed(components)),  # readers must not rely on order
    }  # fmt: skip


def _features(etl: Etl) -> list[Any]:
    with etl.cdw.connect() as conn:
        return list(conn.execute(select(image_feature)))


def test_cdw_ai_findings(database_url: str, pz: Pseudonymizer) -> None:
    write_cohort(database_url, 2)
    store = SqlStore(database_url)
    etl = Etl(database_url, database_url, pz, batch_size=7, overlap_us=0)
    series_2 = "1.2.40.0.2"
    try:
        with store.unit() as unit:
            for pid in ("pat-0", "pat-1"):
                unit.update(_study(pid))
            unit.update(finding("pat-0", 0.91, series_2))
            unit.update(finding("pat-1", 0.12, None))
        first = etl.run()
        assert not first.errors, first.errors
        assert first.rows["image_feature"] == 2
        with etl.cdw.connect() as conn:
            occ = {r.image_occurrence_id: r for r in conn.execute(select(image_occurrence))}
            probs = {
                r.measurement_id: r
                for r in conn.execute(
                    select(measurement).where(measurement.c.measurement_type_concept_id == 32882)
                )
            }
        rows = {r.person_id: r for r in _features(etl)}
        present, absent = rows[pz.person_id("pat-0")], rows[pz.person_id("pat-1")]
        # linked to the named series (the study's second), resp. the study's first series
        assert occ[present.image_occurrence_id].image_series_uid == (
            f"2.25.{pz.integer('uid', series_2)}"
        )
        assert occ[absent.image_occurrence_id].image_series_uid == (
            f"2.25.{pz.integer('uid', '1.2.40.1.1')}"
        )
        assert occ[present.image_occurrence_id].image_study_uid == (
            f"2.25.{pz.integer('uid', '1.2.40.0')}"
        )
        for row in (present, absent):
            assert row.image_feature_event_field_concept_id == MEASUREMENT_FIELD
            assert row.alg_system == "nodule-net@1.2.0"
            assert row.alg_datetime is not None
        assert probs[present.image_feature_event_id].value_as_number == 0.91
        assert probs[present.image_feature_event_id].measurement_source_value == NODULE
        assert probs[present.image_feature_event_id].value_source_value == "52101004"
        assert probs[absent.image_feature_event_id].value_as_number == 0.12
        assert probs[absent.image_feature_event_id].value_source_value == "2667000"
        assert len(probs) == 2

        with store.unit() as unit:  # model re-run: new probability; the other finding retracted
            unit.update(finding("pat-0", 0.35, series_2))
            unit.delete("Observation", "ai-pat-1")
        etl.run()
        after = _features(etl)
        assert [r.person_id for r in after] == [pz.person_id("pat-0")]
        with etl.cdw.connect() as conn:
            left = list(
                conn.execute(
                    select(measurement).where(measurement.c.measurement_type_concept_id == 32882)
                )
            )
        assert [r.value_as_number for r in left] == [0.35]
        assert left[0].value_source_value == "2667000"
        assert after[0].image_feature_event_id == left[0].measurement_id
    finally:
        store.close()
        etl.close()


def test_cdw_ai_finding_without_study_is_an_error(database_url: str, pz: Pseudonymizer) -> None:
    write_cohort(database_url, 1)
    bad = finding("pat-0", 0.5, None)
    del bad["derivedFrom"]
    store = SqlStore(database_url)
    etl = Etl(database_url, database_url, pz, batch_size=7, overlap_us=0)
    try:
        with store.unit() as unit:
            unit.update(bad)
        summary = etl.run()
        assert [source for source, _ in summary.errors] == ["Observation/ai-pat-0"]
        assert "derivedFrom" in summary.errors[0][1]
        assert _features(etl) == []
    finally:
        store.close()
        etl.close()
