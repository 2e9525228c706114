"""The token the app shows the facade: its own, short-lived, bound to the launched patient.

OpenEMR cannot scope the imaging the viewer reads: its authorization server knows no
`ImagingStudy` scope at all (source-systems.md §1.4) and its access tokens carry no patient. So,
as cds-hooks-and-smart.md §4.7 prescribes for a backend-for-frontend, the app calls the facade
with its own credentials restricted to the launched patient: an ES384 JWT signed with the app's
key (public at /smart/.well-known/jwks.json, trusted by the facade through CDSS_FHIR_ISSUERS)
with `patient/*.rs`, the launch's `patient`, the user as `sub`/`fhirUser`, a 5-minute life. One is
minted only while the user's EHR session is live (refreshed when it can be), so ending the EHR
session ends the app's access. CDSS_SMART_FACADE_TOKEN=user sends the EHR's token instead (for
EHRs that can grant every resource type the pages read).
"""

from __future__ import annotations

import time
import uuid

from joserfc import jwt

from smart_app.sessions import Session
from smart_app.state import SmartState

LIFETIME_S = 300
SCOPE = "patient/*.rs patient/ServiceRequest.c"  # read the record, sign orders


def app_issuer(base: str) -> str:
    return base.rstrip("/") + "/smart"


async def facade_token(state: SmartState, session: Session, base: str, facade: str) -> str:
    user_token = await state.access_token(session)  # 401 once the EHR session is over
    if state.settings.facade_token == "user":
        return user_token
    cached = session.facade_token
    if cached is not None and cached[1] - 30 > time.time():
        return cached[0]
    now = int(time.time())
    claims = {
        "iss": app_issuer(base),
        "aud": facade,
        "sub": session.user or f"ehr-user@{session.iss}",
        "iat": now,
        "exp": now + LIFETIME_S,
        "jti": str(uuid.uuid4()),
        "scope": SCOPE,
        "patient": session.patient,
        "client_id": state.settings.client_id or "cdss-smart",
        **({"fhirUser": session.user} if session.user else {}),
    }
    header = {"alg": "ES384", "typ": "JWT", "kid": state.key.kid}
    token = jwt.encode(header, claims, state.key.key, algorithms=["ES384"])
    session.facade_token = (token, float(claims["exp"]))  # type: ignore[arg-type]
    return token
