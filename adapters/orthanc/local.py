"""A local Orthanc from Debian's packages, on free loopback ports, for the demo and the tests.

Real Orthanc, not a mock: `/usr/sbin/Orthanc <tmp>/orthanc.json` as a plain process with
authentication on (a random user), the DICOMweb plugin at /dicom-web/, optionally the Modality
Worklists plugin, and a 1 s StableAge so StableStudy fires quickly. Stopped by PID (SIGTERM, then
SIGKILL). Ports are picked at run time and the start is retried on fresh ports, because another
process may grab a port between our probe and Orthanc's bind (environment.md, pitfall 6).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ORTHANC_BIN = Path(os.environ.get("CDSS_ORTHANC_BIN", "/usr/sbin/Orthanc"))
PLUGIN_DIR = Path(os.environ.get("CDSS_ORTHANC_PLUGINS", "/usr/share/orthanc/plugins"))
DICOMWEB_PLUGIN = PLUGIN_DIR / "libOrthancDicomWeb.so"
WORKLISTS_PLUGIN = PLUGIN_DIR / "libModalityWorklists.so"

_START_ATTEMPTS = 3
_READY_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class OrthancServer:
    """Where a running test Orthanc answers, and how to authenticate to it."""

    url: str  # REST base, http://127.0.0.1:PORT (no trailing slash)
    dicomweb_url: str  # url + /dicom-web
    auth: tuple[str, str]
    dicom_port: int  # DIMSE (C-ECHO/C-STORE/C-FIND); nothing listens when dicom_server=False
    aet: str
    pid: int
    workdir: Path  # config, storage and orthanc.log
    process: subprocess.Popen[bytes] = field(repr=False, compare=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / "orthanc.log"

    def stop(self) -> None:
        """Stop this Orthanc early (to test a source going away); idempotent."""
        _stop(self.process)


class OrthancStartError(RuntimeError):
    """Orthanc did not come up; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def available() -> str | None:
    """None when a test Orthanc can be started here, else the reason it cannot."""
    if not ORTHANC_BIN.exists():
        return f"{ORTHANC_BIN} not found (apt-get install orthanc orthanc-dicomweb)"
    if not DICOMWEB_PLUGIN.exists():
        return f"{DICOMWEB_PLUGIN} not found (apt-get install orthanc-dicomweb)"
    return None


def _config(
    workdir: Path,
    *,
    http_port: int,
    dicom_port: int,
    aet: str,
    auth: tuple[str, str],
    worklists_dir: Path | None,
    dicom_server: bool,
) -> dict[str, Any]:
    plugins = [str(DICOMWEB_PLUGIN)]
    config: dict[str, Any] = {
        "Name": "cdss",
        "StorageDirectory": str(workdir / "db"),
        "IndexDirectory": str(workdir / "db"),
        "HttpPort": http_port,
        "DicomServerEnabled": dicom_server,
        "DicomPort": dicom_port,
        "DicomAet": aet,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {auth[0]: auth[1]},
        "HttpDescribeErrors": True,
        "StableAge": 1,
        "SaveJobs": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowFindWorklist": True,
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "EnableWado": True,
            "WadoRoot": "/wado",
            # 1.7 has no PublicRoot: Host decides what RetrieveURL (0008,1190) says.
            "Host": f"127.0.0.1:{http_port}",
            "Ssl": False,
        },
    }
    if worklists_dir is not None:
        plugins.append(str(WORKLISTS_PLUGIN))
        config["Worklists"] = {"Enable": True, "Database": str(worklists_dir)}
    config["Plugins"] = plugins
    return config


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, then SIGKILL if Orthanc has not exited in time."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=_STOP_TIMEOUT_S)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, auth: tuple[str, str]) -> bool:
    """Poll /system until it answers 200; False if the process died (e.g. a port was taken)."""
    deadline = time.monotonic() + _READY_TIMEOUT_S
    with httpx.Client(auth=auth, timeout=1.0) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                if http.get(f"{url}/system").status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    return False


def _start(
    workdir: Path, auth: tuple[str, str], aet: str, worklists_dir: Path | None, dicom_server: bool
) -> tuple[subprocess.Popen[bytes], OrthancServer]:
    http_port, dicom_port = free_port(), free_port()
    config = _config(
        workdir,
        http_port=http_port,
        dicom_port=dicom_port,
        aet=aet,
        auth=auth,
        worklists_dir=worklists_dir,
        dicom_server=dicom_server,
    )
    config_path = workdir / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2))
    log = (workdir / "orthanc.log").open("ab")
    try:
        proc = subprocess.Popen(
            [str(ORTHANC_BIN), str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    finally:
        log.close()
    url = f"http://127.0.0.1:{http_port}"
    server = OrthancServer(
        url=url,
        dicomweb_url=f"{url}/dicom-web",
        auth=auth,
        dicom_port=dicom_port,
        aet=aet,
        pid=proc.pid,
        workdir=workdir,
        process=proc,
    )
    if not _wait_ready(proc, url, auth):
        _stop(proc)
        raise OrthancStartError(f"Orthanc did not answer on {url}:\n{_log_tail(server.log_path)}")
    return proc, server


@contextmanager
def orthanc(
    *,
    worklists_dir: Path | None = None,
    dicom_server: bool = True,
    workdir: Path | None = None,
) -> Iterator[OrthancServer]:
    """Run an Orthanc for the duration of the block (fresh and empty unless `workdir` is given:
    then its storage lives there and is kept, as the demo wants).

    `worklists_dir` loads the Modality Worklists plugin on that folder of .wl files (served by
    C-FIND on the DICOM port). `dicom_server=False` turns DIMSE off: HTTP-only tests then stop
    about a second faster (Orthanc takes ~1 s to stop its DICOM server).
    """
    reason = available()
    if reason is not None:
        raise OrthancStartError(reason)
    keep = workdir is not None
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="cdss-orthanc-"))
    workdir.mkdir(parents=True, exist_ok=True)
    auth = (f"u{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    aet = "CDSSTEST"
    proc: subprocess.Popen[bytes] | None = None
    try:
        error: OrthancStartError | None = None
        for _ in range(_START_ATTEMPTS):
            try:
                proc, server = _start(workdir, auth, aet, worklists_dir, dicom_server)
                break
            except OrthancStartError as exc:  # most often a port taken between probe and bind
                error = exc
        else:
            assert error is not None
            raise error
        yield server
    finally:
        if proc is not None:
            _stop(proc)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def wait_for_changes(
    server: OrthancServer,
    change_type: str,
    *,
    count: int = 1,
    since: int = 0,
    timeout: float = 20.0,
) -> list[dict[str, Any]]:
    """Poll `/changes` until `count` entries of `change_type` follow `since` (e.g. StableStudy,
    which Orthanc logs about StableAge + 1 s after the last instance); return those entries."""
    deadline = time.monotonic() + timeout
    with httpx.Client(auth=server.auth, base_url=server.url, timeout=5.0) as http:
        while True:
            log = http.get("/changes", params={"since": since, "limit": 1000}).json()
            found = [c for c in log["Changes"] if c["ChangeType"] == change_type]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} x {change_type} not logged after {timeout} s: {log}")
            time.sleep(0.1)
