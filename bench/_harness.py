"""Shared pieces of the benchmarks: the served app beside its raw floor, raw SQL, statistics.

The server runs in its own process (`python bench/_harness.py serve ...`) so that the client's
work never competes with it for the GIL. That one uvicorn process serves two ASGI apps side by
side, picked by path prefix before any framework code runs:

* everything else  -> the real app (`cdss.app.create_app`), the facade at /fhir;
* `/raw/...`       -> the floor: a bare ASGI callable doing one raw DBAPI query on one
  persistent connection and returning the stored bytes, no framework, no thread pool.

Both therefore share the uvicorn configuration, the event loop, the process and the database,
and are hit by the same client in the same way; only the code under test differs.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from sqlalchemy.engine import make_url

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# -- the hand-written SQL (placeholders in qmark style; RawDB adapts them) -------------------

READ_SQL = "SELECT content FROM resources WHERE res_type = ? AND res_id = ?"

# Observation?patient=X&code=S|C&_sort=-date&_count=N, written by hand: drive from the
# patient's references (about a hundred rows), probe each one's code and date through the
# (resource_pk, param) indexes, sort what is left. PostgreSQL plans CROSS JOIN + WHERE like any
# inner join, from its statistics. SQLite has no statistics unless someone runs ANALYZE (the
# store does not), so there CROSS JOIN fixes the join order and INDEXED BY the probe indexes
# (see RawDB.adapt); left alone it starts from the code, which most rows match.
# The facade sorts by max(idx_date.high) per resource with the row pk as tiebreak; with one
# date per Observation that is exactly `d.high DESC, r.pk DESC`.
SEARCH_SQL = """
SELECT r.res_id, r.content
FROM idx_reference p
CROSS JOIN resources r
CROSS JOIN idx_token t
CROSS JOIN idx_date d
WHERE p.res_type = 'Observation' AND p.param = 'patient'
  AND p.target_type = 'Patient' AND p.target_id = ?
  AND r.pk = p.resource_pk AND r.res_type = 'Observation' AND r.deleted = false
  AND t.resource_pk = r.pk AND t.res_type = 'Observation' AND t.param = 'code'
  AND t.system = ? AND t.code = ?
  AND d.resource_pk = r.pk AND d.res_type = 'Observation' AND d.param = 'date'
