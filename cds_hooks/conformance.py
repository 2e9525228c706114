"""Independent checks of CDS Hooks 2.0 payloads against the spec's rules and invariants.

Used by the conformance tests on every response the service sends and on the official examples,
and usable by anyone debugging a client or service. Each check names the rule it enforces: the
FHIRPath invariants of the CDS Hooks logical models (HL7/cds-hooks input/fsh/invariants, quoted
in INVARIANTS so a FHIRPath engine can run the same expressions) and the prose rules of
https://cds-hooks.hl7.org/2.0/ (#use-of-json, #card-attributes, #discovery, #feedback).
Deliberately written apart from cards.py: a bug there must not hide itself here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

#: invariant id -> (context path in the payload, FHIRPath expression), from HL7/cds-hooks.
INVARIANTS: dict[str, tuple[str, str]] = {
    "cds-resp-1": (
        "cards",
        "(selectionBehavior = 'at-most-one') implies suggestions.where(isRecommended).count() <= 1",
    ),
    "cds-resp-2": (
        "cards.suggestions.actions",
        "(type = 'delete') implies (resourceId.exists() and resource.empty())",
    ),
    "cds-resp-3": ("cards.links", "(type != 'smart') implies (appContext.empty())"),
    "cds-resp-4": ("cards.overrideReasons", "display.exists()"),
    "cds-resp-5": ("cards.suggestions", "actions.all(description.exists())"),
    "cds-resp-6": ("cards", "suggestions.exists() implies selectionBehavior.exists()"),
    "cds-resp-7": (
        "cards.suggestions",
        "actionSelectionBehavior.empty() or actionSelectionBehavior = 'all' or "
        "actionSelectionBehavior = 'any' or actionSelectionBehavior = 'at-most-one'",
    ),
    "cds-fb-1": ("feedback", "outcome = 'accepted' or outcome = 'overridden'"),
    "cds-fb-2": ("feedback", "(outcome = 'accepted') implies acceptedSuggestions.exists()"),
    "cds-fb-3": ("feedback.overrideReason", "reason.exists() or userComment.exists()"),
    "cds-r-1": ("", "fhirAuthorization.exists() implies fhirServer.exists()"),
}


def _empty_members(value: Any, path: str, out: list[str]) -> None:
    """#use-of-json: no null and no empty string, array or object (except `cards: []`)."""
    if value is None or value in ("", [], {}):
        if path != "cards":
            out.append(f"{path or '$'}: null or empty member (#use-of-json)")
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            _empty_members(v, f"{path}.{k}" if path else k, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _empty_members(v, f"{path}[{i}]", out)


def _absolute(url: Any) -> bool:
    parts = urlsplit(url) if isinstance(url, str) else None
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.netloc)


def _coding(c: Any, where: str, out: list[str], *, display: bool) -> None:
    if not isinstance(c, Mapping):
        out.append(f"{where}: not a Coding")
        return
    for k in ("system", "code") + (("display",) if display else ()):
        if not isinstance(c.get(k), str) or not c[k]:
            out.append(f"{where}.{k} is required (#coding{', cds-resp-4' if display else ''})")


def check_response(body: Any, *, require_uuid: bool = False) -> list[str]:
    """Problems of a service response; `require_uuid` adds this project's own rule (the spec
    makes uuid optional, but feedback can only name a card that has one)."""
    out: list[str] = []
    if not isinstance(body, Mapping) or not isinstance(body.get("cards"), list):
        return ["cards is required and must be an array (#cds-service-response)"]
    _empty_members(body, "", out)
    for i, card in enumerate(body["cards"]):
        _card(card, f"cards[{i}]", out, require_uuid)
    if require_uuid:
        uuids = [c.get("uuid") for c in body["cards"] if isinstance(c, Mapping)]
        uuids += [
            s.get("uuid")
            for c in body["cards"]
            if isinstance(c, Mapping)
            for s in c.get("suggestions") or ()
            if isinstance(s, Mapping)
        ]
        if len(uuids) != len(set(uuids)):
            out.append("card and suggestion uuids must be unique (feedback names them)")
    for i, action in enumerate(body.get("systemActions") or ()):
        _action(action, f"systemActions[{i}]", out)
    return out


def _card(card: Any, where: str, out: list[str], require_uuid: bool) -> None:
    if not isinstance(card, Mapping):
        out.append(f"{where}: not an object")
        return
    if require_uuid and not isinstance(card.get("uuid"), str):
        out.append(f"{where}.uuid missing (needed for feedback)")
    summary = card.get("summary")
    if not isinstance(summary, str) or not summary or len(summary) >= 140:
        out.append(f"{where}.summary is required and under 140 characters (#card-attributes)")
    if card.get("indicator") not in ("info", "warning", "critical"):
        out.append(f"{where}.indicator must be info, warning or critical (#card-attributes)")
    if "detail" in card and not isinstance(card["detail"], str):
        out.append(f"{where}.detail must be a (Markdown) string")
    source = card.get("source")
    if not isinstance(source, Mapping) or not isinstance(source.get("label"), str):
        out.append(f"{where}.source.label is required (#source)")
    else:
        for k in ("url", "icon"):
            if k in source and not _absolute(source[k]):
                out.append(f"{where}.source.{k} must be an absolute URL (#source)")
        if "topic" in source:
            _coding(source["topic"], f"{where}.source.topic", out, display=False)
    suggestions = card.get("suggestions") or []
    if suggestions and "selectionBehavior" not in card:
        out.append(f"{where}: suggestions without selectionBehavior (cds-resp-6)")
    if "selectionBehavior" in card and card["selectionBehavior"] not in ("at-most-one", "any"):
        out.append(f"{where}.selectionBehavior must be at-most-one or any (#card-attributes)")
    recommended = sum(1 for s in suggestions if isinstance(s, Mapping) and s.get("isRecommended"))
    if card.get("selectionBehavior") == "at-most-one" and recommended > 1:
        out.append(f"{where}: more than one isRecommended under at-most-one (cds-resp-1)")
    for j, s in enumerate(suggestions):
        _suggestion(s, f"{where}.suggestions[{j}]", out)
    for j, reason in enumerate(card.get("overrideReasons") or ()):
        _coding(reason, f"{where}.overrideReasons[{j}]", out, display=True)
    for j, link in enumerate(card.get("links") or ()):
        _link(link, f"{where}.links[{j}]", out)


