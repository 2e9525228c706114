"""The environment variables the project reads, found in its source.

Every pydantic-settings class in the project's packages is read for its fields, env prefix and
aliases (by parsing, so the torch-heavy modules need not be imported: this stays fast), plus
direct `os.environ` reads of CDSS_* names. A class added later is covered without editing a
list here.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cdss", "fhir_facade", "cds_hooks", "adapters", "cdw", "models", "smart_app")
_ENVIRON_CALLS = frozenset({"os.environ.get", "os.getenv", "environ.get", "getenv"})


@dataclass(frozen=True, slots=True)
class EnvName:
    name: str
    owner: str  # module.Class, or the module for a direct os.environ read
    required: bool


def _is_settings(node: ast.ClassDef) -> bool:
    return any(
        (isinstance(b, ast.Name) and b.id == "BaseSettings")
        or (isinstance(b, ast.Attribute) and b.attr == "BaseSettings")
        for b in node.bases
    )


def _prefix(node: ast.ClassDef) -> str:
    for stmt in node.body:
        if (
            isinstance(stmt, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "model_config" for t in stmt.targets)
            and isinstance(stmt.value, ast.Call)
        ):
            for kw in stmt.value.keywords:
                if kw.arg == "env_prefix" and isinstance(kw.value, ast.Constant):
                    return str(kw.value.value)
    return ""


def _field(stmt: ast.AnnAssign) -> tuple[str | None, bool]:
    """(alias, required) of one annotated field."""
    value = stmt.value
    if value is None:
        return None, True
    if not (isinstance(value, ast.Call) and ast.unparse(value.func).endswith("Field")):
        return None, False
    keywords = {kw.arg: kw.value for kw in value.keywords}
    alias = keywords.get("validation_alias") or keywords.get("alias")
    name = str(alias.value) if isinstance(alias, ast.Constant) else None
    has_default = "default" in keywords or "default_factory" in keywords
    if value.args:
        first = value.args[0]
        has_default = not (isinstance(first, ast.Constant) and first.value is Ellipsis)
    return name, not has_default


def _settings_names(module: str, node: ast.ClassDef) -> list[EnvName]:
    prefix, out = _prefix(node), []
    for stmt in node.body:
        if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
            continue
        if "ClassVar" in ast.unparse(stmt.annotation) or stmt.target.id == "model_config":
            continue
        alias, required = _field(stmt)
        name = (alias or f"{prefix}{stmt.target.id}").upper()
        out.append(EnvName(name, f"{module}.{node.name}", required))
    return out


def _environ_name(node: ast.AST) -> str | None:
    """`os.environ.get("CDSS_X")`, `os.getenv("CDSS_X")`, `os.environ["CDSS_X"]`."""
    key: ast.AST | None = None
    if isinstance(node, ast.Call) and node.args and ast.unparse(node.func) in _ENVIRON_CALLS:
        key = node.args[0]
    elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
        key = node.slice
    if isinstance(key, ast.Constant) and str(key.value).startswith("CDSS_"):
        return str(key.value)
    return None


@cache
def env_names() -> tuple[EnvName, ...]:
    """One entry per (variable, reader): several classes may read the same variable."""
    out: list[EnvName] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef) and _is_settings(node):
                    out += _settings_names(module, node)
                elif (name := _environ_name(node)) is not None:
                    out.append(EnvName(name, module, False))
    return tuple(out)
