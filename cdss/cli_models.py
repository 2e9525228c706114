"""CLI verbs of the model registry and training: `cdss models list|show|promote`, `cdss train ...`.

`train_app` is shared: each model family adds its own command to it (`risk` here, `imaging`
from the imaging module), so `cdss train --help` lists every trainable model.
"""

from __future__ import annotations

import orjson
import typer
from rich.console import Console
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
    table = Table("name", "version", "created", "task", "promoted")
    for name in reg.names():
        try:
            versions = reg.versions(name)
        except RegistryError as exc:
            table.add_row(name, "?", "", f"[red]{exc}[/red]", "")
            continue
        for v in versions:
            table.add_row(
                name, str(v.version), str(v.card.get("created", "")),
                str(v.card.get("task", ""))[:60], "yes" if v.promoted else "",
            )  # fmt: skip
    if not table.rows:
        console.print(f"no models in {reg.root}: train one with `cdss train risk`")
        return
    Console().print(table)


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


def register(app: typer.Typer) -> None:
    """Mount `cdss models` and `cdss train` on the main CLI."""
    app.add_typer(models_app, name="models")
    app.add_typer(train_app, name="train")
