"""Run the real app under uvicorn on a loopback port, in a background thread.

Independent clients (fhirpy, httpx) then talk real HTTP to it, as a FHIR client would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from tests.support.postgres import free_port


@contextmanager
def serve(app: FastAPI, ready_path: str = "/healthz", port: int | None = None) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) while the app is served.

    `ready_path` is polled until it answers below 500 (any app, not only ours).
    """
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}{ready_path}", timeout=1).status_code < 500:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        raise RuntimeError("the app did not start within 20 s")
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
