"""The sample and analysis workflows of SENAITE 2.x, with their guards and cascades.

States and transitions follow `senaite_sample_workflow` / `senaite_analysis_workflow`: a new sample
is `sample_due`; `receive` makes its analyses `unassigned`; submitting every analysis moves the
sample to `to_be_verified`, verifying every analysis moves it to `verified`, and publishing the
sample publishes its analyses. Retracting an analysis creates its retest and rolls the sample back
to `sample_received`. Every change stamps `modified` (on the analysis and on its sample, which
SENAITE reindexes after analysis events), so a sync by sample modification date sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulators.senaite.shapes import Context
from simulators.senaite.shapes_lab import analyses_of
from simulators.senaite.store import Obj, Store

SAMPLE_WF = "senaite_sample_workflow"
ANALYSIS_WF = "senaite_analysis_workflow"
DEACTIVABLE_WF = "senaite_deactivable_type_workflow"

PRE_RECEIVED = {"sample_registered", "to_be_sampled", "scheduled_sampling", "sample_due"}
SUBMITTED = {"to_be_verified", "verified", "published"}
WITHDRAWN = {"retracted", "rejected", "cancelled"}

_SAMPLE: dict[str, tuple[set[str], str]] = {
    "receive": ({"sample_due"}, "sample_received"),
    "submit": ({"sample_received"}, "to_be_verified"),
    "verify": ({"to_be_verified"}, "verified"),
    "publish": ({"verified"}, "published"),
    "republish": ({"published"}, "published"),
    "retract": ({"to_be_verified"}, "sample_received"),
    "cancel": (PRE_RECEIVED | {"sample_received"}, "cancelled"),
    "reject": (PRE_RECEIVED | {"sample_received", "to_be_verified"}, "rejected"),
    "invalidate": ({"verified", "published"}, "invalid"),
}
_ANALYSIS: dict[str, tuple[set[str], str]] = {
    "initialize": ({"registered"}, "unassigned"),
    "assign": ({"unassigned"}, "assigned"),
    "unassign": ({"assigned"}, "unassigned"),
    "submit": ({"unassigned", "assigned"}, "to_be_verified"),
    "verify": ({"to_be_verified"}, "verified"),
    "retest": ({"to_be_verified"}, "verified"),
    "publish": ({"verified"}, "published"),
    "retract": ({"to_be_verified"}, "retracted"),
    "reject": ({"registered", "unassigned", "assigned", "to_be_verified"}, "rejected"),
    "cancel": ({"registered", "unassigned", "assigned"}, "cancelled"),
    "reinstate": ({"cancelled"}, "unassigned"),
}
_DEACTIVABLE: dict[str, tuple[set[str], str]] = {
    "deactivate": ({"active"}, "inactive"),
    "activate": ({"inactive"}, "active"),
}

STATE_TITLES = {
    "sample_due": "Due",
    "sample_received": "Received",
    "to_be_verified": "To be verified",
    "verified": "Verified",
    "published": "Published",
    "cancelled": "Cancelled",
    "rejected": "Rejected",
    "invalid": "Invalid",
    "registered": "Registered",
    "unassigned": "Unassigned",
    "assigned": "Assigned",
    "retracted": "Retracted",
    "active": "Active",
    "inactive": "Inactive",
}


class WorkflowError(Exception):
    """A transition that is not available (SENAITE answers it with `success: false`)."""


def _table(obj: Obj) -> tuple[str, dict[str, tuple[set[str], str]]]:
    if obj.portal_type == "AnalysisRequest":
        return SAMPLE_WF, _SAMPLE
    if obj.portal_type == "Analysis":
        return ANALYSIS_WF, _ANALYSIS
    return DEACTIVABLE_WF, _DEACTIVABLE


def _valid(sample: Obj) -> list[Obj]:
    return [a for a in analyses_of(sample) if a.review_state not in WITHDRAWN]


def _guard(obj: Obj, transition: str) -> bool:
    """The guards that matter for the synthetic flows (results, submission, verification)."""
    if obj.portal_type == "AnalysisRequest":
        valid = _valid(obj)
        if transition == "submit":
            return bool(valid) and all(a.review_state in SUBMITTED for a in valid)
        if transition == "verify":
            return bool(valid) and all(a.review_state in ("verified", "published") for a in valid)
        if transition == "cancel":
            return not any(a.review_state in SUBMITTED for a in analyses_of(obj))
        return True
    if obj.portal_type == "Analysis":
        sample = obj.parent
        assert sample is not None
        received = sample.review_state in ("sample_received", "to_be_verified")
        if transition in ("submit", "assign", "initialize") and not received:
            return False
        if transition == "submit":
            return str(obj.fields.get("Result") or "").strip() != ""
    return True


def available(obj: Obj) -> list[str]:
    """Transitions possible from the object's current state."""
    _, table = _table(obj)
    return [
        t for t, (sources, _) in table.items() if obj.review_state in sources and _guard(obj, t)
    ]


def transition(store: Store, obj: Obj, name: str, actor: str) -> None:
    """Perform a transition and its cascades, or raise WorkflowError."""
    _, table = _table(obj)
    if name not in available(obj):
        valid = "\n".join(available(obj))
        raise WorkflowError(f"Invalid transition '{name}'.\nValid transitions are:\n{valid}")
    _set_state(store, obj, table[name][1], name, actor)
    _AFTER.get((obj.portal_type, name), _noop)(store, obj, actor)


