"""Risk page (filled in below)."""

from __future__ import annotations

from fastapi import APIRouter

from smart_app.state import SmartState


def build_router(state: SmartState) -> APIRouter:
    del state
    return APIRouter()
