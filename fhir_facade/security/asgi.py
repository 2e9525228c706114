"""ASGI plumbing for the guard: headers, bodies read once and replayed, OperationOutcome
answers with their challenges (RFC 6750 `WWW-Authenticate: Bearer`)."""

from __future__ import annotations

import orjson
from starlette.types import Message, Receive, Scope, Send

from fhir_facade import errors

REALM = 'Bearer realm="cdss-fhir"'


class ClientGone(Exception):
    """The client disconnected while its body was being read."""


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def unauthorized(msg: str, error: str | None) -> errors.OperationOutcomeError:
    challenge = REALM
    if error:
        safe = msg.replace('"', "'")
        challenge += f', error="{error}", error_description="{safe}"'
    code = "login" if error is None else "security"
    return errors.OperationOutcomeError(
        401, [errors.Issue(code, msg)], {"WWW-Authenticate": challenge}
    )


def forbidden(msg: str) -> errors.OperationOutcomeError:
    challenge = f'{REALM}, error="insufficient_scope"'
    return errors.OperationOutcomeError(
        403, [errors.Issue("forbidden", msg)], {"WWW-Authenticate": challenge}
    )


async def read_body(receive: Receive, limit: int, declared: str | None) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.too_large(f"the body is larger than the {limit}-byte limit")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise errors.too_large(f"the body is larger than the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def send_outcome(send: Send, exc: errors.OperationOutcomeError) -> None:
    body = orjson.dumps(exc.outcome)
    headers = [
        (b"content-type", b"application/fhir+json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in exc.headers.items()),
    ]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, body: bytes, media_type: bytes) -> None:
    headers = [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
