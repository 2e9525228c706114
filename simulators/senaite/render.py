"""One item of a JSON API answer: which brain and which schema a portal type uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from simulators.senaite.shapes import (
    Context,
    generic_dict,
    portal_brain,
    setup_brain,
    uid_brain,
    url_info,
)
from simulators.senaite.shapes_lab import analysis_brain, analysis_dict, sample_brain, sample_dict
from simulators.senaite.store import Obj
from simulators.senaite.workflow import workflow_info

Renderer = Callable[[Obj, Context], dict[str, Any]]

SETUP_TYPES = frozenset(
    {
        "SampleType",
        "AnalysisService",
        "AnalysisCategory",
        "Department",
        "AnalysisSpec",
        "ARTemplate",
    }
)

CATALOG_OF_TYPE: dict[str, str] = {
    "AnalysisRequest": "senaite_catalog_sample",
    "Analysis": "senaite_catalog_analysis",
} | dict.fromkeys(SETUP_TYPES, "senaite_catalog_setup")

_BRAINS: dict[str, Renderer] = {
    "senaite_catalog_sample": sample_brain,
    "senaite_catalog_analysis": analysis_brain,
    "senaite_catalog_setup": setup_brain,
    "portal_catalog": portal_brain,
}
_SCHEMAS: dict[str, Renderer] = {"AnalysisRequest": sample_dict, "Analysis": analysis_dict}


def catalog_of(obj: Obj) -> str:
    return CATALOG_OF_TYPE.get(obj.portal_type, "portal_catalog")


def brain(obj: Obj, ctx: Context) -> dict[str, Any]:
    """The catalog metadata columns of the object in its own catalog."""
    return _BRAINS[catalog_of(obj)](obj, ctx)


def render(
    obj: Obj,
    ctx: Context,
    *,
    via: Literal["object", "catalog"],
    complete: bool,
    workflow: bool = False,
) -> dict[str, Any]:
    """An API item: URL info + brain columns, plus every schema field when complete.

    Objects reached by UID are paired with their uid_catalog brain and are always complete.
    """
    item = url_info(obj, ctx)
    if via == "object":
        item |= uid_brain(obj, ctx)
        complete = True
    else:
        item |= brain(obj, ctx)
    if complete:
        item |= _SCHEMAS.get(obj.portal_type, generic_dict)(obj, ctx)
        if workflow:
            item |= workflow_info(obj, ctx)
    return item
