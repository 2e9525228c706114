"""The project's Dockerfile, parsed: multi-stage, non-root, CPU torch, a healthcheck, and every
package the project installs copied into the image."""

from __future__ import annotations

import fnmatch
import re
import tomllib

from tests.deploy import stack
from tests.deploy.settings_env import ROOT


def _stages() -> list[stack.Stage]:
    return stack.dockerfile_stages(stack.DOCKERFILE.read_text())


def test_stages_and_what_crosses_between_them() -> None:
    stages = _stages()
    assert len(stages) >= 2 and all(s.name for s in stages[:-1])
    names = [s.name for s in stages]
    final = stages[-1]
    copied_from = [
        stack.copy_sources(args)[0]["from"]
        for kind, args in final.instructions
        if kind == "COPY" and "--from" in args
    ]
    assert copied_from and all(name in names[:-1] for name in copied_from)


def test_the_image_runs_as_an_unprivileged_user() -> None:
    users = [args for kind, args in _stages()[-1].instructions if kind == "USER"]
    assert users, "the final stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), user


def test_torch_is_the_pinned_cpu_build() -> None:
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_pin = next(d for d in pinned if d.startswith("torch"))
    runs = [args for s in _stages() for kind, args in s.instructions if kind == "RUN"]
    torch_runs = [r for r in runs if re.search(r"\btorch==", r)]
    assert torch_runs, "torch must be installed explicitly before the project"
    assert torch_pin in torch_runs[0]
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch_runs[0]
    install = next(i for i, r in enumerate(runs) if "pip install" in r and "-e ." in r)
    assert runs.index(torch_runs[0]) < install


def test_a_healthcheck_and_an_entrypoint() -> None:
    final = dict(_stages()[-1].instructions)
    assert "/healthz" in final["HEALTHCHECK"]
    assert "cdss" in final["ENTRYPOINT"]


def _ignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return any(fnmatch.fnmatch(path, p) or path.startswith(p + "/") for p in patterns)


def test_every_copied_path_exists_and_reaches_the_build() -> None:
    copied = set()
    for stage in _stages():
        for kind, args in stage.instructions:
            if kind != "COPY":
                continue
            flags, sources = stack.copy_sources(args)
            if "from" in flags:
                continue
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not _ignored(source), f"{source} is excluded by .dockerignore"
                copied.add(source)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    includes = config["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in includes}
    assert packages <= copied, f"packages not copied: {sorted(packages - copied)}"
    assert {"pyproject.toml", config["project"]["readme"]} <= copied
    for secret in (".venv", "var", ".git", "deploy/stack.env", "deploy/cdss.env"):
        assert _ignored(secret), f"{secret} would be sent to the build"
