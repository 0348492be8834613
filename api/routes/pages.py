"""HTML pages."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.deps import SessionDep, SettingsDep
from data.importer import today
from data.models import Compound, Facility
from data.repository import areas_frame, table_frame
from geo.areas import LEVELS
from maps.city import BaseMap, render_city_map

router = APIRouter(tags=["pages"])


@router.get("/", response_class=HTMLResponse)
def city_map(session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """The city on one map: areas by level, compounds and facilities."""
    on = today()
    areas = {level: areas_frame(session, level, on) for level in LEVELS}
    compounds = table_frame(session, Compound.__table__, ["code", "name"])
    facilities = table_frame(session, Facility.__table__, ["code", "name", "kind", "opening_hours"])
    base = BaseMap(settings.tile_url, settings.tile_attribution, settings.tile_crs)
    return HTMLResponse(render_city_map(areas, compounds, facilities, base, title="gridmap — city"))
