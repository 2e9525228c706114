"""Benchmark of the AI models: one section per model family (`--part tabular|imaging|all`).

Named ai_models.py, not models.py: a script's folder comes first on sys.path, so a bench/models.py
would shadow the project's `models` package for every other script in bench/.

Tabular (the oncology-risk LightGBM model): per single patient, in interleaved rounds,
- floor       LightGBM's raw predict on the prebuilt feature row (`Booster.predict`, 1 thread);
- predict     row -> vector -> raw predict -> calibration (`RiskModel.risk`);
- explain     `pred_contrib` -> top-3 named drivers (`RiskModel.explain`);
- inference   predict + explain: what the hook runs once the features exist (goal p99 <= 5 ms);
- features    the patient's FHIR record -> CDW-frame feature row (`features_from_fhir`);
- service     the whole `oncology-risk` evaluate on prefetched data: features, too-little-data
              check, score, explanation, card (no HTTP, no prefetch fetching);
then the model card's test metrics beside the Bayes-optimal ceilings on the same test set.

The model is the promoted one in CDSS_MODELS_DIR; without one, a model is trained on a synthetic
cohort of --train patients into a temporary registry (said so in the output).

Imaging: a section is added by the imaging model's work (`imaging()` below).

    .venv/bin/python bench/ai_models.py --part tabular [--patients 200 --rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cds_hooks.config import ClinicalOptions
from cds_hooks.registry import HookData, ServiceOptions
from cds_hooks.request import HookRequest
from cds_hooks.services import oncology_risk
from cdw.config import DEV_KEY
from cdw.features_fhir import features_from_fhir
from cdw.pseudonym import Pseudonymizer
from models.registry import ModelRegistry, ModelSettings, ModelVersion
from models.tabular import MODEL_NAME, cohort
from models.tabular.predictor import RiskModel
from models.tabular.synthetic import patient_record
from models.tabular.train import TrainConfig, save, train
from simulators.cohort.model import CohortGenerator


def _pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1000, q))


def _model(train_n: int) -> ModelVersion:
    version = ModelRegistry(ModelSettings().dir).promoted(MODEL_NAME)
    if version is not None:
        print(f"model: {version.name} v{version.version} from {version.path}")
        return version
    root = Path(tempfile.mkdtemp(prefix="bench-models-"))
    print(f"no promoted {MODEL_NAME} in {ModelSettings().dir}: training on {train_n} synthetic "
          f"patients into {root} (train one with `cdss train risk` to bench it)")  # fmt: skip
    data = cohort.synthetic(train_n, 1, Pseudonymizer(DEV_KEY))
    return save(ModelRegistry(root), train(data, TrainConfig(bootstrap=200)), promote=True)


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": r} for r in resources]}  # fmt: skip


def _hook_data(record: list[dict[str, Any]], pid: str, now: datetime) -> HookData:
    by_key: dict[str, list[dict[str, Any]]] = {k: [] for k in oncology_risk.PREFETCH}
    for r in record:
        kind = r["resourceType"]
        if kind == "Patient":
            continue
        if kind == "Observation":
            lab = r["category"][0]["coding"][0]["code"] == "laboratory"
            by_key["labs" if lab else "smoking"].append(r)
        else:
            by_key["conditions" if kind == "Condition" else "studies"].append(r)
    prefetch: dict[str, Any] = {k: _bundle(v) for k, v in by_key.items()}
    prefetch["patient"] = record[0]
    options = ServiceOptions("http://127.0.0.1:8080/smart/launch", ClinicalOptions())
    return HookData(prefetch=prefetch, now=now, options=options, patient_id=pid)


def tabular(args: argparse.Namespace) -> None:
    version = _model(args.train)
    model = RiskModel(version)
    pz = Pseudonymizer(DEV_KEY)
    service = oncology_risk.OncologyRisk(model, pz=pz, base_url="http://127.0.0.1:8080")
    now = datetime.now(UTC)
    gen = CohortGenerator(99, cohort.SYNTHETIC_INDEX)
    records = [patient_record(gen.patient(i + 1), f"bench-{i}") for i in range(args.patients)]
    rows = [features_from_fhir(r, now.date(), pz) for r in records]
    vectors = [model.vector(r) for r in rows]
    hooks = [_hook_data(rec, f"bench-{i}", now) for i, rec in enumerate(records)]
    requests = [
        HookRequest(
            "patient-view", f"bench-{i}", {"userId": "Practitioner/x", "patientId": f"bench-{i}"}
        )
        for i in range(len(records))
    ]
    steps: dict[str, Callable[[int], object]] = {
        "floor: LightGBM raw predict": lambda i: model.booster.predict(
            vectors[i], raw_score=True, num_threads=1
        ),
        "predict (vector + calibrated)": lambda i: model.risk(rows[i]),
        "explain (pred_contrib, top 3)": lambda i: model.explain(vectors[i]),
        "inference (predict + explain)": lambda i: model.score(rows[i]),
        "features from the FHIR record": lambda i: features_from_fhir(records[i], now.date(), pz),
        "service evaluate (all of it)": lambda i: service.evaluate(requests[i], hooks[i]),
    }
    samples: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():  # warm-up
        for i in range(min(20, len(rows))):
            step(i)
    gc.disable()
    try:
        for _ in range(args.rounds):  # interleaved: every step sees the same machine state
            for name, step in steps.items():
                for i in range(len(rows)):
                    c0, t0 = time.thread_time(), time.perf_counter()
                    step(i)
                    samples[name].append(time.perf_counter() - t0)
                    cpu[name].append(time.thread_time() - c0)
    finally:
        gc.enable()
    floor = _pct(samples["floor: LightGBM raw predict"], 50)
    print(f"\ntabular: {len(rows)} patients x {args.rounds} rounds, single row, 1 thread")
    print("wall: elapsed time; cpu: this thread's CPU time (excludes preemption by other work)")
    print(f"{'step':32} {'p50 ms':>8} {'p99 ms':>8} {'cpu p50':>8} {'cpu p99':>8} {'/ floor':>8}")
    for name, values in samples.items():
        p50, p99 = _pct(values, 50), _pct(values, 99)
        c50, c99 = _pct(cpu[name], 50), _pct(cpu[name], 99)
        print(f"{name:32} {p50:8.3f} {p99:8.3f} {c50:8.3f} {c99:8.3f} {p50 / floor:7.1f}x")
    key = "inference (predict + explain)"
    p99, c99 = _pct(samples[key], 99), _pct(cpu[key], 99)
    verdict = "met" if p99 <= 5 else "NOT met (compare the floor's own p99: machine noise)"
    print(
        f"inference in the hook: p99 {p99:.3f} ms wall, {c99:.3f} ms cpu (goal <= 5 ms): {verdict}"
    )
    _card_metrics(version)


def _ci(block: dict[str, float]) -> str:
    return f"{block['value']:.3f} [{block['ci_low']:.3f}, {block['ci_high']:.3f}]"


def _card_metrics(version: ModelVersion) -> None:
    m = version.card["metrics"]
    print(f"\nmodel card v{version.version}: test set "
          f"{m['test']['n']} patients, {m['test']['positives']} cancers")  # fmt: skip
    print(f"{'':28} {'AUROC':>22} {'AUPRC':>22} {'ECE':>22}")
    blocks = (
        ("model", m["test"]),
        ("ceiling: full information", m["ceiling"]["full"]),
        ("ceiling: tabular record", m["ceiling"]["observable"]),
    )
    for label, block in blocks:
        print(f"{label:28} {_ci(block['auroc']):>22} {_ci(block['auprc']):>22} "
              f"{_ci(block['ece']):>22}")  # fmt: skip
    ratio = m["auroc_ratio"]
    print(f"AUROC / full ceiling {_ci(ratio['to_full_ceiling'])}; "
          f"/ tabular ceiling {_ci(ratio['to_observable_ceiling'])} (goal >= 0.95); "
          f"ECE {m['test']['ece']['value']:.3f} (goal <= 0.03)")  # fmt: skip


def imaging(args: argparse.Namespace) -> None:
    """Imaging section: per-study pipeline time (fetch / volume / infer / write) against the
    network's forward pass (bench/_models_imaging.py)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    from _models_imaging import run

    run(args)


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "tabular": tabular,
    "imaging": imaging,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--part", choices=[*SECTIONS, "all"], default="all")
    parser.add_argument("--patients", type=int, default=200, help="tabular: patients timed")
    parser.add_argument("--rounds", type=int, default=5, help="tabular: interleaved rounds")
    parser.add_argument("--train", type=int, default=2000, help="tabular: cohort if untrained")
    parser.add_argument("--studies", type=int, default=6, help="imaging: CT studies timed")
    args = parser.parse_args()
    for name, section in SECTIONS.items():
        if args.part in (name, "all"):
            section(args)


if __name__ == "__main__":
    main()
