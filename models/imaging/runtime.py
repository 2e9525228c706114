"""The imaging AI inside the app process: settings and the one call from the composition root.

Light on purpose: importing it costs no torch. `attach` imports the worker (torch, MONAI) only
when CDSS_IMAGING_ENABLED is set.
"""

from __future__ import annotations

import atexit
import logging
import threading

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fhir_facade.store.base import SqlBackedStore
from models import jobs

log = logging.getLogger(__name__)


class ImagingSettings(BaseSettings):
    """CDSS_IMAGING_*: the imaging AI pipeline."""

    model_config = SettingsConfigDict(env_prefix="CDSS_IMAGING_", env_file=".env", extra="ignore")

    enabled: bool = Field(False, description="Queue a job for each CT study the sync stores")
    worker: bool = Field(True, description="Run the job worker inside the app (else `cdss worker`)")
    device: str = Field("cpu", description="torch device for inference: cpu or cuda")
    poll_s: float = Field(2.0, gt=0, description="Seconds between queue polls when idle")
    lease_s: float = Field(600.0, gt=0, description="A claimed job is retaken after this long")
    max_attempts: int = Field(3, ge=1)
    retry_base_s: float = Field(10.0, ge=0, description="First retry delay (doubles each time)")


def attach(
    store: SqlBackedStore, settings: ImagingSettings | None = None
) -> threading.Event | None:
    """From the app: turn enqueueing on and start the in-process worker, when configured. A
    missing model is logged once as an error (jobs wait in the queue until one is promoted)."""
    settings = settings or ImagingSettings()
    if not settings.enabled:
        return None
    jobs.install(True)
    if not settings.worker:
        log.info("imaging AI jobs are queued; run `cdss worker` to process them")
        return None
    try:
        from models.imaging.worker import build_worker

        worker = build_worker(store, settings)
    except Exception as exc:  # registry or configuration: say so at start, keep the app up
        log.error("imaging AI worker not started: %s", exc)
        return None
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="imaging-worker", daemon=True)
    thread.start()
    atexit.register(stop.set)
    return stop
