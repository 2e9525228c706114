"""Long-running commands stop on SIGINT/SIGTERM between units of work, exit status 0."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import torch

from cdss.stopping import stop_on_signals
from models.imaging.config import TINY
from models.imaging.infer import MODEL_NAME, WEIGHTS_FILE, weights_bytes
from models.imaging.network import build_network
from models.registry import ModelRegistry
from tests.support.processes import signal_cdss


def test_the_signals_set_the_event_instead_of_raising() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        stop = stop_on_signals()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
        stop.clear()
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt
        assert stop.wait(5)
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


def test_cdss_worker_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    torch.manual_seed(0)
    registry = ModelRegistry(tmp_path / "models")
    card = {"config": TINY.as_json(), "calibration": {"method": "platt", "a": 1.0, "b": 0.0}}
    version = registry.save(MODEL_NAME, {WEIGHTS_FILE: weights_bytes(build_network(TINY))}, card)
    registry.promote(MODEL_NAME, version.version)
    env = {
        **os.environ,
        "CDSS_MODELS_DIR": str(tmp_path / "models"),
        "CDSS_DATA_DIR": str(tmp_path / "var"),
        "CDSS_DATABASE_URL": f"sqlite:///{tmp_path / 'facade.db'}",
        "CDSS_IMAGING_ENABLED": "true",
        "CDSS_IMAGING_POLL_S": "0.2",
        "CDSS_PACS_URL": "http://127.0.0.1:9",  # never called: the queue is empty
    }
    run = signal_cdss(
        ["worker"],
        env,
        lambda line: "imaging job worker" in line and "started" in line,
        signal.SIGTERM,
        timeout=30,
    )
    assert run.seen and "started" in run.seen[-1], run.seen[-5:]
    assert run.returncode == 0, run.rest[-2000:]
    assert "stopped" in run.rest
