"""Loading of the shipped reference tables in ``cds_hooks/clinical/data/``.

Why CSV with ``#`` comment lines: the tables are clinical content that reviewers read and amend
line by line; each file starts with comments naming its sources and each row carries a
``status`` column (V = verified in the cited public source, V* = verified in a secondary copy,
UNVERIFIED = kept but not confirmed), the legend of ``docs/clinical-reference.md``.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib.resources import files


@cache
def read_table(name: str) -> tuple[dict[str, str], ...]:
    """Rows of ``data/<name>`` as dicts of stripped strings; comment and blank lines skipped."""
    raw = files("cds_hooks.clinical").joinpath("data", name).read_text(encoding="utf-8")
    lines = [line for line in raw.splitlines() if line.strip() and not line.startswith("#")]
    rows = csv.DictReader(lines)
    return tuple({k.strip(): (v or "").strip() for k, v in row.items() if k} for row in rows)


def split_terms(cell: str) -> tuple[str, ...]:
    """The ``|``-separated values of one cell."""
    return tuple(part.strip() for part in cell.split("|") if part.strip())
