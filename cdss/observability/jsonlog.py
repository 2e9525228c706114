"""One JSON object per log line: ts, level, logger, msg, request_id, hookInstance, and the
access fields (route, status, duration_ms) when the record carries them.

Only the message and a fixed set of fields are written: never a request body or header, so a
token or a patient's data cannot reach the log through this formatter. Messages are the code's
own; callers must not format secrets or PHI into them.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic_settings import BaseSettings, SettingsConfigDict

from cdss.observability.context import current

ACCESS_FIELDS = ("method", "route", "status", "duration_ms")


class LogSettings(BaseSettings):
    """CDSS_LOG_FORMAT: json (default, one object per line) or text (for a terminal)."""

    model_config = SettingsConfigDict(env_prefix="CDSS_LOG_", env_file=".env", extra="ignore")

    format: Literal["json", "text"] = "json"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ctx = current()
        if ctx is not None:
            out["request_id"] = ctx.request_id
            if ctx.hook_instance:
                out["hookInstance"] = ctx.hook_instance
            if ctx.route:
                out["route"] = ctx.route
        for name in ACCESS_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when each record is emitted: a handler that kept the
    stream of its setup writes into a closed file once that stream is swapped back (a CLI
    runner's or a test's capture), and the log line is lost."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def setup(level: str, fmt: str | None = None) -> None:
    """Route every logger (uvicorn's included) to one stderr handler; `fmt` "text" keeps the
    plain format for a developer's terminal."""
    handler = _StderrHandler()
    if (fmt or LogSettings().format) == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request's full URL (query strings carry search values) at INFO
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
