"""Benchmark of the CDW ETL (facade store -> OMOP), against a bulk-insert floor in the same run.

For N synthetic patients (default 1,000 and 10,000), about 16 FHIR resources each shaped like
the sync's output (Patient, Encounter, Conditions, MedicationRequest, smoking status, a BP
panel, 8 lab results, ServiceRequest, Specimen, ImagingStudy) are written straight into the
facade's store (`SqlStore.unit().update`, not a timed figure). Then:

* system: `Etl.run()` from an empty CDW: read the store by watermark, parse, pseudonymise,
  map, delete-then-insert with bookkeeping, observation periods -- CDW rows/s;
* floor: the same CDW rows (read back from the CDW) bulk-inserted with `executemany`, one
  transaction per batch, into a fresh CDW schema in the same kind of database -- rows/s.

Goals (issue 6): ratio system/floor >= 0.2, and time per patient at 10k within 1.5x of 1k.
The cohort is generated, not seeded through the simulators and synced (that takes the source
simulators and Orthanc; the resource shapes are those of tests/cdw/conftest.py).

    .venv/bin/python bench/cdw_etl.py --backend sqlite --patients 1000 10000
    .venv/bin/python bench/cdw_etl.py --backend postgres --patients 1000

Progress goes to stderr, JSON figures to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from cdw.etl import Etl, cdw_engine, data_tables
from cdw.migrations import upgrade
from cdw.pseudonym import Pseudonymizer
from cdw.schema import metadata
from fhir_facade.store.sql_store import SqlStore

LOINC = "http://loinc.org"
LABS = [("2160-0", "mg/dL", 1.0), ("718-7", "g/dL", 13.0), ("2345-7", "mg/dL", 95.0),
        ("1988-5", "mg/L", 3.0)]  # fmt: skip
BATCH = 500


def _cc(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def patient(i: int) -> list[dict[str, Any]]:
    pid, ref = f"p{i}", {"reference": f"Patient/p{i}"}
    obs = {"resourceType": "Observation", "status": "final", "subject": ref}
    lab = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory"}]}]  # fmt: skip
    out: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": pid, "gender": "male" if i % 2 else "female",
         "birthDate": f"{1940 + i % 50}-0{1 + i % 9}-1{i % 9}",
         "name": [{"family": f"F{i}", "given": [f"G{i}"]}]},
        {"resourceType": "Encounter", "id": f"e{i}", "status": "finished", "class": {"code": "AMB"},
         "subject": ref, "period": {"start": "2024-03-01T09:00:00Z"}},
        {"resourceType": "Condition", "id": f"c{i}", "subject": ref,
         "code": _cc("http://hl7.org/fhir/sid/icd-10-cm", ["I10", "E11.9", "J44.9"][i % 3]),
         "onsetDateTime": "2019-05-01T00:00:00Z"},
        {"resourceType": "MedicationRequest", "id": f"m{i}", "status": "active", "intent": "order",
         "subject": ref, "authoredOn": "2019-06-01T00:00:00Z",
         "medicationCodeableConcept": _cc("http://www.nlm.nih.gov/research/umls/rxnorm", "860975")},
        {**obs, "id": f"s{i}", "code": _cc(LOINC, "72166-2"), "effectiveDateTime": "2023-01-01",
         "category": [_cc("http://terminology.hl7.org/CodeSystem/observation-category",
                          "social-history")],
         "valueCodeableConcept": _cc("http://snomed.info/sct", "8517006")},
        {"resourceType": "ServiceRequest", "id": f"r{i}", "status": "completed", "intent": "order",
         "subject": ref, "authoredOn": "2024-02-01T08:00:00Z", "code": _cc(LOINC, "2160-0")},
        {"resourceType": "Specimen", "id": f"sp{i}", "subject": ref,
         "type": _cc("http://snomed.info/sct", "119364003"),
         "collection": {"collectedDateTime": "2024-02-01"}},
        {"resourceType": "ImagingStudy", "id": f"i{i}", "status": "available", "subject": ref,
         "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:1.2.3.{i}"}],
         "started": "2024-01-15T10:15:00Z",
         "series": [{"uid": f"1.2.3.{i}.1", "modality": {
             "system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}}]},
    ]  # fmt: skip
    for n in range(8):
        code, unit, base = LABS[n % len(LABS)]
        out.append({**obs, "id": f"l{i}-{n}", "category": lab, "code": _cc(LOINC, code),
                    "effectiveDateTime": f"202{n % 5}-0{1 + n}-10T08:00:00Z",
                    "valueQuantity": {"value": base + n / 10, "unit": unit, "code": unit,
                                      "system": "http://unitsofmeasure.org"}})  # fmt: skip
    return out


def load_store(url: str, patients: int) -> int:
    store = SqlStore(url)
    written = 0
    try:
        for start in range(0, patients, 200):
            with store.unit() as unit:
                for i in range(start, min(patients, start + 200)):
                    for resource in patient(i):
                        unit.update(resource)
                        written += 1
            print(f"  store: {min(patients, start + 200)}/{patients} patients", file=sys.stderr)
    finally:
        store.close()
    return written


def floor(cdw_url: str, floor_url: str) -> tuple[int, float]:
    """Bulk-insert the CDW's rows into a fresh schema: (rows, seconds)."""
    source, target = cdw_engine(cdw_url), cdw_engine(floor_url)
    try:
        upgrade(target)
        with source.connect() as conn:
            tables = {n: [dict(r._mapping) for r in conn.execute(select(metadata.tables[n]))]
                      for n in data_tables()}  # fmt: skip
        rows = sum(len(v) for v in tables.values())
        began = time.perf_counter()
        for name, found in tables.items():
            for start in range(0, len(found), BATCH * 4):
                with target.begin() as conn:
                    conn.execute(insert(metadata.tables[name]), found[start : start + BATCH * 4])
        return rows, time.perf_counter() - began
    finally:
        source.dispose()
        target.dispose()


