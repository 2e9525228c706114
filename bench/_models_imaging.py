"""Imaging section of bench/ai_models.py: the pipeline's time per study against the network alone.

Setup: a fresh local Orthanc, a temporary SQLite store, `--studies` CT studies of the synthetic
cohort uploaded and synced (so each has its ImagingStudy), the promoted lung-nodule-ct model of
CDSS_MODELS_DIR (without one, a tiny model is trained into a temporary registry and the output
says so). Then, per study, interleaved in the same run:
- floor     the network's forward pass alone on the study's preprocessed volume (whole volume);
- inferer   MONAI's sliding-window inference on it (what the pipeline's "infer" step runs,
            without preprocessing);
- pipeline  `ImagingPipeline.process`: fetch (ImagingStudy + WADO-RS series) / volume (pydicom)
            / infer (preprocess + sliding window + peak) / write (FHIR unit + SR by STOW-RS).
Goal: pipeline end to end <= 2x the inferer on CPU. Each study is timed ROUNDS times (the
pipeline's writes are idempotent: a re-run updates in place) and its median kept; the figures
are medians over studies, after one warm-up study.

    .venv/bin/python bench/ai_models.py --part imaging [--studies 6]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.orthanc.client import OrthancClient
from adapters.orthanc.local import available, orthanc, wait_for_changes
from adapters.orthanc.source import OrthancSource
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.sync.engine import sync_source
from models.imaging import data
from models.imaging.config import TINY
from models.imaging.infer import MODEL_NAME, Predictor
from models.imaging.train import save, train
from models.imaging.transforms import preprocess
from models.imaging.volume import Volume, build_volume
from models.pipeline import ImagingPipeline
from models.registry import ModelRegistry, ModelSettings, RegistryError
from simulators.cohort.ct import ct_series
from simulators.cohort.model import CohortGenerator

SEED = 21
ROUNDS = 3  # timings per study; its median is kept


def _predictor(tmp: Path) -> tuple[Predictor, str]:
    try:
        return Predictor.promoted(ModelRegistry(ModelSettings().dir)), "promoted"
    except RegistryError as exc:
        print(f"imaging: {exc}; training a tiny model for the timings instead")
    studies = list(data.cohort_studies(30, 5, via_dicom=False, balanced=True))
    registry = ModelRegistry(tmp / "models")
    version = save(registry, train(studies, dataclasses.replace(TINY, epochs=3)), {"studies": 30})
    registry.promote(MODEL_NAME, version.version)
    return Predictor.promoted(registry), "tiny, trained for this run (timings only)"


def _upload(pacs: OrthancClient, n: int) -> list[str]:
    gen, i = CohortGenerator(SEED, data.DEFAULT_INDEX_DATE), 0
    uids: list[str] = []
    while len(uids) < n:
        i += 1
        patient = gen.patient(i)
        if patient.ct is None:
            continue
        series = ct_series(patient, SEED)
        for ds in series:
            buf = io.BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            pacs.upload(buf.getvalue())
        uids.append(str(series[0].StudyInstanceUID))
    return uids


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.1f}"


def _time(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> None:
    n = int(getattr(args, "studies", 6))
    reason = available()
    if reason is not None:
        print(f"\nimaging: skipped, Orthanc is not available ({reason})")
        return
    with tempfile.TemporaryDirectory(prefix="bench-imaging-") as tmp_name:
        tmp = Path(tmp_name)
        predictor, origin = _predictor(tmp)
        store = SqlStore(f"sqlite:///{tmp / 'facade.db'}")
        with (
            orthanc(dicom_server=False) as server,
            OrthancClient(server.url, auth=server.auth) as pacs,
        ):
            uids = _upload(pacs, n + 1)
            wait_for_changes(server, "StableStudy", count=len(uids), timeout=120)
            source = OrthancSource(
                pacs, dicomweb_public_url=server.dicomweb_url, base_url=server.url
            )
            sync_source(store, source)
            pipeline = ImagingPipeline(store, pacs, predictor)
            rows: dict[str, list[float]] = {
                k: [] for k in ("floor", "inferer", "fetch", "volume", "infer", "write", "total")
            }
            for k, uid in enumerate(uids):
                image = preprocess(
                    build_volume(pipeline.fetch_study(uid)[1]), predictor.config, fixed_size=False
                )
                per_study: dict[str, list[float]] = {key: [] for key in rows}
                for _ in range(ROUNDS):  # interleaved, so a slow moment hits every column
                    per_study["floor"].append(_time(lambda i=image: predictor.forward_only(i)))
                    per_study["inferer"].append(_time(lambda i=image: predictor.heatmap(i)))
                    started = time.perf_counter()
                    outcome = pipeline.process(uid)
                    per_study["total"].append(time.perf_counter() - started)
                    for step, value in outcome.timings.as_json().items():
                        per_study[step].append(value)
                if k == 0:
                    continue  # warm-up: first calls pay for lazy imports and allocations
                for key, values in per_study.items():
                    rows[key].append(statistics.median(values))
        store.close()
    card = predictor.model
    print(
        f"\nimaging: {n} CT studies (96 x 96 x 32, 3.5 x 3.5 x 7.5 mm) through the pipeline; "
        f"model {card} ({origin})"
    )
    print("median ms per study:  floor (forward)  inferer   fetch  volume   infer   write   total")
    print(
        " " * 21
        + "".join(
            _ms(rows[k]) for k in ("floor", "inferer", "fetch", "volume", "infer", "write", "total")
        )
    )
    ratio = statistics.median(rows["total"]) / statistics.median(rows["inferer"])
    floor_ratio = statistics.median(rows["total"]) / statistics.median(rows["floor"])
    print(
        f"end to end / inferer = {ratio:.2f}x (goal <= 2x); end to end / forward floor = "
        f"{floor_ratio:.2f}x"
    )
    _card(predictor)
    _full_size(predictor)


def _full_size(predictor: Predictor) -> None:
    """What a real chest CT costs past the fetch: 512 x 512 x 300 voxels of 0.7 x 0.7 x 2.5 mm
    (random HU: the cost does not depend on the content), preprocessed to the model's spacing
    and inferred. Two rounds; the second is printed (the first pays for allocations)."""
    rng = np.random.default_rng(0)
    hu = rng.normal(-500, 300, size=(512, 512, 300)).astype(np.float32)
    volume = Volume(hu, np.diag([0.7, 0.7, 2.5, 1.0]), "1", "1.1", tuple(map(str, range(300))))
    for _ in range(2):
        started = time.perf_counter()
        image = preprocess(volume, predictor.config, fixed_size=False)
        prepared = time.perf_counter()
        predictor.heatmap(image)
        done = time.perf_counter()
    prep_ms, infer_ms = (prepared - started) * 1000, (done - prepared) * 1000
    print(
        f"full-size CT 512 x 512 x 300 (0.7 x 0.7 x 2.5 mm) -> {tuple(image.shape[1:])}: "
        f"preprocess {prep_ms:.0f} ms, inferer {infer_ms:.0f} ms"
    )


def _card(predictor: Predictor) -> None:
    name, _, version = predictor.model.partition("@")
    try:
        found = ModelRegistry(ModelSettings().dir).get(name, int(version))
    except (RegistryError, ValueError):
        return
    blocks = found.card.get("metrics", {})
    for key, label in (("test", "held-out split"), ("external", "independent cohort")):
        if key in blocks:
            shown = {k: v for k, v in blocks[key].items() if v is not None}
            print(f"model card, {label}:", shown)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="imaging pipeline benchmark")
    parser.add_argument("--studies", type=int, default=6)
    run(parser.parse_args())
