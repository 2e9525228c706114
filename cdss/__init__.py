"""CDSS hub: composition root (settings, CLI, ASGI assembly)."""

__version__ = "0.1.0"
