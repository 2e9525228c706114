"""Authenticating the CDS client by its signed JWT (#trusting-cds-clients).

Checked, in this order, before anything else of the call is read: an allow-listed asymmetric
`alg` (never `none` nor any HS*: a shared secret would let the service forge the client), `typ`
JWT, a `kid`; `iss` among the trusted clients; the key from the issuer's inline JWK Set or from
the `jku` the token names, which must be allow-listed for that very issuer before it is fetched
(no fetch of arbitrary URLs); the key's type fitting the algorithm; the signature; `aud` equal to
the exact URL called; `exp`, `iat`, `nbf` with a small leeway and a bounded lifetime; `tenant`
when the client is configured with one; `jti` not seen before (kept until the token expires).
Every failure is the same bare 401 for the caller; the reason is logged with `iss` and `jti`,
never the token.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from cds_hooks.config import AuthConfig, TrustedClient

log = logging.getLogger(__name__)
MAX_TOKEN_BYTES = 16 * 1024
_KTY = {"ES": "EC", "RS": "RSA", "PS": "RSA"}
_CURVE = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


class AuthFailed(Exception):
    """Why a token was refused: for the log only, never for the caller."""


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """Who called, as far as the audit needs: the issuer, its subject and tenant, the jti."""

    iss: str
    sub: str | None = None
    tenant: str | None = None
    jti: str | None = None
    client: TrustedClient | None = None

    @property
    def authenticated(self) -> bool:
        return self.client is not None


ANONYMOUS = ClientIdentity(iss="unauthenticated")


class ReplayCache:
    """jti values seen, per issuer, each kept until its token expires. In process: with several
    replicas, put it in a shared store (the interface is two methods)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def check_and_add(self, iss: str, jti: str, exp: float, now: float) -> bool:
        """True the first time (iss, jti) is seen before it expires; False on a replay."""
        with self._lock:
            if len(self._seen) >= self.max_entries:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
                if len(self._seen) >= self.max_entries:
                    return False  # refuse rather than forget: forgetting would allow replays
            key = (iss, jti)
            if self._seen.get(key, 0) > now:
                return False
            self._seen[key] = exp
            return True


class JwksCache:
    """JWK Sets fetched from allow-listed `jku` URLs: cached, refetched on an unknown `kid` at
    most once per `min_refresh_s` per URL (a stream of tokens with made-up kids cannot turn the
    service into a request amplifier), and after `ttl_s`."""

    def __init__(self, http: httpx.AsyncClient, config: AuthConfig, clock: Callable[[], float]):
        self.http = http
        self.config = config
        self.clock = clock
        self._sets: dict[str, tuple[KeySet, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def key_set(self, url: str, kid: str) -> KeySet | None:
        cached = self._sets.get(url)
        now = self.clock()
        if cached and _has_kid(cached[0], kid) and now - cached[1] < self.config.jwks_ttl_s:
            return cached[0]
        if cached and now - cached[1] < self.config.jwks_min_refresh_s:
            return cached[0]
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            cached = self._sets.get(url)
            if cached and self.clock() - cached[1] < self.config.jwks_min_refresh_s:
                return cached[0]
            fetched = await self._fetch(url)
            if fetched is None:
                # remember the failed attempt too, so it is not retried at once
                self._sets[url] = (cached[0] if cached else KeySet([]), self.clock())
                return cached[0] if cached else None
            self._sets[url] = (fetched, self.clock())
            return fetched

    async def _fetch(self, url: str) -> KeySet | None:
        try:
            resp = await self.http.get(url, timeout=self.config.jwks_timeout_s)
            if resp.status_code != 200 or len(resp.content) > 256 * 1024:
                log.warning("JWKS %s: HTTP %s", url, resp.status_code)
                return None
            data = orjson.loads(resp.content)
            return import_jwks(data) if isinstance(data, dict) else None
        except (httpx.HTTPError, orjson.JSONDecodeError, JoseError, ValueError, TypeError) as exc:
            log.warning("JWKS %s could not be loaded: %s", url, type(exc).__name__)
            return None


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)


def import_jwks(jwks: Mapping[str, Any]) -> KeySet:
    """A public JWK Set from configuration; private members are refused (a client's private key
    has no business in the service's configuration)."""
    for key in jwks.get("keys") or ():
        if isinstance(key, Mapping) and "d" in key:
            raise ValueError(f"JWK {key.get('kid')!r} is a private key; configure the public one")
    return KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]


