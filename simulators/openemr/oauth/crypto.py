"""Keys and JOSE for the simulated server: joserfc does all signing, verifying and sealing.

- `ServerKey`: the RSA key OpenEMR signs access and id tokens with (RS256, kid in the header),
  published at /oauth2/default/jwk.
- `LaunchSealer`: EHR launch tokens. OpenEMR's are base64 of an encrypted `{"p","e","i"}` JSON,
  opaque to the app and stateless for the server; a compact JWE (dir + A256GCM) is the same.
- `verify_client_assertion`: the RFC 7523 client assertion of SMART Backend Services, checked
  as OpenEMR's JWTClientAuthenticationService does (RS384 only, kid required, iss=sub=client,
  aud=token URL, 60 s clock drift), plus the 5-minute `exp` ceiling the spec and §1.3 set.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from joserfc import jwe, jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey, RSAKey

from simulators.openemr.oauth.models import LaunchContext

ASSERTION_ALG = "RS384"
ASSERTION_MAX_LIFETIME = 300
CLOCK_DRIFT = 60


class AssertionRejected(Exception):
    """A client assertion that fails verification; always answered as invalid_client."""


class ServerKey:
    """The authorization server's signing key (generated per process, like a fresh install)."""

    def __init__(self) -> None:
        self._key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"})
        self._key.ensure_kid()

    @property
    def kid(self) -> str:
        kid = self._key.kid
        assert kid is not None  # ensure_kid() set it
        return kid

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.as_dict(private=False)]}

    def sign(self, claims: Mapping[str, Any]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        return jwt.encode(header, dict(claims), self._key, algorithms=["RS256"])

    def decode(self, token: str) -> dict[str, Any] | None:
        """Claims of a token this key signed, or None (bad signature, alg, kid or shape)."""
        try:
            decoded = jwt.decode(token, self._key, algorithms=["RS256"])
        except (JoseError, ValueError):
            return None
        if decoded.header.get("kid") != self.kid:
            return None
        return dict(decoded.claims)


class LaunchSealer:
    """Seals launch context into an opaque token and opens it again (tamper-evident)."""

    def __init__(self) -> None:
        self._key = OctKey.generate_key(256)

    def seal(self, context: LaunchContext) -> str:
        body = {"p": context.patient, "e": context.encounter, "i": context.intent}
        plaintext = json.dumps({k: v for k, v in body.items() if v}).encode()
        return jwe.encrypt_compact({"alg": "dir", "enc": "A256GCM"}, plaintext, self._key)

    def open(self, token: str) -> LaunchContext | None:
        try:
            body = json.loads(jwe.decrypt_compact(token, self._key).plaintext or b"")
        except (JoseError, ValueError):
            return None
        if not isinstance(body, dict):
            return None
        return LaunchContext(body.get("p"), body.get("e"), body.get("i"))


def assertion_subject(assertion: str) -> str | None:
    """The unverified `sub` of an assertion: which client's keys to verify it with."""
    try:
        claims = json.loads(jws.extract_compact(assertion.encode()).payload)
    except (JoseError, ValueError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) and sub else None


def verify_client_assertion(
    assertion: str, *, client_id: str, jwks: Mapping[str, Any], audience: str, now: float
) -> dict[str, Any]:
    """The verified claims of `assertion`, or AssertionRejected saying why not."""
    try:
        header = jws.extract_compact(assertion.encode()).headers()
    except (JoseError, ValueError) as exc:
        raise AssertionRejected("malformed assertion") from exc
    if header.get("alg") != ASSERTION_ALG:
        raise AssertionRejected(f"alg must be {ASSERTION_ALG}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AssertionRejected("kid header is required")
    try:
        keys = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
        key = keys.get_by_kid(kid)
        claims = dict(jwt.decode(assertion, key, algorithms=[ASSERTION_ALG]).claims)
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise AssertionRejected("signature or key rejected") from exc
    _check_assertion_claims(claims, client_id=client_id, audience=audience, now=now)
    return claims


def _check_assertion_claims(
    claims: Mapping[str, Any], *, client_id: str, audience: str, now: float
) -> None:
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AssertionRejected("iss and sub must be the client_id")
    aud = claims.get("aud")
    if not (aud == audience or (isinstance(aud, list) and audience in aud)):
        raise AssertionRejected("aud must be the token endpoint URL")
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise AssertionRejected("exp is required")
    if exp < now - CLOCK_DRIFT:
        raise AssertionRejected("assertion expired")
    if exp > now + ASSERTION_MAX_LIFETIME + CLOCK_DRIFT:
        raise AssertionRejected("exp more than 5 minutes ahead")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > now + CLOCK_DRIFT:
        raise AssertionRejected("assertion not yet valid")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise AssertionRejected("jti is required")
