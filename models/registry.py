"""Versioned model artifacts on disk: one folder per version, a model card, a promotion marker.

Layout under the registry root (``CDSS_MODELS_DIR``, default ``var/models``)::

    <name>/v<N>/card.json      the model card (task, metrics, ...) plus name/version/created/files
    <name>/v<N>/<file>         the artifacts, each recorded in the card with its sha256
    <name>/PROMOTED            the promoted version number (only a promoted version serves)

Why this shape: a version is written into a temporary folder and renamed into place, so a reader
never sees half a version; the card's checksums let the serving process refuse a corrupt file
with a clear message at start instead of failing inside a request. For scale, the same layout
can live on object storage mounted as a file system (e.g. ``s3://bucket/cdss/models`` through
mountpoint-s3 or gcsfuse): versions are immutable and the marker is one small file.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic_settings import BaseSettings, SettingsConfigDict

CARD_FILE = "card.json"
PROMOTED_FILE = "PROMOTED"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_VERSION_DIR = re.compile(r"^v([1-9][0-9]*)$")


class RegistryError(RuntimeError):
    """A registry problem a person must fix (missing folder, corrupt file, unknown version)."""


class ModelSettings(BaseSettings):
    """Where the registry lives (``CDSS_MODELS_DIR``)."""

    model_config = SettingsConfigDict(env_prefix="CDSS_MODELS_", env_file=".env", extra="ignore")

    dir: Path = Path("var/models")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (artifacts may be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelVersion:
    """One saved version of a model; its files are checked against the card when opened."""

    name: str
    version: int
    path: Path
    card: dict[str, Any]
    promoted: bool

    def file(self, filename: str) -> Path:
        """The path of an artifact after verifying its sha256 against the card."""
        files = self.card.get("files")
        if not isinstance(files, dict) or filename not in files:
            raise RegistryError(
                f"model {self.name} v{self.version} has no file {filename!r} in its card "
                f"({self.path / CARD_FILE}); files: {sorted(files or {})}"
            )
        path = self.path / filename
        if not path.is_file():
            raise RegistryError(
                f"model {self.name} v{self.version}: artifact {path} is missing; "
                "restore it or train and promote a new version"
            )
        actual = sha256_file(path)
        if actual != files[filename]:
            raise RegistryError(
                f"model {self.name} v{self.version}: artifact {path} is corrupt (sha256 "
                f"{actual[:12]}… differs from the card's {str(files[filename])[:12]}…); "
                "restore it or train and promote a new version"
            )
        return path

    def verify(self) -> None:
        """Check every artifact listed in the card."""
        for filename in self.card.get("files", {}):
            self.file(filename)


class ModelRegistry:
    """Save, list, fetch and promote model versions under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- writing -------------------------------------------------------------------------------
    def save(
        self, name: str, files: Mapping[str, bytes | Path], card: Mapping[str, Any]
    ) -> ModelVersion:
        """Write a new version (the next integer) atomically and return it (not promoted)."""
        _check_name(name)
        if not files:
            raise RegistryError(f"model {name}: nothing to save (no files)")
        for filename in files:
            if not _FILENAME.match(filename) or filename in (CARD_FILE, PROMOTED_FILE):
                raise RegistryError(f"model {name}: invalid artifact file name {filename!r}")
        model_dir = self.root / name
        model_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=model_dir))
        try:
            digests = {fn: _write_artifact(tmp / fn, data) for fn, data in sorted(files.items())}
            return self._publish(name, tmp, digests, dict(card))
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _publish(
        self, name: str, tmp: Path, digests: dict[str, str], card: dict[str, Any]
    ) -> ModelVersion:
        """Rename the temporary folder to the next free version (retrying on a race)."""
        for _ in range(100):
            version = max((v.version for v in self._scan(name, load=False)), default=0) + 1
            full = {
                **card,
                "name": name,
                "version": version,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "files": digests,
            }
            (tmp / CARD_FILE).write_bytes(
                orjson.dumps(
                    full,
                    option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY,
                )
            )
            target = self.root / name / f"v{version}"
            try:
                os.rename(tmp, target)  # fails if another writer took this version
            except OSError:
                if target.exists():
                    continue
                raise
            return ModelVersion(name, version, target, full, promoted=False)
        raise RegistryError(f"model {name}: could not allocate a new version in {self.root}")

    def promote(self, name: str, version: int) -> ModelVersion:
        """Make a version the one that serves, after checking its files."""
        chosen = self.get(name, version)
        chosen.verify()
        marker = self.root / name / PROMOTED_FILE
        tmp = marker.with_name(f".{PROMOTED_FILE}.{os.getpid()}")
        tmp.write_text(f"{version}\n")
        os.replace(tmp, marker)
        return ModelVersion(chosen.name, chosen.version, chosen.path, chosen.card, promoted=True)

    # -- reading -------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Model names that have at least one version."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and _NAME.match(p.name) and any(self._version_dirs(p.name))
        )

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, oldest first (cards loaded; a corrupt card raises)."""
        _check_name(name)
        return self._scan(name, load=True)

    def get(self, name: str, version: int) -> ModelVersion:
        """One version; RegistryError naming the versions that exist if it does not."""
        _check_name(name)
        path = self.root / name / f"v{version}"
        if not path.is_dir():
            self._require_root()
            known = [v for v, _ in self._version_dirs(name)]
            if not known:
                raise RegistryError(
                    f"no model named {name!r} in {self.root}; known: {self.names() or 'none'}"
                )
            raise RegistryError(f"model {name} has no version {version}; versions: {known}")
        return ModelVersion(
            name, version, path, _load_card(path), self._promoted_number(name) == version
        )

    def promoted(self, name: str) -> ModelVersion | None:
        """The promoted version, None when none is; RegistryError if the marker is dangling."""
        _check_name(name)
        number = self._promoted_number(name)
        if number is None:
            return None
        path = self.root / name / f"v{number}"
        if not path.is_dir():
            raise RegistryError(
                f"model {name}: promoted version {number} is missing from {self.root / name}; "
                f"promote an existing version with `cdss models promote {name} VERSION`"
            )
        return ModelVersion(name, number, path, _load_card(path), promoted=True)

    # -- internals -----------------------------------------------------------------------------
    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise RegistryError(
                f"model registry folder {self.root} does not exist: train a model "
                "(`cdss train risk`) or point CDSS_MODELS_DIR at the registry"
            )

    def _version_dirs(self, name: str) -> list[tuple[int, Path]]:
        model_dir = self.root / name
        if not model_dir.is_dir():
            return []
        found = []
        for p in model_dir.iterdir():
            match = _VERSION_DIR.match(p.name)
            if match and p.is_dir():
                found.append((int(match.group(1)), p))
        return sorted(found)

    def _scan(self, name: str, *, load: bool) -> list[ModelVersion]:
        promoted = self._promoted_number(name) if load else None
        return [
            ModelVersion(name, v, p, _load_card(p) if load else {}, promoted == v)
            for v, p in self._version_dirs(name)
        ]

    def _promoted_number(self, name: str) -> int | None:
        marker = self.root / name / PROMOTED_FILE
        if not marker.is_file():
            return None
        text = marker.read_text().strip()
        if not text.isdigit():
            raise RegistryError(f"promotion marker {marker} is corrupt ({text[:20]!r})")
        return int(text)


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise RegistryError(
            f"invalid model name {name!r}: lower-case letters, digits, '-' and '_' only"
        )


def _write_artifact(target: Path, data: bytes | Path) -> str:
    if isinstance(data, Path):
        if not data.is_file():
            raise RegistryError(f"artifact source {data} does not exist")
        shutil.copyfile(data, target)
    else:
        target.write_bytes(data)
    return sha256_file(target)


def _load_card(path: Path) -> dict[str, Any]:
    card_path = path / CARD_FILE
    try:
        card = orjson.loads(card_path.read_bytes())
    except FileNotFoundError:
        raise RegistryError(f"model card {card_path} is missing") from None
    except orjson.JSONDecodeError as exc:
        raise RegistryError(f"model card {card_path} is not valid JSON: {exc}") from None
    if not isinstance(card, dict) or not isinstance(card.get("files"), dict):
        raise RegistryError(f"model card {card_path} lacks its 'files' checksums")
    return card
