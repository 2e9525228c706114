"""The card builders refuse what the CDS Hooks response rules forbid (cards.py)."""

from __future__ import annotations

import pytest

from cds_hooks import cards
from cds_hooks.cards import Card, CardRuleError, Coding, Link, Source, Suggestion
from cds_hooks.conformance import check_response

SRC = Source("Guideline", "https://example.org/guideline")


def test_a_built_card_has_uuid_topic_reasons_and_no_empty_members() -> None:
    s = Suggestion("Do it", (cards.delete("ServiceRequest/1", "Delete it"),))
    c = cards.card(summary="x" * 200, indicator="warning", source=SRC, kind="k", suggestions=[s])
    body = cards.response_json([c])
    assert check_response(body, require_uuid=True) == []
    wire = body["cards"][0]
    assert len(wire["summary"]) == 139 and wire["summary"].endswith("…")
    assert wire["selectionBehavior"] == "at-most-one"
    assert wire["source"]["topic"] == {"system": cards.CARD_KIND_SYSTEM, "code": "k"}
    assert all(r["display"] for r in wire["overrideReasons"])
    assert wire["suggestions"][0]["uuid"] != wire["uuid"]
    assert "links" not in wire and "detail" not in wire


def test_no_guidance_is_an_empty_cards_array_without_system_actions() -> None:
    assert cards.response_json([]) == {"cards": []}


@pytest.mark.parametrize(
    "build",
    [
        lambda: Card("x" * 140, "info", SRC, "k"),  # summary < 140
        lambda: Card("ok", "urgent", SRC, "k"),  # type: ignore[arg-type]  # indicator
        lambda: Card("ok", "info", SRC, "k", suggestions=(Suggestion("a"),)),  # cds-resp-6
        lambda: Card(  # cds-resp-1
            "ok",
            "info",
            SRC,
            "k",
            suggestions=(
                Suggestion("a", is_recommended=True),
                Suggestion("b", is_recommended=True),
            ),
            selection_behavior="at-most-one",
        ),
        lambda: Card("ok", "info", SRC, "k", override_reasons=(Coding("s", "c"),)),  # cds-resp-4
        lambda: cards.Action("delete", "d", resource={"resourceType": "X"}),  # cds-resp-2
        lambda: cards.Action("delete", "d", resource_id="not a reference"),
        lambda: cards.Action("create", "", resource={"resourceType": "X"}),  # cds-resp-5
        lambda: cards.update({"resourceType": "ServiceRequest"}, "no id: not the whole resource"),
        lambda: Link("l", "https://a.example", "absolute", app_context="{}"),  # cds-resp-3
        lambda: Link("l", "/relative", "smart"),
        lambda: Source(""),
        lambda: Source("l", icon="/icon.png"),  # icon: absolute URL
        lambda: Suggestion(""),  # suggestion.label required
        lambda: cards.Action("patch", "d", resource={"resourceType": "X", "id": "1"}),  # type: ignore[arg-type]
        lambda: Source("l", url="ftp://x"),
    ],
)
def test_rule_violations_raise_before_anything_is_sent(build: object) -> None:
    with pytest.raises(CardRuleError):
        build()  # type: ignore[operator]


def test_markdown_escape_neutralises_links_and_html() -> None:
    text = cards.md_escape("[click](http://evil) <img src=x> *bold*")
    assert "\\[click\\]\\(http://evil\\)" in text and "\\<img" in text and "\\*bold\\*" in text
    assert cards.md_escape("0.12 mg-dL") == "0.12 mg-dL"
