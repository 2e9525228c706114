"""The lab set-up the simulator starts with: sample types, analysis services, a specification.

A real SENAITE is configured by the lab before any sample exists; the synthetic cohort only creates
clients, contacts, samples and results through the JSON API, so the set-up it relies on is seeded
here. Keywords are SENAITE-style (short, upper case); units are UCUM codes and the ranges are usual
adult reference intervals (the `warn_*` shoulders stand in for critical limits: a result beyond
them is what the adapter flags LL/HH). The keyword -> LOINC table of the adapter covers the same 18
analytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulators.senaite.store import Obj, Store


@dataclass(frozen=True, slots=True)
class ServiceDef:
    """One AnalysisService and its reference range."""

    keyword: str
    title: str
    unit: str
    category: str
    low: str
    high: str
    warn_low: str = ""
    warn_high: str = ""
    precision: int = 1


@dataclass(frozen=True, slots=True)
class SampleTypeDef:
    title: str
    prefix: str


SAMPLE_TYPES: tuple[SampleTypeDef, ...] = (
    SampleTypeDef("Serum", "SER"),
    SampleTypeDef("Whole blood", "WB"),
    SampleTypeDef("Plasma", "PLA"),
    SampleTypeDef("Urine", "URI"),
)

CATEGORIES = ("Clinical chemistry", "Haematology", "Tumour markers", "Diabetes")

SERVICES: tuple[ServiceDef, ...] = (
    ServiceDef("CREA", "Creatinine", "mg/dL", "Clinical chemistry", "0.6", "1.3", "", "10", 2),
    ServiceDef(
        "EGFR",
        "eGFR (CKD-EPI 2021)",
        "mL/min/{1.73_m2}",
        "Clinical chemistry",
        "60",
        "",
        "15",
        "",
        0,
    ),
    ServiceDef("HGB", "Hemoglobin", "g/dL", "Haematology", "12.0", "17.5", "7.0", "20.0"),
    ServiceDef("WBC", "White blood cells", "10*3/uL", "Haematology", "4.0", "11.0", "2.0", "30.0"),
    ServiceDef("PLT", "Platelets", "10*3/uL", "Haematology", "150", "400", "50", "1000", 0),
    ServiceDef("CRP", "C-reactive protein", "mg/L", "Clinical chemistry", "0", "5"),
    ServiceDef("CEA", "Carcinoembryonic antigen", "ng/mL", "Tumour markers", "0", "5.0"),
    ServiceDef("CA199", "CA 19-9", "[U]/mL", "Tumour markers", "0", "37", precision=0),
    ServiceDef("AFP", "Alpha-fetoprotein", "ng/mL", "Tumour markers", "0", "10"),
    ServiceDef(
        "PSA", "Prostate-specific antigen", "ng/mL", "Tumour markers", "0", "4.0", precision=2
    ),
    ServiceDef(
        "LDH", "Lactate dehydrogenase", "U/L", "Clinical chemistry", "135", "225", precision=0
    ),
    ServiceDef("ALB", "Albumin", "g/dL", "Clinical chemistry", "3.5", "5.0"),
    ServiceDef(
        "ALT", "Alanine aminotransferase", "U/L", "Clinical chemistry", "7", "55", precision=0
    ),
    ServiceDef(
        "AST", "Aspartate aminotransferase", "U/L", "Clinical chemistry", "8", "48", precision=0
    ),
    ServiceDef("GLU", "Glucose", "mg/dL", "Diabetes", "70", "99", "54", "400", 0),
    ServiceDef("HBA1C", "Hemoglobin A1c", "%", "Diabetes", "4.0", "5.6"),
    ServiceDef("K", "Potassium", "mmol/L", "Clinical chemistry", "3.5", "5.1", "2.8", "6.2"),
    ServiceDef("NA", "Sodium", "mmol/L", "Clinical chemistry", "136", "145", "120", "160", 0),
)

DEFAULT_SPECIFICATION_TITLE = "Adult reference ranges"

# Well-known containers: (path below the site, portal_type), as SENAITE 2.x lays them out.
FOLDERS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("clients",), "ClientFolder", "Clients"),
    (("bika_setup",), "BikaSetup", "Setup"),
    (("bika_setup", "bika_sampletypes"), "SampleTypes", "Sample Types"),
    (("bika_setup", "bika_analysiscategories"), "AnalysisCategories", "Analysis Categories"),
    (("bika_setup", "bika_departments"), "Departments", "Lab Departments"),
    (("bika_setup", "bika_analysisservices"), "AnalysisServices", "Analysis Services"),
    (("bika_setup", "bika_analysisspecs"), "AnalysisSpecs", "Analysis Specifications"),
    (("bika_setup", "bika_artemplates"), "ARTemplates", "Sample Templates"),
)


def results_range(service: Obj, d: ServiceDef) -> dict[str, Any]:
    """One ResultsRange record of a specification, shaped as SENAITE 2.x stores it."""
    return {
        "keyword": d.keyword,
        "uid": service.uid,
        "min": d.low,
        "max": d.high,
        "warn_min": d.warn_low,
        "warn_max": d.warn_high,
        "hidemin": "",
        "hidemax": "",
        "rangecomment": "",
        "min_operator": "geq",
        "max_operator": "leq",
    }


def seed_setup(store: Store) -> None:
    """Create the folders and the lab set-up a fresh site needs before samples can be created."""
    for ids, portal_type, title in FOLDERS:
        store.add(store.folder(*ids[:-1]), portal_type, ids[-1], title=title)
    setup = ("bika_setup",)
    department = store.add(
        store.folder(*setup, "bika_departments"),
        "Department",
        "department-1",
        title="Clinical laboratory",
        review_state="active",
    )
    categories = {
        name: store.add(
            store.folder(*setup, "bika_analysiscategories"),
            "AnalysisCategory",
            f"analysiscategory-{n}",
            title=name,
            review_state="active",
            fields={"Department": department.uid},
        )
        for n, name in enumerate(CATEGORIES, start=1)
    }
    for n, st in enumerate(SAMPLE_TYPES, start=1):
        store.add(
            store.folder(*setup, "bika_sampletypes"),
            "SampleType",
            f"sampletype-{n}",
            title=st.title,
            review_state="active",
            fields={
                "Prefix": st.prefix,
                "Hazardous": False,
                "MinimumVolume": "5 mL",
                "RetentionPeriod": {"days": 7, "hours": 0, "minutes": 0},
            },
        )
    ranges = []
    for n, d in enumerate(SERVICES, start=1):
        service = store.add(
            store.folder(*setup, "bika_analysisservices"),
            "AnalysisService",
            f"analysisservice-{n}",
            title=d.title,
            review_state="active",
            fields={
                "Keyword": d.keyword,
                "ShortTitle": d.title,
                "Unit": d.unit,
                "Precision": d.precision,
                "Category": categories[d.category].uid,
                "Department": department.uid,
                "PointOfCapture": "lab",
                "LowerDetectionLimit": "0.0000000",
                "UpperDetectionLimit": "1000000000.0000000",
            },
        )
        ranges.append(results_range(service, d))
    serum = store.of_type("SampleType")[0]
    store.add(
        store.folder(*setup, "bika_analysisspecs"),
        "AnalysisSpec",
        "analysisspec-1",
        title=DEFAULT_SPECIFICATION_TITLE,
        review_state="active",
        fields={"SampleType": serum.uid, "ResultsRange": ranges},
    )
