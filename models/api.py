"""Models loaded once per process, and the HTTP routes that show their model cards.

`LoadedModels.load(name, loader)` reads the promoted version of a model at app start and keeps
either the loaded object or the reason it could not be loaded (logged once, shown on the card
routes and by the services that needed it) — a broken artifact is never met inside a request.

Routes (JSON): `GET /models` (every model, its versions and serving state), `GET /models/{name}`
(the card of the serving version), `GET /models/{name}/{version}` (one version's card). CDS cards
link to the last one. Errors carry `{"error": code, "message": ...}` with 404 or 503.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from models.registry import ModelRegistry, ModelVersion, RegistryError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ModelStatus:
    name: str
    version: int | None
    serving: bool
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "serving": self.serving,
            "problem": self.problem,
        }


class LoadedModels:
    """The registry plus what this process loaded from it (or why it could not)."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.status: dict[str, ModelStatus] = {}

    def load(self, name: str, loader: Callable[[ModelVersion], T]) -> T | None:
        """The promoted version of `name` through `loader`, or None with the reason recorded."""
        try:
            version = self.registry.promoted(name)
            if version is None:
                problem = (
                    f"model {name} has no promoted version in {self.registry.root}: train one "
                    f"and run `cdss models promote {name} VERSION`"
                )
                log.warning("model %s is not served: %s", name, problem)
                self.status[name] = ModelStatus(name, None, False, problem)
                return None
            loaded = loader(version)
        except RegistryError as exc:
            log.error("model %s is not served: %s", name, exc)
            self.status[name] = ModelStatus(name, None, False, str(exc))
            return None
        self.status[name] = ModelStatus(name, version.version, True)
        log.info("model %s v%d loaded", name, version.version)
        return loaded


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def create_models_router(models: LoadedModels) -> APIRouter:
    router = APIRouter(prefix="/models", tags=["models"])
    registry = models.registry

    def listing() -> list[dict[str, Any]]:
        out = []
        for name in sorted(set(registry.names()) | set(models.status)):
            problem: str | None = None
            try:
                versions = [v.version for v in registry.versions(name)]
            except RegistryError as exc:
                versions, problem = [], str(exc)
            status = models.status.get(name)
            out.append(
                {
                    "name": name,
                    "versions": versions,
                    "serving": status.to_json() if status else None,
                    **({"problem": problem} if problem else {}),
                }
            )
        return out

    @router.get("")
    async def list_models() -> JSONResponse:
        return JSONResponse({"models": await run_in_threadpool(listing)})

    def card_of(name: str, version: int | None) -> JSONResponse:
        status = models.status.get(name)
        try:
            if version is None:
                if status is not None and not status.serving:
                    return _error(503, "not-serving", status.problem or "not loaded")
                chosen = registry.promoted(name)
                if chosen is None:
                    return _error(404, "not-promoted", f"model {name} has no promoted version")
            else:
                chosen = registry.get(name, version)
        except RegistryError as exc:
            return _error(404, "not-found", str(exc))
        serving = status is not None and status.serving and status.version == chosen.version
        return JSONResponse({**chosen.card, "promoted": chosen.promoted, "serving": serving})

    @router.get("/{name}")
    async def promoted_card(name: str) -> JSONResponse:
        return await run_in_threadpool(card_of, name, None)

    @router.get("/{name}/{version}")
    async def version_card(name: str, version: int) -> JSONResponse:
        return await run_in_threadpool(card_of, name, version)

    return router
