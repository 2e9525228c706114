"""The CDS-client side of authentication: signing the JWT a client sends with each call.

The hub's own SMART app fires hooks as a CDS client (ARCHITECTURE §1: OpenEMR has no CDS client),
and the tests and the benchmark play other clients; all sign here, as the spec prescribes
(#trusting-cds-clients): header alg/kid/typ (+ jku), payload iss/aud/exp/iat/jti (+ tenant, sub).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from joserfc import jws
from joserfc.jwk import ECKey, RSAKey

Key = ECKey | RSAKey


def import_private_key(jwk: Mapping[str, Any]) -> Key:
    """A private EC or RSA key from its JWK."""
    if jwk.get("kty") == "EC":
        return ECKey.import_key(dict(jwk))
    if jwk.get("kty") == "RSA":
        return RSAKey.import_key(dict(jwk))
    raise ValueError(f"unsupported key type {jwk.get('kty')!r}")


def sign_client_jwt(
    key: Key,
    *,
    iss: str,
    aud: str | list[str],
    kid: str,
    alg: str = "ES384",
    jku: str | None = None,
    lifetime_s: int = 300,
    now: float | None = None,
    jti: str | None = None,
    tenant: str | None = None,
    sub: str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> str:
    """A compact JWS for one call; `aud` is the exact URL the call goes to."""
    issued = int(time.time() if now is None else now)
    header: dict[str, Any] = {"alg": alg, "typ": "JWT", "kid": kid}
    if jku:
        header["jku"] = jku
    payload: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "exp": issued + lifetime_s,
        "iat": issued,
        "jti": jti or str(uuid.uuid4()),
    }
    if tenant:
        payload["tenant"] = tenant
    if sub:
        payload["sub"] = sub
    payload.update(claims or {})
    return jws.serialize_compact(header, orjson.dumps(payload), key, algorithms=[alg])
