"""Liveness and what the service holds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

from api.deps import SessionDep
from data.models import Area, Compound, Facility, Issue
from data.repository import count_rows
from geo.worktime import calendar_warnings
from maps.local_assets import assets_built

router = APIRouter(tags=["health"])


@router.get("/health")
@router.get("/api/v1/health", include_in_schema=False)
def health(request: Request, session: SessionDep) -> dict[str, Any]:
    """Whether the database answers, which backend it is, what it holds, and what to fix soon."""
    session.execute(text("SELECT 1"))
    calendar = request.app.state.clock.calendar_for(session)
    this_year = calendar.today().year
    warnings = calendar_warnings(calendar)
    return {
        "status": "ok",
        "backend": "spatialite" if session.get_bind().dialect.name == "sqlite" else "postgis",
        "map_assets": "ok" if assets_built() else "missing: run `make assets`",
        "counts": {
            m.__tablename__: count_rows(session, m) for m in (Area, Compound, Facility, Issue)
        },
        # Where this year's and next year's working days come from: "provisional" means the
        # official notice is not loaded (see `gridmap calendar list`).
        "calendar": {str(y): calendar.source_of(y) for y in (this_year, this_year + 1)},
        "warnings": warnings,
    }
