"""The tests' Orthanc is the project's local Orthanc launcher (adapters/orthanc/local.py)."""

from adapters.orthanc.local import (
    OrthancServer,
    OrthancStartError,
    available,
    orthanc,
    wait_for_changes,
)

__all__ = ["OrthancServer", "OrthancStartError", "available", "orthanc", "wait_for_changes"]
