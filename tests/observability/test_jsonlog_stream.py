"""The log handler follows `sys.stderr` rather than keeping the stream it was set up with."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from cdss.observability import jsonlog


def test_log_lines_go_to_the_current_stderr_even_after_it_was_swapped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        first = io.StringIO()
        monkeypatch.setattr("sys.stderr", first)
        jsonlog.setup("INFO", "json")
        first.close()  # what a CLI runner does to its capture when the command returns
        second = io.StringIO()
        monkeypatch.setattr("sys.stderr", second)
        logging.getLogger("cdss.test").info("still logged")
        line = orjson.loads(second.getvalue().splitlines()[-1])
        assert line["msg"] == "still logged" and line["level"] == "INFO"
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
