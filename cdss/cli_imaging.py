"""CLI verbs of the imaging AI: `cdss train imaging`, `cdss worker`, `cdss imaging jobs|analyse`.

torch and MONAI are imported inside the commands, so `cdss --help` and the other verbs stay fast.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson
import typer

from cdss.cli_models import train_app
from cdss.stopping import stop_on_signals

if TYPE_CHECKING:
    from fhir_facade.store.base import SqlBackedStore

imaging_app = typer.Typer(help="Imaging AI pipeline: its job queue.", no_args_is_help=True)


def _store() -> SqlBackedStore:
    from cdss.settings import load_settings
    from fhir_facade.store.factory import open_store

    return open_store(load_settings().effective_database_url)


@train_app.command("imaging")
def train_imaging(
    studies: int = typer.Option(300, min=10, help="CT studies drawn from the synthetic cohort"),
    cohort_seed: int = typer.Option(1, help="Cohort seed (as `cdss seed --seed`)"),
    seed: int = typer.Option(7, help="Training seed (equal seeds give equal weights)"),
    epochs: int | None = typer.Option(None, min=1, help="Epochs (default: the config's)"),
    device: str = typer.Option("cpu", help="torch device: cpu or cuda"),
    tiny: bool = typer.Option(False, help="The tests' tiny configuration (coarse, seconds)"),
    promote: bool = typer.Option(False, help="Promote the new version at once"),
    eval_studies: int = typer.Option(
        300, min=0, help="CT studies of an independent cohort to evaluate on (0: none)"
    ),
    eval_cohort_seed: int = typer.Option(2, help="That cohort's seed (not the training one)"),
) -> None:
    """Train the nodule UNet on the cohort's CT series, evaluate on held-out studies and on an
    independent cohort, register."""
    import dataclasses

    import torch

    from models.imaging import data
    from models.imaging.config import TINY, ImagingConfig
    from models.imaging.train import save, train
    from models.registry import ModelRegistry, ModelSettings

    if eval_studies and eval_cohort_seed == cohort_seed:
        typer.echo("--eval-cohort-seed must differ from --cohort-seed: same patients", err=True)
        raise typer.Exit(2)
    if device.startswith("cuda") and not torch.cuda.is_available():
        typer.echo("--device cuda: no CUDA device is available here", err=True)
        raise typer.Exit(2)
    config = dataclasses.replace(TINY if tiny else ImagingConfig(), seed=seed)
    if epochs is not None:
        config = dataclasses.replace(config, epochs=epochs)
    started = time.monotonic()
    typer.echo(f"rendering {studies} CT studies of cohort seed {cohort_seed}...", err=True)
    cohort = list(data.cohort_studies(studies, cohort_seed))
    typer.echo(f"  {sum(s.label for s in cohort)} with a nodule", err=True)
    external: list[data.Study] = []
    if eval_studies:
        typer.echo(
            f"rendering {eval_studies} CT studies of cohort seed {eval_cohort_seed} for the "
            "independent evaluation...",
            err=True,
        )
        external = list(data.cohort_studies(eval_studies, eval_cohort_seed))
        typer.echo(f"  {sum(s.label for s in external)} with a nodule", err=True)
    typer.echo(f"training on {device}...", err=True)
    try:
        trained = train(
            cohort,
            config,
            device=device,
            progress=lambda e, loss: typer.echo(
                f"  epoch {e}/{config.epochs} loss {loss:.4f}", err=True
            ),
            external=external,
        )
    except ValueError as exc:  # too few studies, or one class only: say so, no traceback
        typer.echo(f"cannot train: {exc}", err=True)
        raise typer.Exit(2) from None
    registry = ModelRegistry(ModelSettings().dir)
    version = save(
        registry,
        trained,
        {"studies": studies, "cohort_seed": cohort_seed},
        {"source": "synthetic cohort, independent seed", "cohort_seed": eval_cohort_seed},
    )
    if promote:
        registry.promote(version.name, version.version)
    typer.echo(
        orjson.dumps(
            {
                "model": f"{version.name}@{version.version}",
                "promoted": promote,
                "path": str(version.path),
                "seconds": round(time.monotonic() - started, 1),
                "metrics": trained.metrics,
                "external": trained.external,
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
    )


def worker(
    once: bool = typer.Option(False, "--once", help="Run the due jobs, then exit"),
) -> None:
    """Run the imaging AI job worker in this process (several may share one store)."""
    from cdss.logs import configure
    from cdss.settings import load_settings
    from models.imaging.runtime import ImagingSettings
    from models.imaging.worker import build_worker

    configure(load_settings().log_level)
    from models.registry import RegistryError

    store = _store()
    try:
        try:
            job_worker = build_worker(store, ImagingSettings())
        except (ValueError, RegistryError) as exc:  # configuration or model: say what to fix
            typer.echo(f"cdss worker: {exc}", err=True)
            raise typer.Exit(2) from None
        if once:
            typer.echo(f"{job_worker.drain()} jobs run")
            return
        job_worker.run(stop_on_signals())  # a job under way finishes first
    finally:
        store.close()


@imaging_app.command("jobs")
def list_jobs(
    status: str | None = typer.Option(None, help="queued | running | done | failed"),
    limit: int = typer.Option(50, min=1),
) -> None:
    """The latest jobs with their status, attempts and error (JSON lines)."""
    from models import jobs

    store = _store()
    try:
        typer.echo(orjson.dumps(jobs.counts(store.writer)).decode())
        for job in jobs.listing(store.writer, status, limit):
            row = {"key": job.key, "status": job.status, "attempts": job.attempts,
                   "error": job.error, "result": job.result}  # fmt: skip
            typer.echo(orjson.dumps(row).decode())
    finally:
        store.close()


@imaging_app.command("analyse")
def analyse(
    study_uid: str = typer.Argument(..., help="StudyInstanceUID of a study in the PACS"),
) -> None:
    """Queue (or re-queue) the analysis of one study."""
    from models import jobs

    store = _store()
    try:
        with store.writer.begin() as conn:
            if not jobs.enqueue(conn, study_uid, {"study_uid": study_uid}):
                conn.execute(
                    jobs.jobs.update()
                    .where(jobs.c.key == study_uid, jobs.c.status != "running")
                    .values(status="queued", attempts=0, next_at=jobs.now_us(), error=None)
                )
        typer.echo(f"queued {study_uid}")
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Mount `cdss worker` and `cdss imaging` (`cdss train imaging` is on train_app)."""
    app.command("worker")(worker)
    app.add_typer(imaging_app, name="imaging")
