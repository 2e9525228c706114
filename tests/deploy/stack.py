"""Reading the real stack's files as Docker would: the compose file, env templates, Dockerfile."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.settings_env import ROOT

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROJECT_IMAGE = "cdss:local"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def env_file_paths(service: dict[str, Any]) -> list[str]:
    raw = service.get("env_file") or []
    items = [raw] if isinstance(raw, str | dict) else raw
    return [item if isinstance(item, str) else str(item["path"]) for item in items]


def template_of(path: str) -> Path:
    """The committed file behind an env_file path: itself, or its `.example` template (the real
    file holds secrets and is git-ignored)."""
    real = ROOT / path
    return real if real.exists() else ROOT / f"{path}.example"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads them (comments and blank lines skipped)."""
    out = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}:{number}: not KEY=VALUE"
        out[key.strip()] = value
    return out


def service_env(service: dict[str, Any]) -> dict[str, str]:
    """What the container's environment holds: env files (templates), then `environment`."""
    env: dict[str, str] = {}
    for path in env_file_paths(service):
        env.update(read_env_file(template_of(path)))
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.partition("=")[::2] for item in raw)
    env.update({k: "" if v is None else str(v) for k, v in raw.items()})
    return env


def project_services(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services running this project's image with a `cdss` command (one-shots excluded)."""
    return {
        name: svc
        for name, svc in data["services"].items()
        if svc.get("image") == PROJECT_IMAGE and "entrypoint" not in svc
    }


@dataclass
class Stage:
    name: str | None
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def dockerfile_stages(text: str) -> list[Stage]:
    """The Dockerfile's stages with their instructions (continuation lines joined)."""
    joined = re.sub(r"\\\n", " ", text)
    stages: list[Stage] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(name, parts[0]))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


def copy_sources(args: str) -> tuple[dict[str, str], list[str]]:
    """A COPY's --flags and its source paths (the last word is the destination)."""
    words = shlex.split(args)
    flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    return flags, paths[:-1]