def _suggestion(s: Any, where: str, out: list[str]) -> None:
    if not isinstance(s, Mapping) or not isinstance(s.get("label"), str):
        out.append(f"{where}.label is required (#suggestion)")
        return
    if "isRecommended" in s and not isinstance(s["isRecommended"], bool):
        out.append(f"{where}.isRecommended must be a boolean (#suggestion)")
    if s.get("actionSelectionBehavior", "all") not in ("all", "any", "at-most-one"):
        out.append(f"{where}.actionSelectionBehavior is not all|any|at-most-one (cds-resp-7)")
    for k, action in enumerate(s.get("actions") or ()):
        _action(action, f"{where}.actions[{k}]", out)


def _action(a: Any, where: str, out: list[str]) -> None:
    if not isinstance(a, Mapping):
        out.append(f"{where}: not an object")
        return
    kind = a.get("type")
    if kind not in ("create", "update", "delete"):
        out.append(f"{where}.type must be create, update or delete (#action)")
    if not isinstance(a.get("description"), str) or not a["description"]:
        out.append(f"{where}.description is required (cds-resp-5)")
    resource = a.get("resource")
    if kind == "delete" and (not isinstance(a.get("resourceId"), str) or resource is not None):
        out.append(f"{where}: delete takes a resourceId and no resource (cds-resp-2)")
    if kind in ("create", "update") and not (
        isinstance(resource, Mapping) and isinstance(resource.get("resourceType"), str)
    ):
        out.append(f"{where}: {kind} needs a FHIR resource (#action)")
    if kind == "update" and isinstance(resource, Mapping) and not resource.get("id"):
        out.append(f"{where}: update carries the whole resource, with its id (#action)")


def _link(link: Any, where: str, out: list[str]) -> None:
    if not isinstance(link, Mapping):
        out.append(f"{where}: not an object")
        return
    if not isinstance(link.get("label"), str) or not link["label"]:
        out.append(f"{where}.label is required (#link)")
    if not _absolute(link.get("url")):
        out.append(f"{where}.url must be an absolute URL (#link)")
    if link.get("type") not in ("absolute", "smart"):
        out.append(f"{where}.type must be absolute or smart (#link)")
    if "appContext" in link and link.get("type") != "smart":
        out.append(f"{where}: appContext only on smart links (cds-resp-3)")
    if "appContext" in link and not isinstance(link["appContext"], str):
        out.append(f"{where}.appContext must be a string (#link)")


def check_discovery(body: Any) -> list[str]:
    out: list[str] = []
    if not isinstance(body, Mapping) or not isinstance(body.get("services"), list):
        return ["services is required and must be an array (#discovery)"]
    for i, s in enumerate(body["services"]):
        where = f"services[{i}]"
        for k in ("hook", "description", "id"):
            if not isinstance(s.get(k), str) or not s[k]:
                out.append(f"{where}.{k} is required (#response)")
        prefetch = s.get("prefetch", {})
        if not isinstance(prefetch, Mapping) or not all(
            isinstance(v, str) for v in prefetch.values()
        ):
            out.append(f"{where}.prefetch must map keys to query templates (#prefetch-template)")
        for key, template in prefetch.items() if isinstance(prefetch, Mapping) else ():
            for banned in ("draftOrders", "selections"):
                if f"context.{banned}" in str(template):
                    out.append(f"{where}.prefetch.{key} uses {banned} (Hook Library: SHALL NOT)")
    pairs = [(s.get("id"), s.get("hook")) for s in body["services"]]
    if len(pairs) != len(set(pairs)):
        out.append("the same (id, hook) is listed twice")
    return out


def check_feedback(body: Any) -> list[str]:
    out: list[str] = []
    if not isinstance(body, Mapping) or not isinstance(body.get("feedback"), list):
        return ["feedback is required and must be an array (#feedback)"]
    _empty_members(body, "", out)
    for i, f in enumerate(body["feedback"]):
        where = f"feedback[{i}]"
        if not isinstance(f, Mapping) or not isinstance(f.get("card"), str):
            out.append(f"{where}.card is required (#feedback)")
            continue
        if f.get("outcome") not in ("accepted", "overridden"):
            out.append(f"{where}.outcome must be accepted or overridden (cds-fb-1)")
        if f.get("outcome") == "accepted" and not f.get("acceptedSuggestions"):
            out.append(f"{where}: accepted without acceptedSuggestions (cds-fb-2)")
        reason = f.get("overrideReason")
        if reason is not None and not (
            isinstance(reason, Mapping) and ("reason" in reason or "userComment" in reason)
        ):
            out.append(f"{where}.overrideReason needs a reason or a userComment (cds-fb-3)")
        if not isinstance(f.get("outcomeTimestamp"), str):
            out.append(f"{where}.outcomeTimestamp is required (#feedback)")
    return out