def _set_state(store: Store, obj: Obj, state: str, action: str, actor: str) -> None:
    obj.review_state = state
    store.touch(obj)
    obj.history.append(
        {
            "action": action,
            "actor": actor,
            "comments": "",
            "review_state": state,
            "time": obj.modified,
        }
    )
    if obj.portal_type == "Analysis" and obj.parent is not None:
        store.touch(obj.parent)


def _try(store: Store, obj: Obj, name: str, actor: str) -> None:
    if name in available(obj):
        transition(store, obj, name, actor)


def _noop(_store: Store, _obj: Obj, _actor: str) -> None:
    return None


def _after_receive(store: Store, sample: Obj, actor: str) -> None:
    sample.fields["DateReceived"] = sample.modified
    for analysis in analyses_of(sample):
        _try(store, analysis, "initialize", actor)


def _after_verify_sample(_store: Store, sample: Obj, _actor: str) -> None:
    sample.fields["DateVerified"] = sample.modified


def _after_publish_sample(store: Store, sample: Obj, actor: str) -> None:
    sample.fields["DatePublished"] = sample.modified
    for analysis in analyses_of(sample):
        _try(store, analysis, "publish", actor)


def _after_cancel_sample(store: Store, sample: Obj, actor: str) -> None:
    for analysis in analyses_of(sample):
        _try(store, analysis, "cancel", actor)


def _after_reject_sample(store: Store, sample: Obj, actor: str) -> None:
    for analysis in analyses_of(sample):
        _try(store, analysis, "reject", actor)


def _after_retract_sample(store: Store, sample: Obj, actor: str) -> None:
    for analysis in analyses_of(sample):
        if analysis.review_state == "to_be_verified":
            _set_state(store, analysis, "retracted", "retract", actor)
            _create_retest(store, analysis)


def _after_analysis_progress(store: Store, analysis: Obj, actor: str) -> None:
    """Submit/verify/reject of an analysis may complete the sample's step (SENAITE's events)."""
    sample = analysis.parent
    assert sample is not None
    _try(store, sample, "submit", actor)
    _try(store, sample, "verify", actor)


def _after_retract_analysis(store: Store, analysis: Obj, actor: str) -> None:
    _create_retest(store, analysis)
    sample = analysis.parent
    assert sample is not None
    if sample.review_state in ("to_be_verified", "verified"):
        _set_state(store, sample, "sample_received", "rollback_to_receive", actor)


def _after_retest(store: Store, analysis: Obj, actor: str) -> None:
    _create_retest(store, analysis)
    sample = analysis.parent
    assert sample is not None
    if sample.review_state == "to_be_verified":
        _set_state(store, sample, "sample_received", "rollback_to_receive", actor)


def _create_retest(store: Store, original: Obj) -> Obj:
    """A fresh copy of the analysis, `RetestOf` the original (ids: CREA, CREA-1, CREA-2 ...)."""
    sample = original.parent
    assert sample is not None
    keyword = str(original.fields.get("Keyword") or original.id)
    n = 1
    while f"{keyword}-{n}" in sample.children:
        n += 1
    fields = {
        k: v
        for k, v in original.fields.items()
        if k not in ("Result", "ResultCaptureDate", "DetectionLimitOperand", "Remarks")
    }
    fields["RetestOf"] = original.uid
    return store.add(
        sample,
        "Analysis",
        f"{keyword}-{n}",
        title=original.title,
        description=original.description,
        fields=fields,
        review_state="unassigned",
    )


_AFTER: dict[tuple[str, str], Callable[[Store, Obj, str], None]] = {
    ("AnalysisRequest", "receive"): _after_receive,
    ("AnalysisRequest", "verify"): _after_verify_sample,
    ("AnalysisRequest", "publish"): _after_publish_sample,
    ("AnalysisRequest", "cancel"): _after_cancel_sample,
    ("AnalysisRequest", "reject"): _after_reject_sample,
    ("AnalysisRequest", "retract"): _after_retract_sample,
    ("Analysis", "submit"): _after_analysis_progress,
    ("Analysis", "verify"): _after_analysis_progress,
    ("Analysis", "reject"): _after_analysis_progress,
    ("Analysis", "retract"): _after_retract_analysis,
    ("Analysis", "retest"): _after_retest,
}


def workflow_info(obj: Obj, ctx: Context) -> dict[str, Any]:
    """`workflow=yes` output: state, possible transitions and the review history."""
    wf_id, _ = _table(obj)
    if obj.review_state is None:
        return {"workflow_info": []}
    url = ctx.url(obj)
    transitions = [
        {
            "title": t.capitalize(),
            "value": t,
            "display": "",
            "url": f"{url}/content_status_modify?workflow_action={t}",
        }
        for t in available(obj)
    ]
    history = [{**h, "time": h["time"].strftime("%Y-%m-%d %H:%M:%S")} for h in obj.history]
    return {
        "workflow_info": [
            {
                "workflow": wf_id,
                "status": STATE_TITLES.get(obj.review_state, obj.review_state),
                "review_state": obj.review_state,
                "transitions": transitions,
                "review_history": history,
            }
        ]
    }
