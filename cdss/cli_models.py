"""CLI verbs of the model registry and training: `cdss models list|show|promote`, `cdss train ...`.

`train_app` is shared: each model family adds its own command to it (`risk` here, `imaging`
from the imaging module), so `cdss train --help` lists every trainable model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from models.registry import ModelRegistry, ModelSettings, RegistryError

console = Console(stderr=True)
models_app = typer.Typer(
    help="Model registry: list, show and promote versions.", no_args_is_help=True
)
train_app = typer.Typer(help="Train a model on the CDW / PACS data and save it to the registry.",
                        no_args_is_help=True)  # fmt: skip


def registry() -> ModelRegistry:
    """The registry at CDSS_MODELS_DIR."""
    return ModelRegistry(ModelSettings().dir)


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]{exc}[/red]")
    return typer.Exit(2)


@models_app.command("list")
def list_models() -> None:
    """Every model version with its task, headline metric and whether it serves."""
    reg = registry()
    table = Table("name", "version", "created", "patients", "AUROC", "ECE", "promoted")
    for name in reg.names():
        try:
            versions = reg.versions(name)
        except RegistryError as exc:
            table.add_row(name, "?", f"[red]{exc}[/red]", "", "", "", "")
            continue
        for v in versions:
            test = v.card.get("metrics", {}).get("test", {})
            table.add_row(
                name, str(v.version), str(v.card.get("created", "")),
                str(v.card.get("training_data", {}).get("patients", "")),
                _headline(test.get("auroc")), _headline(test.get("ece")),
                "yes" if v.promoted else "",
            )  # fmt: skip
    if not table.rows:
        console.print(f"no models in {reg.root}: train one with `cdss train risk`")
        return
    Console().print(table)


def _headline(block: Any) -> str:
    return f"{block['value']:.3f}" if isinstance(block, dict) and "value" in block else ""


@models_app.command("show")
def show(
    name: str = typer.Argument(..., help="Model name, e.g. oncology-risk"),
    version: int | None = typer.Option(None, "--version", help="Version (default: promoted)"),
) -> None:
    """Print a version's model card as JSON (the promoted one unless --version is given)."""
    reg = registry()
    try:
        chosen = reg.get(name, version) if version is not None else reg.promoted(name)
    except RegistryError as exc:
        raise _fail(exc) from None
    if chosen is None:
        raise _fail(RegistryError(f"model {name} has no promoted version; pass --version N"))
    card = {**chosen.card, "promoted": chosen.promoted}
    typer.echo(orjson.dumps(card, option=orjson.OPT_INDENT_2).decode())


@models_app.command("promote")
def promote(
    name: str = typer.Argument(..., help="Model name"),
    version: int = typer.Argument(..., help="Version to serve"),
) -> None:
    """Make VERSION the one the app serves (its files are verified first)."""
    try:
        chosen = registry().promote(name, version)
    except RegistryError as exc:
        raise _fail(exc) from None
    console.print(f"{chosen.name} v{chosen.version} promoted; restart the app to serve it")


DEFAULT_SYNTHETIC = 8000


@train_app.command("risk")
def train_risk(
    truth: Path | None = typer.Option(
        None, help="Cohort ground truth (default: <CDSS_DATA_DIR>/cohort/ground_truth.csv)"
    ),
    synthetic: int | None = typer.Option(
        None,
        min=200,
        help=f"Train on N generator patients built in memory (e.g. {DEFAULT_SYNTHETIC}) "
        "instead of the CDW",
    ),
    cohort_seed: int = typer.Option(1, help="Generator seed of --synthetic"),
    seed: int = typer.Option(0, help="Seed of the split, the boosting and the bootstrap"),
    calibration: str = typer.Option("platt", help="platt | isotonic"),
    bootstrap: int = typer.Option(1000, min=100, help="Bootstrap resamples for the CIs"),
    promote: bool = typer.Option(False, "--promote", help="Promote the new version"),
) -> None:
    """Train the LightGBM lung-cancer risk model from the CDW (or a synthetic cohort), evaluate it
    against the cohort's Bayes-optimal ceiling, and save it with its model card."""
    from cdw.config import DEV_KEY, CdwConfigError, CdwSettings
    from cdw.pseudonym import Pseudonymizer
    from models.tabular import cohort
    from models.tabular.train import TrainConfig, save, train

    if calibration not in ("platt", "isotonic"):
        raise typer.BadParameter("platt or isotonic", param_hint="--calibration")
    settings = CdwSettings()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        task = bar.add_task("features", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            if synthetic is not None:
                pz = Pseudonymizer(DEV_KEY, max_shift_days=settings.cdw_max_shift_days)
                data = cohort.synthetic(synthetic, cohort_seed, pz, progress)
            else:
                pz = Pseudonymizer(
                    settings.pseudonym_key(), max_shift_days=settings.cdw_max_shift_days
                )
                path = truth or settings.data_dir / "cohort" / "ground_truth.csv"
                data = cohort.build(
                    settings.effective_database_url, settings.effective_cdw_url, path, pz, progress
                )
        except (CdwConfigError, cohort.CohortError) as exc:
            raise _fail(exc) from None
    console.print(f"{len(data.rows)} patients, {int(data.labels.sum())} cancers; training...")
    try:
        trained = train(
            data,
            TrainConfig(seed=seed, calibration=calibration, bootstrap=bootstrap),  # type: ignore[arg-type]
        )
        version = save(registry(), trained, promote=promote)
    except (ValueError, RegistryError) as exc:
        raise _fail(exc) from None
    _print_metrics(trained.card["metrics"])
    state = (
        "promoted"
        if promote
        else f"not promoted: cdss models promote {version.name} {version.version}"
    )
    console.print(f"saved {version.name} v{version.version} in {version.path} ({state})")


def _ci(block: dict[str, float]) -> str:
    return f"{block['value']:.3f} [{block['ci_low']:.3f}, {block['ci_high']:.3f}]"


def _print_metrics(m: dict[str, Any]) -> None:
    table = Table("test set", "AUROC", "AUPRC", "ECE")
    rows = [("model", m["test"]), ("ceiling: full information", m["ceiling"]["full"]),
            ("ceiling: tabular record", m["ceiling"]["observable"])]  # fmt: skip
    for label, block in rows:
        table.add_row(label, _ci(block["auroc"]), _ci(block["auprc"]), _ci(block["ece"]))
    Console().print(table)
    ratio = m["auroc_ratio"]
    typer.echo(
        f"AUROC / ceiling: full {_ci(ratio['to_full_ceiling'])}, "
        f"tabular {_ci(ratio['to_observable_ceiling'])} (goal >= {m['goal']['auroc_ratio_min']}); "
        f"ECE {m['test']['ece']['value']:.3f} (goal <= {m['goal']['ece_max']})"
    )


def register(app: typer.Typer) -> None:
    """Mount `cdss models` and `cdss train` on the main CLI."""
    app.add_typer(models_app, name="models")
    app.add_typer(train_app, name="train")
