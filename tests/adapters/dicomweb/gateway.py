"""A loopback gateway in front of the test Orthanc's DICOMweb: an OIDC-style token endpoint, a
bearer-token check, and injectable faults (5xx, malformed DICOM JSON, hanging), so the auth and
failure paths of the DICOMweb client run over real HTTP against a real DICOMweb server.

Like a reverse proxy that secures a PACS (dcm4chee-arc behind Keycloak): clients present a
bearer token issued by `/token` (client credentials, HTTP basic client authentication, RFC 6749
2.3.1), the gateway forwards to Orthanc with Orthanc's own basic credentials.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse


@dataclass
class Fault:
    """Answer requests whose path contains `path` with `kind` ("5xx" | "malformed" | "hang"),
    `times` times (None: until cleared)."""

    kind: str
    path: str = ""
    times: int | None = None


@dataclass
class Gateway:
    upstream: str  # Orthanc's DICOMweb root, e.g. http://127.0.0.1:PORT/dicom-web
    upstream_auth: tuple[str, str]
    client_id: str = "cdss-sync"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    static_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    expires_in: int = 300
    require_bearer: bool = True
    hang_s: float = 5.0
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (epoch)
    token_requests: int = 0
    unauthorized: int = 0
    requests: list[str] = field(default_factory=list)  # "GET /studies?..." as received
    faults: list[Fault] = field(default_factory=list)

    def revoke_all(self) -> None:
        self.tokens.clear()

    def _valid(self, header: str | None) -> bool:
        if not self.require_bearer:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        token = header.removeprefix("Bearer ")
        if token == self.static_token:
            return True
        return self.tokens.get(token, 0.0) > time.time()

    def _fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.path in path and (fault.times is None or fault.times > 0):
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    def app(self) -> FastAPI:
        api = FastAPI()
        client = httpx.AsyncClient(auth=self.upstream_auth, timeout=30)

        @api.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @api.post("/token")
        async def token(request: Request) -> Response:
            self.token_requests += 1
            form = await request.form()
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            if form.get("grant_type") != "client_credentials":
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            issued = secrets.token_urlsafe(24)
            self.tokens[issued] = time.time() + self.expires_in
            return JSONResponse(
                {"access_token": issued, "token_type": "Bearer", "expires_in": self.expires_in}
            )

        @api.api_route("/rs/{path:path}", methods=["GET", "POST", "DELETE"])
        async def dicomweb(path: str, request: Request) -> Response:
            query = request.url.query
            self.requests.append(f"{request.method} /{path}" + (f"?{query}" if query else ""))
            if not self._valid(request.headers.get("authorization")):
                self.unauthorized += 1
                return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
            fault = self._fault("/" + path)
            if fault is not None and fault.kind == "5xx":
                return JSONResponse({"error": "injected"}, status_code=503)
            if fault is not None and fault.kind == "malformed":
                return Response(
                    b'[{"0020000D": {"vr": "UI", "Value": ["1.2',
                    media_type="application/dicom+json",
                )
            if fault is not None and fault.kind == "hang":
                await asyncio.sleep(self.hang_s)
            headers = {
                k: v for k, v in request.headers.items() if k.lower() in ("accept", "content-type")
            }
            upstream = await client.request(
                request.method,
                f"{self.upstream}/{path}",
                params=list(request.query_params.multi_items()),
                content=await request.body(),
                headers=headers,
            )
            passed = {k: v for k, v in upstream.headers.items() if k.lower() in ("content-type",)}
            return Response(upstream.content, status_code=upstream.status_code, headers=passed)

        return api
