"""The cohort's ground truth, kept beside the sources so the models can be measured against it.

The sources only hold what a hospital would record; whether a patient truly develops cancer,
and the exact posterior risk, live here (`ground_truth.csv`), keyed by MRN.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from simulators.cohort.ct import nodule_voxel, uids
from simulators.cohort.model import SyntheticPatient

COLUMNS = (
    "mrn",
    "sex",
    "birth_date",
    "smoking",
    "pack_years",
    "conditions",
    "cancer",
    "diagnosis_date",
    "prior_risk",
    "true_risk",
    "index_date",
    "study_uid",
    "nodule",
    "nodule_diameter_mm",
    "nodule_upper_lobe",
    "nodule_voxel",
)


def truth_row(p: SyntheticPatient, seed: int, index_date: date) -> dict[str, Any]:
    nodule = p.ct.nodule if p.ct else None
    voxel = nodule_voxel(p.ct) if p.ct else None
    return {
        "mrn": p.mrn,
        "sex": p.sex,
        "birth_date": p.birth_date.isoformat(),
        "smoking": p.smoking,
        "pack_years": p.pack_years,
        "conditions": ";".join(p.conditions),
        "cancer": int(p.cancer),
        "diagnosis_date": p.diagnosis_date.isoformat() if p.diagnosis_date else "",
        "prior_risk": f"{p.prior_risk:.6f}",
        "true_risk": f"{p.true_risk:.6f}",
        "index_date": index_date.isoformat(),
        "study_uid": uids(seed, p.mrn)[0] if p.ct else "",
        "nodule": int(nodule is not None),
        "nodule_diameter_mm": nodule.diameter_mm if nodule else "",
        "nodule_upper_lobe": int(nodule.upper_lobe) if nodule else "",
        "nodule_voxel": " ".join(map(str, voxel)) if voxel else "",
    }


def write_truth(
    path: Path, patients: Iterable[SyntheticPatient], seed: int, index_date: date
) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for p in patients:
            writer.writerow(truth_row(p, seed, index_date))
            n += 1
    return n


def read_truth(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))
