"""Cards, suggestions, actions and links that cannot break the CDS Hooks 2.0 response rules.

Building a card through these types is the only way services answer, so every rule of the spec's
"CDS Service Response" section is enforced once, here, instead of trusted to each service:
a uuid on every card and suggestion (feedback can only refer to what has one), a summary of at
most 139 characters (the spec says "<140"), a known indicator, a source label, suggestions with a
selectionBehavior (cds-resp-6) and at most one recommended under at-most-one (cds-resp-1),
actions shaped per type (create: a new resource; update: the whole resource; delete: a
resourceId and no resource, cds-resp-2), every action described (cds-resp-5), override reasons
with system, code and display (cds-resp-4), links typed absolute|smart with appContext only on
smart links (cds-resp-3), and no null or empty member on the wire (#use-of-json).
A violation is a programming error and raises CardRuleError before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from cds_hooks.ids import new_uuid

Indicator = Literal["info", "warning", "critical"]
SelectionBehavior = Literal["at-most-one", "any"]
ActionType = Literal["create", "update", "delete"]
LinkType = Literal["absolute", "smart"]

SUMMARY_MAX = 139
INDICATORS: tuple[Indicator, ...] = ("info", "warning", "critical")
CARD_KIND_SYSTEM = "urn:cdss:codesystem:cds-card-kind"
OVERRIDE_REASON_SYSTEM = "urn:cdss:codesystem:cds-override-reason"


class CardRuleError(ValueError):
    """A card that would break the CDS Hooks response rules."""


def _absolute(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CardRuleError(f"{what} must be an absolute http(s) URL, not {url!r}")
    return url


def _text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CardRuleError(f"{what} must be a non-empty string")
    return value


def shorten(text: str, limit: int = SUMMARY_MAX) -> str:
    """Collapse whitespace and cut to `limit` characters with an ellipsis when longer."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


# Inline Markdown only: the text is flattened to one line and never starts a line, so the
# block markers (#, -, +, "1.") cannot take effect and are left alone.
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()!|<>~"})


def md_escape(text: str) -> str:
    """Escape text taken from FHIR data before it goes into Markdown, so that a display string
    cannot inject a link, an image or HTML into the clinician's view."""
    return " ".join(str(text).split()).translate(_MD_SPECIAL)


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str
    display: str | None = None

    def __post_init__(self) -> None:
        _text(self.system, "Coding.system")
        _text(self.code, "Coding.code")

    def to_json(self) -> dict[str, Any]:
        out = {"system": self.system, "code": self.code}
        if self.display:
            out["display"] = self.display
        return out


def override_reason(code: str, display: str) -> Coding:
    return Coding(OVERRIDE_REASON_SYSTEM, code, _text(display, "overrideReason.display"))


#: Reasons offered on every card that has suggestions; clients may add their own.
STANDARD_OVERRIDE_REASONS: tuple[Coding, ...] = (
    override_reason("not-applicable", "Not applicable to this patient"),
    override_reason("benefit-outweighs-risk", "Clinical benefit outweighs the risk"),
    override_reason("already-addressed", "Already addressed"),
    override_reason("data-incorrect", "The data behind this card is incorrect"),
)


@dataclass(frozen=True, slots=True)
class Source:
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None

    def __post_init__(self) -> None:
        _text(self.label, "source.label")
        if self.url is not None:
            _absolute(self.url, "source.url")
        if self.icon is not None:
            _absolute(self.icon, "source.icon")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label}
        if self.url:
            out["url"] = self.url
        if self.icon:
            out["icon"] = self.icon
        if self.topic:
            out["topic"] = self.topic.to_json()
        return out


@dataclass(frozen=True, slots=True)
class Action:
    type: ActionType
    description: str
    resource: Mapping[str, Any] | None = None
    resource_id: str | None = None

    def __post_init__(self) -> None:
        _text(self.description, "action.description")  # cds-resp-5
        if self.type == "delete":
            if not self.resource_id or self.resource is not None:  # cds-resp-2
                raise CardRuleError("a delete action takes a resourceId and no resource")
            _relative_reference(self.resource_id)
        elif self.type in ("create", "update"):
            if not isinstance(self.resource, Mapping) or not self.resource.get("resourceType"):
                raise CardRuleError(f"a {self.type} action needs a FHIR resource")
            if self.type == "update" and not self.resource.get("id"):
                raise CardRuleError("an update action carries the whole resource, with its id")
        else:
            raise CardRuleError(f"unknown action type {self.type!r}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.resource is not None:
            out["resource"] = dict(self.resource)
        if self.resource_id:
            out["resourceId"] = self.resource_id
        return out


def _relative_reference(ref: str) -> None:
    rtype, _, rid = ref.partition("/")
    if not rtype[:1].isupper() or not rid or "/" in rid:
        raise CardRuleError(f"resourceId must be a relative reference Type/id, not {ref!r}")


def create(resource: Mapping[str, Any], description: str) -> Action:
    return Action("create", description, resource=resource)


def update(resource: Mapping[str, Any], description: str) -> Action:
    """The spec wants the updated resource in its entirety, never a patch."""
    return Action("update", description, resource=resource)


def delete(resource_id: str, description: str) -> Action:
    return Action("delete", description, resource_id=resource_id)


@dataclass(frozen=True, slots=True)
class Suggestion:
    label: str
    actions: tuple[Action, ...] = ()
    is_recommended: bool | None = None
    uuid: str = field(default_factory=new_uuid)

    def __post_init__(self) -> None:
        _text(self.label, "suggestion.label")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "uuid": self.uuid}
        if self.is_recommended is not None:
            out["isRecommended"] = self.is_recommended
        if self.actions:
            out["actions"] = [a.to_json() for a in self.actions]
        return out


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str
    type: LinkType
    app_context: str | None = None
    autolaunchable: bool | None = None

    def __post_init__(self) -> None:
        _text(self.label, "link.label")
        _absolute(self.url, "link.url")
        if self.type not in ("absolute", "smart"):
            raise CardRuleError(f"link.type must be absolute or smart, not {self.type!r}")
        if self.app_context is not None and self.type != "smart":  # cds-resp-3
            raise CardRuleError("appContext is only valid on smart links")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "url": self.url, "type": self.type}
        if self.app_context:
            out["appContext"] = self.app_context
        if self.autolaunchable is not None:
            out["autolaunchable"] = self.autolaunchable
        return out


