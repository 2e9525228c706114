"""The app as a CDS Hooks 2.0 client: discovery, prefetch, the hook call, feedback.

OpenEMR fires no hooks (source-systems.md §1.10), so the order page does, as the spec's client:
every call carries an ES384 JWT signed with the app's key (`iss` = the app, `aud` = the exact URL
called, `jku` = its public JWKS, 5-minute life, fresh `jti`; #trusting-cds-clients); prefetch is
fulfilled from the facade by the service's own templates, failed keys omitted, never null
(#prefetch-template); `fhirServer` and `fhirAuthorization` let the service fetch what is missing.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from cds_hooks.client import sign_client_jwt
from smart_app.state import SmartState

log = logging.getLogger(__name__)
TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")


@dataclass(slots=True)
class HookContext:
    """Who and what a call is about; `fhir_token` is the facade token the pages use."""

    base: str  # the app's public base
    facade: str
    fhir_token: str
    patient: str
    user: str
    encounter: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServiceRef:
    url: str  # {base}/cds-services/{id}
    id: str
    hook: str
    prefetch: Mapping[str, str]
    title: str


def _jwt(state: SmartState, ctx: HookContext, aud: str) -> str:
    return sign_client_jwt(
        state.key.key,
        iss=ctx.base + "/smart",
        aud=aud,
        kid=state.key.kid,
        alg="ES384",
        jku=ctx.base + "/smart/.well-known/jwks.json",
        sub=ctx.user,
    )


async def discover(
    state: SmartState, ctx: HookContext, bases: Sequence[str], hook: str
) -> list[ServiceRef]:
    """The services, across the configured CDS servers, that answer this hook (discovery is
    called with a JWT too: a service may keep its catalogue to trusted clients)."""
    found: list[ServiceRef] = []
    for base in bases:
        headers = {
            "Accept": "application/json",
            "Authorization": f"Bearer {_jwt(state, ctx, base)}",
        }
        try:
            response = await state.http.get(base, headers=headers)
            response.raise_for_status()
            services = response.json().get("services", [])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning("CDS discovery at %s failed: %s", base, exc)
            continue
        for s in services:
            if isinstance(s, dict) and s.get("hook") == hook and s.get("id"):
                found.append(
                    ServiceRef(
                        url=f"{base}/{s['id']}",
                        id=str(s["id"]),
                        hook=hook,
                        prefetch=s.get("prefetch") or {},
                        title=str(s.get("title") or s["id"]),
                    )
                )
    return found


def _render(template: str, values: Mapping[str, str]) -> str | None:
    """A prefetch template with its tokens replaced; None when a token has no value."""
    missing = False

    def sub(match: re.Match[str]) -> str:
        nonlocal missing
        value = values.get(match.group(1))
        if value is None:
            missing = True
            return ""
        return value

    out = TOKEN.sub(sub, template)
    return None if missing else out


async def prefetch(
    state: SmartState, ctx: HookContext, templates: Mapping[str, str]
) -> dict[str, Any]:
    user_type, _, user_id = ctx.user.partition("/")
    values = {
        "context.patientId": ctx.patient,
        "context.userId": ctx.user,
        f"user{user_type}Id": user_id,
        "userPractitionerId": user_id if user_type == "Practitioner" else None,
        **({"context.encounterId": ctx.encounter} if ctx.encounter else {}),
    }
    headers = {"Authorization": f"Bearer {ctx.fhir_token}", "Accept": "application/fhir+json"}
    out: dict[str, Any] = {}
    for key, template in templates.items():
        url = _render(template, {k: v for k, v in values.items() if v is not None})
        if url is None:
            continue
        try:
            response = await state.http.get(f"{ctx.facade}/{url}", headers=headers)
        except httpx.HTTPError:
            continue
        if response.status_code == 200:
            out[key] = response.json()
    return out


async def call(
    state: SmartState, ctx: HookContext, service: ServiceRef, context: Mapping[str, Any]
) -> dict[str, Any]:
    """One hook call; the response (cards, systemActions), or an `error` entry when it failed."""
    body = {
        "hook": service.hook,
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": ctx.facade,
        "fhirAuthorization": {
            "access_token": ctx.fhir_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.rs",
            "subject": state.settings.client_id or "cdss-smart",
            "patient": ctx.patient,
        },
        "context": dict(context),
        "prefetch": await prefetch(state, ctx, service.prefetch),
    }
    headers = {"Authorization": f"Bearer {_jwt(state, ctx, service.url)}"}
    try:
        response = await state.http.post(service.url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        return {"error": f"{service.title} could not be reached ({exc})", "cards": []}
    if response.status_code != 200:
        return {"error": f"{service.title} answered {response.status_code}", "cards": []}
    answer = response.json()
    for card in answer.get("cards", []):
        card["_service"] = service.url
    return dict(answer)


async def feedback(
    state: SmartState, ctx: HookContext, service_url: str, item: Mapping[str, Any]
) -> int:
    """POST {service}/feedback for one card; the HTTP status (feedback is best effort)."""
    url = f"{service_url}/feedback"
    body = {
        "feedback": [{**item, "outcomeTimestamp": datetime.now(UTC).isoformat(timespec="seconds")}]
    }
    headers = {"Authorization": f"Bearer {_jwt(state, ctx, url)}"}
    try:
        response = await state.http.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        log.warning("CDS feedback to %s failed: %s", url, exc)
        return 502
    return response.status_code
