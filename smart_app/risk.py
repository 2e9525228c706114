"""Risk page: the oncology risk card (patient-view at the `oncology-risk` CDS service), rendered
on the server with its drivers and the link to the model card. When the service is not offered
(not registered, or no promoted model), the page says the model is unavailable."""

from __future__ import annotations

import re
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from smart_app import cds, pages
from smart_app.delegation import facade_token
from smart_app.fhir import FhirAccess
from smart_app.oauth import LaunchError
from smart_app.state import SmartState

SERVICE_ID = "oncology-risk"
MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")


def _inline(text: str) -> str:
    """Escape, then render markdown's **bold** (the card detail is markdown, cds-hooks #card)."""
    parts = [escape(MD_ESCAPE.sub(r"\1", p)) for p in text.split("**")]
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def card_html(card: dict[str, Any]) -> str:
    indicator = escape(str(card.get("indicator", "info")))
    detail = "".join(
        f"<p>{_inline(line)}</p>" for line in str(card.get("detail", "")).split("\n") if line
    )
    source = card.get("source") or {}
    label = escape(str(source.get("label", "")))
    src = (
        f'<a href="{escape(str(source["url"]))}" target="_blank" rel="noopener">{label}</a>'
        if source.get("url")
        else label
    )
    links = "".join(
        f'<p><a class="link" href="{escape(str(link.get("url", "")))}" target="_blank" '
        f'rel="noopener">{escape(str(link.get("label", "")))}</a></p>'
        for link in card.get("links", [])
        if isinstance(link, dict)
    )
    return (
        f'<article class="card {indicator}" aria-label="{indicator}: '
        f'{escape(str(card.get("summary", "")))}"><h3>{escape(str(card.get("summary", "")))}'
        f'</h3>{detail}<p class="muted">Source: {src}</p>{links}</article>'
    )


def build_router(state: SmartState) -> APIRouter:
    router = APIRouter()

    @router.get("/risk")
    async def risk(request: Request) -> Response:
        session = state.session(request)
        if session is None or not session.authorized:
            raise LaunchError("No SMART session: launch the app from the EHR", 401)
        fhir = FhirAccess(state, request, session)
        banner = pages.patient_banner(await fhir.read("Patient", session.patient or ""))
        base, facade = state.base(request), state.facade(request)
        ctx = cds.HookContext(
            base=base,
            facade=facade,
            fhir_token=await facade_token(state, session, base, facade),
            patient=session.patient or "",
            user=session.user or "Practitioner/unknown",
            encounter=session.encounter,
        )
        services = [
            s
            for s in await cds.discover(state, ctx, state.cds_services(request), "patient-view")
            if s.id == SERVICE_ID
        ]
        if not services:
            body = (
                '<p role="status">The lung cancer risk model is unavailable: no CDS service '
                f"<code>{SERVICE_ID}</code> is offered.</p>"
            )
            return pages.layout("Risk", body, banner=banner, active="risk")
        context: dict[str, Any] = {"userId": ctx.user, "patientId": ctx.patient}
        if ctx.encounter:
            context["encounterId"] = ctx.encounter
        answer = await cds.call(state, ctx, services[0], context)
        cards = answer.get("cards", [])
        if answer.get("error"):
            body = f'<p role="alert" class="error">{escape(str(answer["error"]))}</p>'
        elif not cards:
            body = "<p>The risk model had nothing to report for this patient.</p>"
        else:
            body = "".join(card_html(c) for c in cards)
        return pages.layout("Risk", body, banner=banner, active="risk")

    return router