def absolute_link(label: str, url: str) -> Link:
    return Link(label, url, "absolute")


def smart_link(label: str, url: str, app_context: str | None = None) -> Link:
    return Link(label, url, "smart", app_context)


@dataclass(frozen=True, slots=True)
class Card:
    """One card. `kind` names the rule that made it (also sent as source.topic) so feedback can
    be reported per kind; `order` is the draft order it is about, kept for the audit."""

    summary: str
    indicator: Indicator
    source: Source
    kind: str
    detail: str | None = None
    suggestions: tuple[Suggestion, ...] = ()
    selection_behavior: SelectionBehavior | None = None
    override_reasons: tuple[Coding, ...] = ()
    links: tuple[Link, ...] = ()
    order: str | None = None
    uuid: str = field(default_factory=new_uuid)

    def __post_init__(self) -> None:
        _text(self.summary, "card.summary")
        if len(self.summary) > SUMMARY_MAX:
            raise CardRuleError(f"card.summary has {len(self.summary)} characters (max 139)")
        if self.indicator not in INDICATORS:
            raise CardRuleError(f"card.indicator must be one of {INDICATORS}")
        if self.suggestions and self.selection_behavior not in ("at-most-one", "any"):
            raise CardRuleError("cards with suggestions need selectionBehavior")  # cds-resp-6
        recommended = sum(1 for s in self.suggestions if s.is_recommended)
        if self.selection_behavior == "at-most-one" and recommended > 1:
            raise CardRuleError("at-most-one allows one recommended suggestion")  # cds-resp-1
        for reason in self.override_reasons:
            if not reason.display:
                raise CardRuleError("every override reason needs a display")  # cds-resp-4

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "uuid": self.uuid,
            "summary": self.summary,
            "indicator": self.indicator,
            "source": self.source.to_json(),
        }
        if self.detail:
            out["detail"] = self.detail
        if self.suggestions:
            out["suggestions"] = [s.to_json() for s in self.suggestions]
            out["selectionBehavior"] = self.selection_behavior
        if self.override_reasons:
            out["overrideReasons"] = [r.to_json() for r in self.override_reasons]
        if self.links:
            out["links"] = [link.to_json() for link in self.links]
        return out


def card(
    *,
    summary: str,
    indicator: Indicator,
    source: Source,
    kind: str,
    detail: str | None = None,
    suggestions: Sequence[Suggestion] = (),
    selection_behavior: SelectionBehavior | None = None,
    override_reasons: Iterable[Coding] | None = None,
    links: Sequence[Link] = (),
    order: str | None = None,
) -> Card:
    """A card with the defaults services want: summary shortened to 139 characters, the kind as
    source.topic, at-most-one selection and the standard override reasons when there are
    suggestions to override."""
    if source.topic is None:
        source = Source(source.label, source.url, source.icon, Coding(CARD_KIND_SYSTEM, kind))
    if suggestions and selection_behavior is None:
        selection_behavior = "at-most-one"
    if override_reasons is None:
        override_reasons = STANDARD_OVERRIDE_REASONS if suggestions else ()
    return Card(
        summary=shorten(summary),
        indicator=indicator,
        source=source,
        kind=kind,
        detail=detail,
        suggestions=tuple(suggestions),
        selection_behavior=selection_behavior,
        override_reasons=tuple(override_reasons),
        links=tuple(links),
        order=order,
    )


def response_json(cards: Iterable[Card], system_actions: Iterable[Action] = ()) -> dict[str, Any]:
    """The response body: `cards` always present (empty means no guidance), systemActions only
    when there are some."""
    out: dict[str, Any] = {"cards": [c.to_json() for c in cards]}
    actions = [a.to_json() for a in system_actions]
    if actions:
        out["systemActions"] = actions
    return out
