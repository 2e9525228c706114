"""The audit writer process of cds_hooks.recorder.ProcessWriter (the module is its `main`).

It reads requests from stdin and answers on stdout, each a frame: a 4-byte big-endian length and
an orjson document. Requests: {"op": "write", "url", "records": [{"audit", "cards"}]} writes a
batch (`write_records`) into the database at `url` and answers {"problems": [...]};
{"op": "forget", "url"} closes that database's connections and answers {}. The process opens
its own connections to each database named (never inherited), and exits at the end of stdin,
which is also what happens when the server process goes away: no orphan is left behind. It
ignores SIGINT and SIGTERM (sent to a whole process group, they would cut a batch short).
Everything else it prints goes to stderr (the server's), so that stdout carries frames only.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
from typing import IO, Any

import orjson

HEADER = struct.Struct(">I")


def read_frame(stream: IO[bytes]) -> Any:
    """The next document, or None at the end of the stream."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    body = stream.read(size)
    if len(body) < size:
        return None
    return orjson.loads(body)


def write_frame(stream: IO[bytes], document: Any) -> None:
    body = orjson.dumps(document)
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def main() -> None:
    # Its life is the server's: it ends at the end of stdin, after the batch in hand. A Ctrl-C
    # or a SIGTERM sent to the whole process group must not cut a batch short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    requests = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt frames

    from cds_hooks.feedback import FeedbackStore
    from cds_hooks.recorder import Record, write_records
    from fhir_facade.fhir import model_class
    from fhir_facade.store.sql_store import SqlStore

    model_class("AuditEvent")  # imported once, before the first batch waits on it
    stores: dict[str, tuple[SqlStore, FeedbackStore]] = {}
    try:
        while (request := read_frame(requests)) is not None:
            url = request["url"]
            if request["op"] == "forget":
                opened = stores.pop(url, None)
                if opened is not None:
                    opened[0].close()
                    opened[1].close()
                write_frame(answers, {})
                continue
            if url not in stores:  # tables exist already: the server process migrated them
                stores[url] = SqlStore(url, migrate=False), FeedbackStore(url, migrate=False)
            records = [Record(r["audit"], r["cards"]) for r in request["records"]]
            write_frame(answers, {"problems": write_records(*stores[url], records)})
    except BrokenPipeError:
        pass  # the server went away while this batch was written: nobody to answer
    finally:
        for store, feedback in stores.values():
            store.close()
            feedback.close()


if __name__ == "__main__":
    main()