@contextlib.contextmanager
def databases(backend: str, tmp: Path) -> Iterator[tuple[str, str, str]]:
    if backend == "sqlite":
        yield (f"sqlite:///{tmp / 'store.db'}", f"sqlite:///{tmp / 'cdw.db'}",
               f"sqlite:///{tmp / 'floor.db'}")  # fmt: skip
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ is not installed
    from tests.support import postgres

    reason = postgres.available()
    if reason:
        raise SystemExit(f"PostgreSQL unavailable: {reason}")
    with postgres.cluster() as server:
        yield tuple(postgres.create_database(server, n) for n in ("store", "cdw", "floor"))  # type: ignore[misc]


def run(backend: str, patients: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, databases(backend, Path(tmp)) as urls:
        store_url, cdw_url, floor_url = urls
        resources = load_store(store_url, patients)
        etl = Etl(store_url, cdw_url, Pseudonymizer(b"bench-key-0123456789"), batch_size=BATCH)
        try:
            began = time.perf_counter()
            summary = etl.run()
            seconds = time.perf_counter() - began
        finally:
            etl.close()
        # All CDW rows, observation_period included, so both rates count the same rows.
        rows, floor_seconds = floor(cdw_url, floor_url)
        return {
            "patients": patients, "resources": resources, "cdw_rows": rows,
            "etl_seconds": round(seconds, 2), "etl_rows_per_s": round(rows / seconds),
            "etl_resources_per_s": round(resources / seconds),
            "floor_rows_per_s": round(rows / floor_seconds),
            "ratio": round(floor_seconds / seconds, 3),
            "ms_per_patient": round(1000 * seconds / patients, 3), "errors": len(summary.errors),
        }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--patients", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    results = []
    for n in args.patients:
        print(f"{args.backend}: {n} patients", file=sys.stderr)
        results.append(run(args.backend, n))
        print(json.dumps(results[-1]), file=sys.stderr)
    out: dict[str, Any] = {"backend": args.backend, "runs": results, "goal_ratio": 0.2}
    if len(results) >= 2:
        growth = results[-1]["ms_per_patient"] / results[0]["ms_per_patient"]
        out["per_patient_growth"] = round(growth, 3)
        out["growth_goal_met"] = growth <= 1.5
    out["ratio_goal_met"] = all(r["ratio"] >= 0.2 for r in results)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
