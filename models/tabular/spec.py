"""Clinical names and units of the CDW feature set (`cdw.features`), for cards and model cards.

The feature code names features by LOINC code (`lab_2160-0_latest`); people read
"Creatinine (latest), mg/dL". Lab names and units come from the same LOINC table the SENAITE
adapter maps with, so a unit shown here is the unit the value was stored in.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from adapters.senaite.loinc import load_table
from cdw.features import CONDITIONS, feature_names

_PRIOR = {
    "copd": "COPD",
    "hypertension": "Hypertension",
    "t2dm": "Type 2 diabetes",
    "ckd": "Chronic kidney disease",
    "lung_cancer": "Prior lung cancer",
}
_FIXED = {
    "age": ("Age at index", "years"),
    "sex_male": ("Male sex", "1 = male, 0 = female"),
    "smoking_current": ("Current smoker", "1 = yes"),
    "smoking_former": ("Former smoker", "1 = yes"),
    "smoking_never": ("Never smoker", "1 = yes"),
    "imaging_studies": ("Imaging studies on record", "count"),
    "ai_nodule_probability_max": (
        "Imaging AI: highest pulmonary-nodule probability",
        "probability 0-1 (UCUM 1); missing without an AI-read CT",
    ),
    "ai_nodule_present_n": (
        "Imaging AI: findings reported as nodule present",
        "count; missing without an AI-read CT",
    ),
}
_LAB_PART = {
    "latest": ("latest", "{unit}"),
    "slope_per_year": ("trend", "{unit}/year"),
    "n": ("results on record", "count"),
    "delta": ("change from earlier mean", "{unit}"),
}


@dataclass(frozen=True, slots=True)
class FeatureInfo:
    name: str
    label: str
    unit: str


def _short(display: str) -> str:
    """'Hemoglobin [Mass/volume] in Blood' -> 'Hemoglobin'."""
    return display.split(" [", 1)[0].split(".", 1)[0].strip()


@cache
def _labs() -> dict[str, tuple[str, str]]:
    table = load_table()
    return {
        row.loinc: (_short(row.display), row.ucum)
        for kw in sorted(table.keywords())
        for row in table.rows(kw)
    }


def info(name: str) -> FeatureInfo:
    """Label and unit of one feature; KeyError for a name outside the feature set."""
    if name in _FIXED:
        label, unit = _FIXED[name]
        return FeatureInfo(name, label, unit)
    if name.startswith("prior_") and name[6:] in CONDITIONS:
        return FeatureInfo(name, _PRIOR.get(name[6:], name[6:]), "1 = on record")
    if name.startswith("lab_"):
        code, _, part = name[4:].partition("_")
        if code in _labs() and part in _LAB_PART:
            display, ucum = _labs()[code]
            what, unit = _LAB_PART[part]
            return FeatureInfo(name, f"{display} ({what})", unit.format(unit=ucum))
    raise KeyError(f"unknown feature {name!r}")


def describe_all() -> list[dict[str, str]]:
    """The feature list of the model card: name, label, unit, in model column order."""
    return [
        {"name": f.name, "label": f.label, "unit": f.unit}
        for f in (info(n) for n in feature_names())
    ]


def format_value(name: str, value: float | None) -> str:
    """A feature value as a person reads it ('1.4 mg/dL', 'yes', 'not recorded')."""
    if value is None or value != value:  # NaN: missing
        return "not recorded"
    feature = info(name)
    if feature.unit.startswith("1 = "):
        return "yes" if value >= 0.5 else "no"
    if name == "ai_nodule_probability_max":
        return f"{value:.2f}"
    if feature.unit.startswith("count") or name == "age":
        return f"{int(value)}" + (" years" if name == "age" else "")
    return f"{value:.3g} {feature.unit}"
