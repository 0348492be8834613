"""Liveness and what the service holds."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import SessionDep
from data.models import Area, Compound, Facility, Issue
from data.repository import count_rows
from maps.local_assets import assets_built

router = APIRouter(tags=["health"])


@router.get("/health")
@router.get("/api/v1/health", include_in_schema=False)
def health(session: SessionDep) -> dict:
    """Whether the database answers, which backend it is, and how much it holds."""
    session.execute(text("SELECT 1"))
    return {
        "status": "ok",
        "backend": "spatialite" if session.get_bind().dialect.name == "sqlite" else "postgis",
        "map_assets": "ok" if assets_built() else "missing: run `make assets`",
        "counts": {m.__tablename__: count_rows(session, m) for m in (Area, Compound, Facility, Issue)},
    }
