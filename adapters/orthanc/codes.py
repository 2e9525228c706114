"""Terminology the ImagingStudy mapper needs: DICOM defined terms -> SNOMED CT and code systems.

Body Part Examined (0018,0015) -> SNOMED CT follows DICOM PS3.16 Annex L (Table L-1, the
correspondence of Body Part Examined defined terms to CID 4031 "Common Anatomic Regions"), with the
current CID 4031 concept ids: since CP-1962 and related CPs, CHEST is 816094009 (formerly 43799004 /
51185008), ABDOMEN 818981001 (formerly 113345001), PELVIS 816092008 (formerly 12921003),
ABDOMENPELVIS 818982008. Checked against the CID 4031 value set of the DICOM terminology FHIR IG
(bvdh/dicom-terminology-in-fhir, CID 4031 version 20250709), dcmtk's Table L-1 map
(dcmsr/cmr/cid4031e.cc) and PixelMed's anatomy table (David Clunie, com.pixelmed.anatproc); the
organ terms (BRAIN, KIDNEY, LIVER, LUNG, PANCREAS) come from PixelMed's table of Annex L terms.
Only the common terms are shipped; an unknown term is kept as display text and reported as a
deviation, never guessed.

Laterality (0020,0060) R/L -> SNOMED CT 24028007 Right / 7771000 Left (DICOM CID 244).
"""

from __future__ import annotations

from typing import Any

from adapters.orthanc.payloads import DicomJson, text

SNOMED = "http://snomed.info/sct"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
LOINC = "http://loinc.org"

BODY_PART_SNOMED: dict[str, tuple[str, str]] = {
    "ABDOMEN": ("818981001", "Abdomen"),
    "ABDOMENPELVIS": ("818982008", "Abdomen and Pelvis"),
    "ANKLE": ("70258002", "Ankle joint"),
    "BRAIN": ("12738006", "Brain"),
    "BREAST": ("76752008", "Breast"),
    "CHEST": ("816094009", "Chest"),
    "CHESTABDOMEN": ("416550000", "Chest and Abdomen"),
    "CHESTABDPELVIS": ("416775004", "Chest, Abdomen and Pelvis"),
    "CLAVICLE": ("51299004", "Clavicle"),
    "COLON": ("71854001", "Colon"),
    "CSPINE": ("122494005", "Cervical spine"),
    "ELBOW": ("16953009", "Elbow joint"),
    "EXTREMITY": ("66019005", "Extremity"),
    "FEMUR": ("71341001", "Femur"),
    "FOOT": ("56459004", "Foot"),
    "FOREARM": ("14975008", "Forearm"),
    "HAND": ("85562004", "Hand"),
    "HEAD": ("69536005", "Head"),
    "HEADNECK": ("774007", "Head and Neck"),
    "HEART": ("80891009", "Heart"),
    "HIP": ("24136001", "Hip joint"),
    "HUMERUS": ("85050009", "Humerus"),
    "KIDNEY": ("64033007", "Kidney"),
    "KNEE": ("72696002", "Knee"),
    "LIVER": ("10200004", "Liver"),
    "LSPINE": ("122496007", "Lumbar spine"),
    "LUNG": ("39607008", "Lung"),
    "NECK": ("45048000", "Neck"),
    "NECKCHEST": ("417437006", "Neck and Chest"),
    "NECKCHESTABDOMEN": ("416152001", "Neck, Chest and Abdomen"),
    "NECKCHESTABDPELV": ("416319003", "Neck, Chest, Abdomen and Pelvis"),
    "PANCREAS": ("15776009", "Pancreas"),
    "PELVIS": ("816092008", "Pelvis"),
    "PROSTATE": ("41216001", "Prostate"),
    "SHOULDER": ("16982005", "Shoulder"),
    "SKULL": ("89546000", "Skull"),
    "SPINE": ("421060004", "Spine"),
    "TSPINE": ("122495006", "Thoracic spine"),
    "WHOLEBODY": ("38266002", "Entire body"),
    "WRIST": ("74670003", "Wrist joint"),
}

LATERALITY_SNOMED: dict[str, tuple[str, str]] = {
    "R": ("24028007", "Right"),
    "L": ("7771000", "Left"),
}

CODING_SCHEMES: dict[str, str] = {
    "DCM": DCM,
    "LN": LOINC,
    "SCT": SNOMED,
    "SRT": "http://snomed.info/srt",  # legacy SNOMED RT ids (T-xxxxx): not SNOMED CT concept ids
    "RADLEX": "http://radlex.org",  # THO NamingSystem RadLex
    "C4": "http://www.ama-assn.org/go/cpt",
    "CPT": "http://www.ama-assn.org/go/cpt",
}
"""Coding Scheme Designator (0008,0102) -> FHIR system, for ProcedureCodeSequence items."""


def body_site(term: str | None) -> tuple[dict[str, str] | None, str | None]:
    """BodyPartExamined -> (series.bodySite Coding, problem). Matching ignores case and separators
    (some modalities send "Chest " or "HEAD_NECK"); an unknown term is kept as display only."""
    if term is None:
        return None, None
    found = BODY_PART_SNOMED.get("".join(c for c in term.upper() if c.isalnum()))
    if found is None:
        return {"display": term}, f"BodyPartExamined {term!r} has no SNOMED CT mapping"
    return {"system": SNOMED, "code": found[0], "display": found[1]}, None


def laterality(value: str | None) -> tuple[dict[str, str] | None, str | None]:
    """Laterality (0020,0060) -> (series.laterality Coding, problem); only R and L are defined."""
    if value is None:
        return None, None
    found = LATERALITY_SNOMED.get(value.upper())
    if found is None:
        return None, f"Laterality {value!r} is not R or L; left out"
    return {"system": SNOMED, "code": found[0], "display": found[1]}, None


def code_concept(item: DicomJson) -> dict[str, Any] | None:
    """A Code Sequence item (CodeValue, CodingSchemeDesignator, CodeMeaning) as CodeableConcept."""
    code = text(item, "CodeValue") or text(item, "LongCodeValue") or text(item, "URNCodeValue")
    scheme, meaning = text(item, "CodingSchemeDesignator"), text(item, "CodeMeaning")
    if code is None and meaning is None:
        return None
    concept: dict[str, Any] = {}
    if code is not None:
        coding: dict[str, Any] = {"code": code}
        system = CODING_SCHEMES.get((scheme or "").upper())
        if system is not None:
            coding["system"] = system
        if meaning is not None:
            coding["display"] = meaning
        concept["coding"] = [coding]
    if meaning is not None:
        concept["text"] = meaning
    return concept
