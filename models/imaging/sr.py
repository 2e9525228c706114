"""The finding as a DICOM Structured Report: TID 1500 Measurement Report, built with highdicom.

Why an SR: it is how a PACS and any DICOM viewer show an AI result next to the images, with the
point on the slice, without knowing anything of FHIR. One measurement group per study:
- present: TID 1410 (planar ROI) with a POINT on the slice at the finding's centre, the finding
  type SNOMED CT 786838002 |Nodule of lung|, a qualitative evaluation Present and the
  probability as a measurement (UCUM "1");
- absent: TID 1501 (no region), the same finding type with Absent and the probability.
The observer is the model as a device (its name and version). UIDs derive from the study and the
model version, so a re-run produces the same instance (the PACS keeps one copy).
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from models.imaging.infer import Finding

PRIVATE_SCHEME = "99CDSSAI"
FINDING = hd.sr.CodedConcept("786838002", "SCT", "Nodule of lung")
PROBABILITY = hd.sr.CodedConcept("probability", PRIVATE_SCHEME, "Probability of pulmonary nodule")
NO_UNITS = hd.sr.CodedConcept("1", "UCUM", "no units")
PRESENT = hd.sr.CodedConcept("52101004", "SCT", "Present")
ABSENT = hd.sr.CodedConcept("2667000", "SCT", "Absent")
CT_CHEST = hd.sr.CodedConcept("24627-2", "LN", "CT Chest")
SR_SERIES_NUMBER = 9901


def sr_uids(study_uid: str, model: str) -> tuple[str, str]:
    """(series, SOP instance) UIDs of the SR for this study and model version."""
    series = generate_uid(entropy_srcs=["cdss-ai-sr", study_uid, model, "series"])
    return series, generate_uid(entropy_srcs=["cdss-ai-sr", study_uid, model, "instance"])


def _group(
    finding: Finding, source: Dataset | None
) -> (
    hd.sr.MeasurementsAndQualitativeEvaluations
    | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
):
    tracking = hd.sr.TrackingIdentifier(
        uid=generate_uid(entropy_srcs=["cdss-ai-sr", finding.series_uid, finding.model, "track"]),
        identifier="AI nodule finding",
    )
    probability = hd.sr.Measurement(
        name=PROBABILITY, value=round(finding.probability, 4), unit=NO_UNITS
    )
    evaluation = hd.sr.QualitativeEvaluation(
        name=FINDING, value=PRESENT if finding.present else ABSENT
    )
    if finding.present and source is not None:
        region = hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POINT,
            graphic_data=np.array(
                [[float(finding.pixel_column or 0) + 0.5, float(finding.pixel_row or 0) + 0.5]]
            ),
            source_image=hd.sr.SourceImageForRegion(
                referenced_sop_class_uid=source.SOPClassUID,
                referenced_sop_instance_uid=source.SOPInstanceUID,
            ),
        )
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking,
            referenced_region=region,
            finding_type=FINDING,
            measurements=[probability],
            qualitative_evaluations=[evaluation],
        )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking,
        finding_type=FINDING,
        measurements=[probability],
        qualitative_evaluations=[evaluation],
    )


REFERENCE_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")


def evidence(datasets: Sequence[Dataset]) -> list[Dataset]:
    """What `measurement_report` needs of the analysed series: the first instance's attributes
    (highdicom copies the patient, study and equipment modules from it) and only the four
    reference UIDs of the others (one Evidence Sequence item each), never pixel data. Copying
    every instance whole cost more than the STOW-RS."""
    if not datasets:
        return []
    first = Dataset()
    for element in datasets[0]:
        if element.keyword != "PixelData":
            first.add(element)
    refs = [first]
    for ds in datasets[1:]:
        ref = Dataset()
        for keyword in REFERENCE_KEYWORDS:
            setattr(ref, keyword, getattr(ds, keyword))
        refs.append(ref)
    return refs


def measurement_report(finding: Finding, evidence: Sequence[Dataset]) -> hd.sr.Comprehensive3DSR:
    """The SR instance for `finding`; `evidence` are the source series' instances (their
    patient, study and SOP attributes, as `evidence()` gives them; pixel data is not needed)."""
    if not evidence:
        raise ValueError("an SR needs the source instances as evidence")
    name, _, version = finding.model.partition("@")
    source = next((ds for ds in evidence if ds.SOPInstanceUID == finding.sop_uid), None)
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=["cdss-ai-device", finding.model]),
            name=name,
            model_name=f"{name} v{version}",
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=CT_CHEST,
        imaging_measurements=[_group(finding, source)],
    )
    study_uid = str(evidence[0].StudyInstanceUID)
    series_uid, sop_uid = sr_uids(study_uid, finding.model)
    return hd.sr.Comprehensive3DSR(
        evidence=list(evidence),
        content=report,
        series_instance_uid=series_uid,
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=sop_uid,
        instance_number=1,
        manufacturer="cdss",
        series_description=f"AI nodule finding ({name} v{version})",
        is_complete=True,
        is_final=False,
        is_verified=False,
    )