class Authenticator:
    def __init__(
        self,
        config: AuthConfig,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        replay: ReplayCache | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.clients = {c.iss: c for c in config.clients}
        self.inline = {c.iss: import_jwks(c.jwks) for c in config.clients if c.jwks}
        self.jwks = JwksCache(http, config, clock)
        self.replay = replay or ReplayCache()

    async def authenticate(self, authorization: str | None, audience: str) -> ClientIdentity:
        """The caller's identity, or AuthFailed with the reason (to be logged, not sent)."""
        token = _bearer(authorization)
        try:
            compact = jws.extract_compact(token.encode())
            header = compact.headers()
            claims = orjson.loads(compact.payload)
        except (JoseError, ValueError, TypeError, orjson.JSONDecodeError):
            raise AuthFailed("not a compact JWS") from None
        if not isinstance(claims, dict):
            raise AuthFailed("the payload is not a JSON object")
        alg = self._check_header(header)
        client = self.clients.get(claims.get("iss"))  # type: ignore[arg-type]
        if client is None:
            raise AuthFailed(f"untrusted iss {str(claims.get('iss'))[:200]!r}")
        key = await self._key(client, header, alg)
        try:  # the token parsed above, verified as it is (no second parse)
            verified = jws.validate_compact(compact, key, algorithms=[alg])
        except JoseError:
            verified = False
        if not verified:
            raise AuthFailed(f"bad signature (iss {client.iss})")
        return self._check_claims(client, claims, audience)

    def _check_header(self, header: Mapping[str, Any]) -> str:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.config.algorithms:
            raise AuthFailed(f"alg {str(alg)[:20]!r} is not allowed")
        typ = header.get("typ")
        if typ is not None and str(typ).upper() != "JWT":
            raise AuthFailed(f"typ {str(typ)[:20]!r} is not JWT")
        if not isinstance(header.get("kid"), str) or not header["kid"]:
            raise AuthFailed("kid is required")
        if "crit" in header:
            raise AuthFailed("critical header extensions are not supported")
        return alg

    async def _key(self, client: TrustedClient, header: Mapping[str, Any], alg: str) -> Any:
        kid = header["kid"]
        jku = header.get("jku")
        if jku is not None:
            if not isinstance(jku, str) or jku not in client.jku:
                raise AuthFailed(f"jku not allow-listed for iss {client.iss}")
            keys = await self.jwks.key_set(jku, kid)
        else:
            keys = self.inline.get(client.iss)
        key = next((k for k in keys.keys if k.kid == kid), None) if keys else None
        if key is None:
            raise AuthFailed(f"unknown kid {str(kid)[:80]!r} for iss {client.iss}")
        data = key.as_dict(private=False)
        if data.get("kty") != _KTY.get(alg[:2]) or data.get("alg", alg) != alg:
            raise AuthFailed(f"key {kid!r} does not fit alg {alg}")
        if alg in _CURVE and data.get("crv") != _CURVE[alg]:
            raise AuthFailed(f"key {kid!r} has the wrong curve for {alg}")
        if data.get("use", "sig") != "sig":
            raise AuthFailed(f"key {kid!r} is not a signing key")
        return key

    def _check_claims(
        self, client: TrustedClient, claims: Mapping[str, Any], audience: str
    ) -> ClientIdentity:
        now, leeway = self.clock(), self.config.leeway_s
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if audience not in auds:
            raise AuthFailed(f"aud does not name {audience} (iss {client.iss})")
        exp, iat, nbf = _time(claims, "exp"), _time(claims, "iat"), _time(claims, "nbf")
        if exp is None or exp + leeway < now:
            raise AuthFailed(f"expired or no exp (iss {client.iss})")
        if iat is None or iat - leeway > now:
            raise AuthFailed(f"iat missing or in the future (iss {client.iss})")
        if "nbf" in claims and (nbf is None or nbf - leeway > now):
            raise AuthFailed(f"not valid yet (nbf, iss {client.iss})")
        if exp - now > self.config.max_lifetime_s:
            raise AuthFailed(f"exp too far ahead (iss {client.iss})")
        tenant = claims.get("tenant")
        if client.tenant is not None and tenant != client.tenant:
            raise AuthFailed(f"tenant mismatch (iss {client.iss})")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise AuthFailed(f"jti is required (iss {client.iss})")
        if not self.replay.check_and_add(client.iss, jti, exp + leeway, now):
            raise AuthFailed(f"replayed jti {jti[:80]!r} (iss {client.iss})")
        sub = claims.get("sub")
        return ClientIdentity(
            iss=client.iss,
            sub=sub if isinstance(sub, str) else None,
            tenant=tenant if isinstance(tenant, str) else None,
            jti=jti,
            client=client,
        )


def _time(claims: Mapping[str, Any], name: str) -> float | None:
    """A NumericDate claim as a number, or None when absent or not a number."""
    value = claims.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise AuthFailed("no Authorization header")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthFailed("Authorization is not a Bearer token")
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthFailed("token too large")
    return token
