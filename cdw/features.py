"""Named, versioned feature sets for the models: one definition, two data paths.

Training reads the CDW (`cdw.features_sql`, aggregates in SQL); inference reads the FHIR
resources of one patient (a hook's prefetch), maps them with the ETL's own mapper into the
same pseudonymised frame (the hub holds the key) and aggregates them here in Python. Both
paths end in `_assemble` below, fed the same intermediate aggregates, so the feature logic
exists once and the two cannot drift; a test proves equality on the same patient.

Features are relative to an index date (CDW frame): only records on or before it count.
No pandas: rows are plain dicts (`FeatureRow.values`), `to_matrix` gives a numpy array.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from adapters.senaite.loinc import load_table

NAME = "person-at-index"
VERSION = "3"  # 2: lab_<code>_delta added; 3: imaging-AI finding features (ai_*)
SMOKING_LOINC = "72166-2"
SMOKING = {
    "449868002": "current", "428041000124106": "current", "77176002": "current",
    "428071000124103": "current", "428061000124105": "current",
    "8517006": "former", "266919005": "never",
}  # fmt: skip
# Standard concept ids (data/vocabulary.csv); no descendant expansion (no concept_ancestor).
CONDITIONS: dict[str, frozenset[int]] = {
    "copd": frozenset({255573}),
    "hypertension": frozenset({320128}),
    "t2dm": frozenset({201826}),
    "ckd": frozenset({46271022, 443614, 443601, 443597, 443612, 443611, 193782}),
    "lung_cancer": frozenset({443388, 258369, 4115276, 4110591}),
}
DAYS_PER_YEAR = 365.25
# The imaging AI's finding as the CDW holds it (cdw.mapping_ai, docs/ai-findings.md): a
# measurement of SNOMED CT 786838002 |Nodule of lung| whose type is "derived by an algorithm",
# the calibrated probability in value_as_number, Present (52101004) / Absent in the value.
AI_FINDING_CODE = "786838002"
AI_PRESENT_CODE = "52101004"
AI_TYPE_CONCEPT = 32882
AI_FEATURES = ("ai_nodule_probability_max", "ai_nodule_present_n")


def lab_codes() -> tuple[str, ...]:
    """Every LOINC code of the adapters' lab table (one feature group per code: units of
    one code agree, units of one analyte across codes do not)."""
    table = load_table()
    return tuple(sorted({row.loinc for kw in table.keywords() for row in table.rows(kw)}))


def feature_names() -> list[str]:
    names = ["age", "sex_male", "smoking_current", "smoking_former", "smoking_never"]
    for code in lab_codes():
        names += [f"lab_{code}_latest", f"lab_{code}_slope_per_year", f"lab_{code}_n"]
        names.append(f"lab_{code}_delta")
    names.append("imaging_studies")
    names += list(AI_FEATURES)
    names += [f"prior_{c}" for c in CONDITIONS]
    return names


@dataclass(frozen=True, slots=True)
class LabStats:
    """Per LOINC code: count and the sums a least-squares slope needs (x in years from the
    index date), plus the latest value."""

    n: int
    sx: float
    sy: float
    sxy: float
    sxx: float
    latest: float | None


@dataclass(frozen=True, slots=True)
class AiStats:
    """The imaging AI's nodule findings before the index date: how many, how many reported
    Present, and the highest calibrated probability (None without a finding)."""

    n: int = 0
    present: int = 0
    max_probability: float | None = None


@dataclass(frozen=True, slots=True)
class Inputs:
    year_of_birth: int | None
    gender_concept_id: int | None
    smoking_code: str | None
    labs: dict[str, LabStats]
    imaging_studies: int
    condition_concepts: frozenset[int]
    ai: AiStats = AiStats()


@dataclass(frozen=True)
class FeatureRow:
    name: str
    version: str
    person_id: int
    index_date: date
    values: dict[str, float | int | None]
    fingerprint: str


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 6)


def slope(stats: LabStats) -> float | None:
    denominator = stats.n * stats.sxx - stats.sx * stats.sx
    if stats.n < 2 or abs(denominator) < 1e-12:
        return None
    return (stats.n * stats.sxy - stats.sx * stats.sy) / denominator


def delta(stats: LabStats) -> float | None:
    """Latest value minus the mean of the earlier ones: the change a new disease adds to a
    patient's own baseline (the trees cannot subtract two features themselves)."""
    if stats.n < 2 or stats.latest is None:
        return None
    return stats.latest - (stats.sy - stats.latest) / (stats.n - 1)


def fingerprint(values: dict[str, Any], person_id: int, index_date: date) -> str:
    body = orjson.dumps(
        {"set": NAME, "v": VERSION, "p": person_id, "i": index_date.isoformat(), "x": values},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(body).hexdigest()


def assemble(person_id: int, index_date: date, inputs: Inputs) -> FeatureRow:
    """The single place where aggregates become features."""
    group = SMOKING.get(inputs.smoking_code or "")
    values: dict[str, float | int | None] = {
        "age": index_date.year - inputs.year_of_birth if inputs.year_of_birth else None,
        "sex_male": {8507: 1, 8532: 0}.get(inputs.gender_concept_id or 0),
        "smoking_current": None if group is None else int(group == "current"),
        "smoking_former": None if group is None else int(group == "former"),
        "smoking_never": None if group is None else int(group == "never"),
    }
    for code in lab_codes():
        stats = inputs.labs.get(code)
        values[f"lab_{code}_latest"] = _round(stats.latest) if stats else None
        values[f"lab_{code}_slope_per_year"] = _round(slope(stats)) if stats else None
        values[f"lab_{code}_n"] = stats.n if stats else 0
        values[f"lab_{code}_delta"] = _round(delta(stats)) if stats else None
    values["imaging_studies"] = inputs.imaging_studies
    # No AI finding (no CT, or not analysed yet) is missing, not "probability 0": LightGBM
    # learns its own branch for NaN, and an unread CT says nothing about a nodule.
    ai = inputs.ai
    values["ai_nodule_probability_max"] = _round(ai.max_probability) if ai.n else None
    values["ai_nodule_present_n"] = ai.present if ai.n else None
    for name, concepts in CONDITIONS.items():
        values[f"prior_{name}"] = int(bool(concepts & inputs.condition_concepts))
    return FeatureRow(
        NAME, VERSION, person_id, index_date, values, fingerprint(values, person_id, index_date)
    )


def to_matrix(rows: Sequence[FeatureRow]) -> tuple[list[str], NDArray[np.float64]]:
    """Feature names and a (persons x features) float matrix, NaN where missing."""
    names = feature_names()
    matrix = np.full((len(rows), len(names)), np.nan)
    for i, row in enumerate(rows):
        for j, name in enumerate(names):
            value = row.values.get(name)
            if value is not None:
                matrix[i, j] = float(value)
    return names, matrix


def set_fingerprint(rows: Iterable[FeatureRow]) -> str:
    """One hash over a training set's rows (order-independent)."""
    digest = hashlib.sha256(f"{NAME}:{VERSION}".encode())
    for fp in sorted(r.fingerprint for r in rows):
        digest.update(fp.encode())
    return digest.hexdigest()
