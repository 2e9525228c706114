"""Last line of defence against secrets in logs: every log record's message is scrubbed of
bearer credentials, JWTs and credential-named fields before any handler sees it.

Our own code never logs a token or secret (the guard, the verifier, the CDS service and the
adapters log identities, never credentials), but libraries do at DEBUG: authlib logs each
issued token response ("Issue token {...'access_token': ...}"). Installed once per process as
a log record factory, so it applies whatever handlers, formatters or levels are configured.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

MASK = "[redacted]"
_FIELDS = (
    "access_token|refresh_token|id_token|client_secret|client_assertion|password|"
    "registration_access_token|code_verifier|token"
)
_PATTERNS = (
    # compact JWS/JWE: base64url header starting with {"  (eyJ)
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_.-]*"), MASK),
    # Authorization header values
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    # 'access_token': 'x'  /  "client_secret": "x"  /  password=x
    (re.compile(rf"(?i)(['\"]?(?:{_FIELDS})['\"]?\s*[:=]\s*['\"]?)([^'\"&,\s}}]+)"), r"\1" + MASK),
)
_lock = threading.Lock()
_installed = False


def scrub(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def install() -> None:
    """Wrap the current log record factory (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # a malformed call: let the handler report it as usual
                return record
            cleaned = scrub(message)
            if cleaned != message or record.args:
                record.msg, record.args = cleaned, None
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
