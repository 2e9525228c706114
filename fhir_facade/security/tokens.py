"""Bearer token verification: JWT access tokens against the configured issuers' JWKS, opaque
tokens (and JWTs lacking the launch context) by RFC 7662 introspection. joserfc does the JOSE.

Checks, in order: a JWS with an allowed asymmetric `alg` (never `none` or HS*), an issuer from
configuration chosen by the exact `iss` (or, for issuers whose tokens carry none, by the key that
verifies them), a `kid` known to that issuer's JWKS (refetched once per interval on an unknown
kid), the signature, `exp` (required), `nbf` and `iat` with leeway, and `aud`. JWKS and
introspection URLs come only from configuration, never from the token, and are fetched through
the outbound guard. Nothing here logs a token.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fhir_facade.security.scopes import Access, parse_scopes, scopes_of
from fhir_facade.security.settings import IssuerConfig, SecuritySettings


class TokenRejected(Exception):
    """Why a bearer token was refused; the message is safe to show (it holds no token)."""


class _Keys:
    """One issuer's JWK Set: inline, or fetched from jwks_uri and cached."""

    def __init__(self, issuer: IssuerConfig, http: httpx.AsyncClient, min_refresh_s: float):
        self.issuer, self.http, self.min_refresh_s = issuer, http, min_refresh_s
        self._set = KeySet.import_key_set(issuer.jwks) if issuer.jwks else None  # type: ignore[arg-type]
        self._fetched_at = float("-inf")

    async def key(self, kid: str | None, clock: Callable[[], float]) -> Any:
        found = self._find(kid)
        if (
            found is None
            and self.issuer.jwks_uri
            and clock() - self._fetched_at >= self.min_refresh_s
        ):
            self._fetched_at = clock()
            await self._fetch()
            found = self._find(kid)
        return found

    def _find(self, kid: str | None) -> Any:
        if self._set is None:
            return None
        if kid is None:
            return self._set.keys[0] if len(self._set.keys) == 1 else None
        return next((k for k in self._set.keys if k.kid == kid), None)

    async def _fetch(self) -> None:
        try:
            resp = await self.http.get(str(self.issuer.jwks_uri))
            resp.raise_for_status()
            self._set = KeySet.import_key_set(orjson.loads(resp.content))
        except (httpx.HTTPError, orjson.JSONDecodeError, JoseError, ValueError, TypeError) as exc:
            raise TokenRejected(
                f"the issuer's keys could not be fetched ({type(exc).__name__})"
            ) from None


