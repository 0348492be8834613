"""The residents' page: facilities near you, open now or at a chosen time."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from api.deps import SessionDep, SettingsDep
from data.importer import today
from data.models import Facility
from data.repository import areas_frame, table_frame
from maps.resident import ResidentOptions, render_resident_map
from maps.shell import BaseMap

router = APIRouter(tags=["pages"])


@router.get("/maps/resident", response_class=HTMLResponse)
def resident_map(request: Request, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """A phone-first map; the browser asks the nearby API for the markers."""
    base = BaseMap(settings.tile_url, settings.tile_attribution, settings.tile_crs)
    # The API's path from the app, so that a moved API route breaks here, not in a browser.
    return HTMLResponse(resident_html(session, base, request.app.url_path_for("find_nearby")))


def resident_html(session: Session, base: BaseMap, api_url: str) -> str:
    outlines = areas_frame(session, "subdistrict", today())
    return render_resident_map(city_centre(session), base, outlines, ResidentOptions(api_url=api_url))


def city_centre(session: Session) -> tuple[float, float] | None:
    """Where to search when the browser gives no location: the middle of the city's extent.

    The districts in force define the city; a database with facilities but no areas yet
    falls back to the facilities' extent; an empty one has no centre.
    """
    frame = areas_frame(session, "district", today())
    if frame.empty:
        frame = table_frame(session, Facility.__table__, ["code"])
    if frame.empty:
        return None
    minx, miny, maxx, maxy = (float(v) for v in frame.total_bounds)
    return ((minx + maxx) / 2, (miny + maxy) / 2)