ORDER BY d.high DESC, r.pk DESC
LIMIT ?
"""

RAW_TABLE = "bench_raw"


class RawDB:
    """One plain DBAPI connection (sqlite3 or psycopg), autocommit, for floors and checks."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self.conn: Any
        if self.dialect == "sqlite":
            # The same per-connection settings the store's engine applies (engine.py).
            self.conn = sqlite3.connect(
                str(parsed.database), check_same_thread=False, isolation_level=None
            )
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000"):
                self.conn.execute(f"PRAGMA {pragma}")
        else:
            import psycopg

            plain = url.replace("postgresql+psycopg://", "postgresql://")
            self.conn = psycopg.connect(plain, autocommit=True)
        self.read_sql = self.adapt(READ_SQL)
        self.search_sql = self.adapt(SEARCH_SQL)

    def adapt(self, sql: str) -> str:
        if self.dialect != "sqlite":
            return sql.replace("?", "%s")
        for table, alias in (("idx_token", "t"), ("idx_date", "d")):
            sql = sql.replace(
                f"CROSS JOIN {table} {alias}\n",
                f"CROSS JOIN {table} {alias} INDEXED BY ix_{table}_resource_pk_param\n",
            )
        return sql

    def _run(self, sql: str, params: Sequence[object]) -> Any:
        return self.conn.execute(sql, params) if params else self.conn.execute(sql)

    def search(self, params: Sequence[object]) -> list[Any]:
        """The hand-written search. On PostgreSQL never as a server-side prepared statement:
        psycopg prepares a query on its 5th run, and after 5 more PostgreSQL may switch to a
        generic plan, which cannot see that the code is common and the patient is not (that
        plan is 5-10x slower here). A custom plan per run keeps the floor at its best."""
        if self.dialect == "sqlite":
            return self.all(self.search_sql, params)
        rows: list[Any] = self.conn.execute(self.search_sql, params, prepare=False).fetchall()
        return rows

    def one(self, sql: str, params: Sequence[object] = ()) -> Any:
        return self._run(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        rows: list[Any] = self._run(sql, params).fetchall()
        return rows

    def execute(self, sql: str) -> None:
        self.conn.execute(sql)

    def create_raw_table(self) -> None:
        blob = "BLOB" if self.dialect == "sqlite" else "BYTEA"
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS {RAW_TABLE} (res_type VARCHAR(64) NOT NULL, "
            f"res_id VARCHAR(64) NOT NULL, content {blob} NOT NULL, "
            "PRIMARY KEY (res_type, res_id))"
        )

    def secondary_indexes(self) -> list[tuple[str, str]]:
        """(name, CREATE INDEX statement) of the store's non-unique indexes (named ix_...)."""
        if self.dialect == "sqlite":
            sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix%'"
        else:
            sql = (
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = current_schema() AND indexname LIKE 'ix%'"
            )
        return [(name, ddl) for name, ddl in self.all(sql) if name.startswith("ix_")]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.dialect == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")  # what the store's writer does
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        else:
            with self.conn.transaction():
                yield

    def insert_batch(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """One transaction, one executemany: the floor of a 100-resource transaction."""
        sql = self.adapt(f"INSERT INTO {RAW_TABLE} (res_type, res_id, content) VALUES (?, ?, ?)")
        with self.transaction():
            if self.dialect == "sqlite":
                self.conn.executemany(sql, rows)
            else:
                with self.conn.cursor() as cur:
                    cur.executemany(sql, rows)

    def bulk_insert(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Rows into a table, in the caller's transaction: executemany, or COPY on PostgreSQL."""
        cols = ", ".join(columns)
        if self.dialect == "sqlite":
            marks = ", ".join("?" for _ in columns)
            self.conn.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
            return
        with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def close(self) -> None:
        self.conn.close()


# -- the floor app and the dispatcher ---------------------------------------------------------


def bundle_bytes(contents: Sequence[bytes]) -> bytes:
    """The least a searchset response can be: the stored bytes, side by side."""
    entries = b",".join(b'{"resource":' + c + b"}" for c in contents)
    return b'{"resourceType":"Bundle","type":"searchset","entry":[' + entries + b"]}"


class Floor:
    """Raw ASGI: one indexed query on one connection, on the event loop, bytes out."""

    def __init__(self, url: str) -> None:
        self.db = RawDB(url)

    async def __call__(self, scope: Scope, _receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        status, body = 404, b""
        if path.startswith("/raw/read/"):
            _, rtype, rid = path.rsplit("/", 2)
            row = self.db.one(self.db.read_sql, (rtype, rid))
            if row is not None:
                status, body = 200, bytes(row[0])
        elif path == "/raw/search":
            q = parse_qs(scope["query_string"].decode())
            params = (q["patient"][0], q["system"][0], q["code"][0], int(q["count"][0]))
            rows = self.db.search(params)
            status, body = 200, bundle_bytes([bytes(x[1]) for x in rows])
        headers = [
            (b"content-type", b"application/fhir+json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def dispatch(app: ASGIApp, floor: ASGIApp) -> ASGIApp:
    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/raw/"):
            await floor(scope, receive, send)
        else:
            await app(scope, receive, send)

    return route


def serve_main(argv: Sequence[str]) -> None:
    """Entry point of the server process."""
    parser = argparse.ArgumentParser(prog="_harness.py serve")
    parser.add_argument("--url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})  # before any thread starts: the pool inherits it
    (Path(args.data_dir) / "server.pid").write_text(str(os.getpid()))

    import uvicorn

    from cdss.app import create_app
    from cdss.settings import load_settings

    # the facade's own cost is measured, as a development server on loopback serves it: no
    # bearer tokens and no AuditEvent per request (CDSS_FHIR_*, fhir_facade/security)
    os.environ.setdefault("CDSS_FHIR_AUTH", "disabled")
    os.environ.setdefault("CDSS_FHIR_AUDIT", "false")
    settings = load_settings(
        database_url=args.url, data_dir=Path(args.data_dir), secret_key="bench-cursor-key"
    )
    app = dispatch(create_app(settings), Floor(args.url))
    # What `cdss serve` passes, except the log level: at warning there is no access log line
    # per request (it would cost the facade and the floor alike).
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="on",
        proxy_headers=True,
    )
    uvicorn.Server(config).run()


@contextmanager
def server(
    url: str, port: int, *, cpu: int | None, prefix: Sequence[str] = ()
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start the server process; yield its base URL and the process while it serves."""
    with tempfile.TemporaryDirectory(prefix="cdss-bench-") as data_dir:
        cmd = [*prefix, sys.executable, str(BENCH / "_harness.py"), "serve"]
        cmd += ["--url", url, "--port", str(port), "--data-dir", data_dir]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH)])}
        proc = subprocess.Popen(cmd, cwd=data_dir, env=env)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}: {shlex.join(cmd)}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the server did not start within 60 s")
            time.sleep(0.1)
        try:
            yield base, proc
        finally:
            # Stop the server itself (not a wrapper such as py-spy, which then writes its
            # profile and exits when its target does).
            pid_file = Path(data_dir) / "server.pid"
            pid = int(pid_file.read_text()) if pid_file.exists() else proc.pid
            try:
                os.kill(pid, signal.SIGTERM)
                proc.wait(timeout=60)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                proc.kill()
                proc.wait()


# -- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


class Log:
    """Progress lines on stderr, with the time since the start."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, msg: str) -> None:
        print(f"[{time.monotonic() - self.start:6.1f}s] {msg}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"]:
        sys.exit("usage: _harness.py serve --url URL --port PORT --data-dir DIR [--cpu N]")
    serve_main(sys.argv[2:])