class TokenVerifier:
    def __init__(
        self,
        settings: SecuritySettings,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.http, self.clock = settings, http, clock
        self._keys = {
            i.issuer: _Keys(i, http, settings.jwks_min_refresh_s)
            for i in settings.issuers
            if i.jwks or i.jwks_uri
        }
        self._introspected: dict[str, tuple[float, dict[str, Any]]] = {}

    async def verify(self, token: str) -> Access:
        if token.count(".") == 2:
            issuer, claims = await self._verify_jwt(token)
            if _needs_context(claims) and issuer.introspection_endpoint:
                claims = {**claims, **await self._introspect(issuer, token)}
        else:
            issuer, claims = await self._introspect_any(token)
        return self._access(issuer, claims)

    # -- JWT ------------------------------------------------------------------------------

    async def _verify_jwt(self, token: str) -> tuple[IssuerConfig, dict[str, Any]]:
        try:
            compact = jws.extract_compact(token.encode())
            header = compact.headers()
            unverified = orjson.loads(compact.payload)
        except (JoseError, ValueError, orjson.JSONDecodeError):
            raise TokenRejected("the token is not a well-formed JWT") from None
        alg = header.get("alg")
        if alg not in self.settings.algorithms:
            raise TokenRejected(f"alg {alg!r} is not accepted")
        iss = unverified.get("iss") if isinstance(unverified, dict) else None
        candidates = [
            i
            for i in self.settings.issuers
            if i.issuer in self._keys
            and (i.issuer == iss if iss is not None else not i.require_iss)
        ]
        if not candidates:
            raise TokenRejected("the token's issuer is not trusted")
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        for issuer in candidates:
            key = await self._keys[issuer.issuer].key(kid, self.clock)
            if key is None:
                continue
            try:
                claims = dict(jwt.decode(token, key, algorithms=[alg]).claims)
            except (JoseError, ValueError):
                raise TokenRejected("the token's signature does not verify") from None
            self._check_claims(issuer, claims)
            return issuer, claims
        raise TokenRejected("the token's key (kid) is not one of the issuer's keys")

    def _check_claims(self, issuer: IssuerConfig, claims: dict[str, Any]) -> None:
        now, leeway = self.clock(), self.settings.leeway_s
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise TokenRejected("the token has no exp")
        if exp < now - leeway:
            raise TokenRejected("the token has expired")
        nbf, iat = claims.get("nbf"), claims.get("iat")
        if isinstance(nbf, int | float) and nbf > now + leeway:
            raise TokenRejected("the token is not valid yet (nbf)")
        if isinstance(iat, int | float) and iat > now + leeway:
            raise TokenRejected("the token was issued in the future (iat)")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not any(a in issuer.audiences for a in auds if isinstance(a, str)):
            raise TokenRejected("the token's audience (aud) is not this server")

    # -- introspection --------------------------------------------------------------------

    async def _introspect_any(self, token: str) -> tuple[IssuerConfig, dict[str, Any]]:
        issuers = [i for i in self.settings.issuers if i.introspection_endpoint]
        if not issuers:
            raise TokenRejected("the token is not a JWT and no issuer introspects tokens")
        for issuer in issuers:
            claims = await self._introspect(issuer, token, required=False)
            if claims:
                return issuer, claims
        raise TokenRejected("the token is not active")

    async def _introspect(
        self, issuer: IssuerConfig, token: str, *, required: bool = True
    ) -> dict[str, Any]:
        digest = hashlib.sha256(f"{issuer.issuer}\0{token}".encode()).hexdigest()
        cached = self._introspected.get(digest)
        if cached is not None and cached[0] > self.clock():
            return cached[1]
        claims = await self._post_introspection(issuer, token)
        if not claims.get("active"):
            if required:
                raise TokenRejected("the token is not active")
            return {}
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp < self.clock() - self.settings.leeway_s:
            raise TokenRejected("the token has expired")
        until = self.clock() + self.settings.introspection_cache_s
        if isinstance(exp, int | float):
            until = min(until, exp)
        if len(self._introspected) > 4096:
            self._introspected.clear()
        self._introspected[digest] = (until, claims)
        return claims

    async def _post_introspection(self, issuer: IssuerConfig, token: str) -> dict[str, Any]:
        assert issuer.client_id and issuer.client_secret  # IssuerConfig checks it
        try:
            resp = await self.http.post(
                str(issuer.introspection_endpoint),
                data={"token": token, "token_type_hint": "access_token"},
                auth=(issuer.client_id, issuer.client_secret.get_secret_value()),
                headers={"Accept": "application/json"},
            )
            resp.raise_for_status()
            body = orjson.loads(resp.content)
        except (httpx.HTTPError, orjson.JSONDecodeError) as exc:
            raise TokenRejected(f"introspection failed ({type(exc).__name__})") from None
        if not isinstance(body, dict):
            raise TokenRejected("introspection answered something other than a JSON object")
        iss = body.get("iss")
        if iss is not None and iss != issuer.issuer and issuer.require_iss:
            raise TokenRejected("introspection names another issuer")
        return body

    # -- the access it gives --------------------------------------------------------------

    def _access(self, issuer: IssuerConfig, claims: dict[str, Any]) -> Access:
        scopes = scopes_of(claims)
        sub = _text(claims.get("sub"))
        fhir_user = _text(claims.get("fhirUser")) or _text(claims.get("fhir_user"))
        aud = claims.get("aud")
        client_id = _text(claims.get("client_id")) or _text(claims.get("azp"))
        if client_id is None and isinstance(aud, str) and not issuer.require_iss:
            client_id = aud  # OpenEMR: aud is the client id
        admin = self.settings.admin_scope in scopes or bool(
            {sub, fhir_user} & set(self.settings.admin_subjects) - {None}
        )
        purpose = claims.get("purpose_of_use") or claims.get("purposeOfUse") or ()
        return Access(
            issuer=issuer.issuer,
            subject=sub,
            client_id=client_id,
            scopes=scopes,
            patient=_text(claims.get("patient")),
            fhir_user=fhir_user,
            purpose_of_use=tuple([purpose] if isinstance(purpose, str) else map(str, purpose)),
            admin=admin,
            grants=parse_scopes(scopes),
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _needs_context(claims: dict[str, Any]) -> bool:
    """A JWT with patient/ scopes but no `patient` claim: the launch context is elsewhere."""
    return "patient" not in claims and any(s.startswith("patient/") for s in scopes_of(claims))
