"""The job worker: claims imaging jobs from the durable queue and runs the pipeline on them.

The same loop runs as a daemon thread inside the app (default, `attach`) and as `cdss worker`
(a separate process for scale; several may run against one store: claims are atomic). A job's
outcome decides its next state: done; failed with the reason (BadInput: the study cannot be
analysed); or queued again after a backoff (anything else: PACS down, store busy, a bug), until
`max_attempts`. Nothing a job does can stop the loop: every exception is recorded on the job.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from pathlib import Path

from adapters.dicomweb.settings import PacsSettings
from fhir_facade.store.base import SqlBackedStore
from models import jobs
from models.imaging.runtime import ImagingSettings
from models.pipeline import BadInput, ImagingPipeline

log = logging.getLogger(__name__)


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobWorker:
    def __init__(
        self, store: SqlBackedStore, pipeline: ImagingPipeline, settings: ImagingSettings
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.settings = settings
        self.owner = owner_id()

    def run_once(self) -> jobs.Job | None:
        """Claim and run one due job; returns it as claimed (None when the queue is idle)."""
        s = self.settings
        job = jobs.claim(self.store.writer, self.owner, s.lease_s, s.max_attempts)
        if job is None:
            return None
        study_uid = str(job.payload.get("study_uid") or job.key)
        log.info("job %d: study %s (attempt %d)", job.id, study_uid, job.attempts)
        try:
            outcome = self.pipeline.process(study_uid)
        except BadInput as exc:
            log.warning("job %d failed: %s", job.id, exc)
            jobs.fail(self.store.writer, job, self.owner, str(exc))
        except Exception as exc:  # the loop must survive anything a job does
            log.warning("job %d: %s: %s (will retry)", job.id, type(exc).__name__, exc)
            jobs.retry_later(
                self.store.writer,
                job,
                self.owner,
                f"{type(exc).__name__}: {exc}",
                max_attempts=s.max_attempts,
                base_s=s.retry_base_s,
            )
        else:
            jobs.complete(self.store.writer, job, self.owner, outcome.as_json())
        return job

    def drain(self) -> int:
        """Run every due job now (tests, `cdss worker --once`); returns how many ran."""
        n = 0
        while self.run_once() is not None:
            n += 1
        return n

    def run(self, stop: threading.Event) -> None:
        log.info("imaging job worker %s started", self.owner)
        while not stop.is_set():
            try:
                ran = self.run_once()
            except Exception:  # the queue itself failed (database down): wait and go on
                log.exception("imaging job worker: claiming failed")
                ran = None
            if ran is None:
                stop.wait(self.settings.poll_s)
        log.info("imaging job worker %s stopped", self.owner)


def build_worker(
    store: SqlBackedStore,
    settings: ImagingSettings,
    models_dir: Path | None = None,
    pacs_settings: PacsSettings | None = None,
) -> JobWorker:
    """Load the promoted model (a clear RegistryError if missing or corrupt) and the PACS
    client of the site's profile (CDSS_PACS_*: Orthanc, or any DICOMweb server; a clear
    PacsNotConfigured, a ValueError, when no PACS URL is set)."""
    from adapters.dicomweb.factory import pacs_client
    from models.imaging.infer import Predictor
    from models.registry import ModelRegistry, ModelSettings

    pacs = pacs_client(pacs_settings or PacsSettings())
    registry = ModelRegistry(models_dir or ModelSettings().dir)
    predictor = Predictor.promoted(registry, settings.device)
    return JobWorker(store, ImagingPipeline(store, pacs, predictor), settings)
