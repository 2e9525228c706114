"""Signalling a `cdss` command at a known point of its run: tests of how it stops."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Stopped:
    returncode: int
    seen: list[str]  # stderr lines up to the one the signal followed
    rest: str  # stderr after it


def signal_cdss(
    args: list[str],
    env: Mapping[str, str],
    when: Callable[[str], bool],
    sig: signal.Signals,
    *,
    timeout: float = 60,
) -> Stopped:
    """Run `python -m cdss.cli *args`, send `sig` once a stderr line satisfies `when`, wait.
    A run that ends before such a line is returned as it is (its last lines in `seen`)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdss.cli", *args],
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if when(line):
                proc.send_signal(sig)
                break
        _, rest = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Stopped(proc.returncode, seen, rest)
