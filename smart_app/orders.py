"""Order entry: the catalogue, the drafts, the CDS dialogue (order-select, order-sign), signing.

The page is server-rendered (catalogue, drafts); orders.js runs the dialogue through the JSON
routes below, which keep the drafts and the last cards server-side in the session, so the browser
never holds a token and cannot forge a suggestion: it names a card and a suggestion by uuid and
the server applies what the CDS service sent. Signing posts each draft to the facade as an active
order (routed to the LIS or the worklist by the orders module) and the page follows its status.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from smart_app import cds, order_drafts, pages
from smart_app.delegation import facade_token
from smart_app.fhir import FhirAccess
from smart_app.oauth import LaunchError
from smart_app.sessions import Session
from smart_app.state import SmartState


def _catalogue_html() -> str:
    groups = []
    for kind, title in (("imaging", "Imaging"), ("lab", "Laboratory")):
        items = "".join(
            f'<label><input type="checkbox" name="order" value="{escape(o.key)}"> '
            f"{escape(o.display)}</label>"
            for o in order_drafts.orderables()
            if o.kind == kind
        )
        groups.append(f'<fieldset class="catalogue"><legend>{title}</legend>{items}</fieldset>')
    return "".join(groups)


def build_router(state: SmartState) -> APIRouter:
    router = APIRouter()

    def require(request: Request) -> Session:
        session = state.session(request)
        if session is None or not session.authorized:
            raise LaunchError("No SMART session: launch the app from the EHR", 401)
        return session

    async def hook_context(request: Request, session: Session) -> cds.HookContext:
        base = state.base(request)
        facade = state.facade(request)
        return cds.HookContext(
            base=base,
            facade=facade,
            fhir_token=await facade_token(state, session, base, facade),
            patient=session.patient or "",
            user=session.user or "Practitioner/unknown",
            encounter=session.encounter,
        )

    async def fire(
        request: Request, session: Session, hook: str, selections: list[str]
    ) -> dict[str, Any]:
        ctx = await hook_context(request, session)
        context: dict[str, Any] = {
            "userId": ctx.user,
            "patientId": ctx.patient,
            "draftOrders": order_drafts.bundle(session.drafts),
        }
        if ctx.encounter:
            context["encounterId"] = ctx.encounter
        if hook == "order-select":
            context["selections"] = selections
        cards: list[dict[str, Any]] = []
        errors: list[str] = []
        for service in await cds.discover(state, ctx, state.cds_services(request), hook):
            answer = await cds.call(state, ctx, service, context)
            cards += answer.get("cards", [])
            if answer.get("error"):
                errors.append(str(answer["error"]))
        session.cards = {str(c.get("uuid")): c for c in cards if c.get("uuid")}
        return {"cards": cards, "errors": errors}

    def snapshot(session: Session, **extra: Any) -> JSONResponse:
        drafts = [
            {
                "id": k,
                "key": order_drafts.code_key(r),
                "text": (r.get("code") or {}).get("text", ""),
            }
            for k, r in session.drafts.items()
        ]
        cards = list(session.cards.values())
        return JSONResponse({"drafts": drafts, "cards": cards, **extra})

    @router.get("/orders")
    async def page(request: Request) -> Response:
        fhir = FhirAccess(state, request, require(request))
        banner = pages.patient_banner(await fhir.read("Patient", fhir.session.patient or ""))
        body = (
            '<form id="orders" aria-describedby="orders-help">'
            '<p id="orders-help" class="muted">Pick tests and imaging; decision support answers '
            "as you select and again when you sign.</p>"
            f"{_catalogue_html()}"
            '<section aria-label="Draft orders"><h2>Draft orders</h2>'
            '<ul id="drafts"></ul></section>'
            '<section aria-label="Decision support" aria-live="polite">'
            "<h2>Decision support</h2>"
            '<div id="cards"><p class="muted">No cards.</p></div></section>'
            '<button type="button" id="sign">Sign orders</button>'
            '<section aria-label="Signed orders"><h2>Signed orders</h2>'
            '<ul id="signed"></ul></section></form>'
        )
        head = f'<script type="module" src="{pages.STATIC}/orders.js"></script>'
        return pages.layout("Orders", body, banner=banner, active="orders", head=head)

    @router.post("/api/orders/select")
    async def select(request: Request) -> Response:
        session = require(request)
        body = await request.json()
        item = order_drafts.find(str(body.get("key", "")))
        if item is None:
            raise LaunchError("Unknown orderable")
        existing = [k for k, r in session.drafts.items() if order_drafts.code_key(r) == item.key]
        if not body.get("checked", True):
            for key in existing:
                session.drafts.pop(key)
            return snapshot(session)
        if existing:
            return snapshot(session)
        resource = order_drafts.draft(
            item, session.patient or "", session.user or "Practitioner/unknown", session.encounter
        )
        session.drafts[resource["id"]] = resource
        fired = await fire(request, session, "order-select", [f"ServiceRequest/{resource['id']}"])
        return snapshot(session, errors=fired["errors"])

    @router.post("/api/orders/accept")
    async def accept(request: Request) -> Response:
        session = require(request)
        body = await request.json()
        card = session.cards.get(str(body.get("card")))
        suggestion = next(
            (
                s
                for s in (card or {}).get("suggestions", [])
                if s.get("uuid") == body.get("suggestion")
            ),
            None,
        )
        if card is None or suggestion is None:
            raise LaunchError("That suggestion is no longer on offer")
        done = order_drafts.apply_actions(session.drafts, suggestion.get("actions", []))
        ctx = await hook_context(request, session)
        await cds.feedback(
            state,
            ctx,
            str(card["_service"]),
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": suggestion["uuid"]}],
            },
        )
        session.cards.pop(str(card["uuid"]), None)
        return snapshot(session, done=done)

    @router.post("/api/orders/override")
    async def override(request: Request) -> Response:
        session = require(request)
        body = await request.json()
        card = session.cards.get(str(body.get("card")))
        if card is None:
            raise LaunchError("That card is no longer shown")
        reasons = card.get("overrideReasons") or []
        reason = next((r for r in reasons if r.get("code") == body.get("reason")), None)
        if reasons and reason is None:
            raise LaunchError("Choose one of the card's override reasons")
        item: dict[str, Any] = {"card": card["uuid"], "outcome": "overridden"}
        if reason is not None:
            item["overrideReason"] = {"reason": reason}
        if body.get("comment"):
            item.setdefault("overrideReason", {})["userComment"] = str(body["comment"])[:500]
        ctx = await hook_context(request, session)
        await cds.feedback(state, ctx, str(card["_service"]), item)
        session.cards.pop(str(card["uuid"]), None)
        return snapshot(session)

    @router.post("/api/orders/sign")
    async def sign(request: Request) -> Response:
        session = require(request)
        body = await request.json()
        if not session.drafts:
            raise LaunchError("There are no draft orders to sign")
        if not body.get("confirm"):
            fired = await fire(request, session, "order-sign", [])
            if fired["cards"]:
                return snapshot(session, errors=fired["errors"], review=True)
        fhir = FhirAccess(state, request, session)
        for key, resource in list(session.drafts.items()):
            order = {k: v for k, v in resource.items() if k != "id"}
            order["status"], order["intent"] = "active", "order"
            created = await fhir.create(order)
            session.signed.append(str(created.get("id")))
            session.drafts.pop(key)
        session.cards = {}
        return snapshot(session, signed=await _signed(state, request, session))

    @router.get("/api/orders/status")
    async def status(request: Request) -> Response:
        session = require(request)
        return JSONResponse({"signed": await _signed(state, request, session)})

    return router


async def _signed(state: SmartState, request: Request, session: Session) -> list[dict[str, Any]]:
    fhir = FhirAccess(state, request, session)
    out = []
    for sid in session.signed:
        sr = await fhir.read("ServiceRequest", sid)
        out.append(
            {
                "id": sid,
                "text": (sr.get("code") or {}).get("text", ""),
                "status": sr.get("status"),
                "identifiers": [i.get("value") for i in sr.get("identifier", [])],
            }
        )
    return out
