"""Shared parking and open facilities: nearby search and live occupancy."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from api.deps import (
    MAX_ID,
    Crs,
    CrsQuery,
    IsoDateTime,
    SessionDep,
    SettingsDep,
    geojson_responses,
    id_path,
)
from api.known import check_facility_kinds
from api.routes.areas import parse_bbox
from api.routes.locate import check_range
from api.security import CurrentStaff
from data import cases
from data.facilities import MAX_RADIUS_M, NearbyQuery, nearby, record_occupancy
from data.models import Facility
from data.repository import dialect_for
from geo.crs import parse_crs, to_wgs84_xy
from geo.worktime import CalendarOutOfRange, WorkCalendar

router = APIRouter(prefix="/api/v1/facilities", tags=["facilities"])
LOCAL = ZoneInfo("Asia/Shanghai")
LOOK_AHEAD_DAYS = 14  # FacilityHours' horizon: closes_at / opens_next_at look this far


def local_time(value: dt.datetime | None) -> dt.datetime:
    """A time without an offset is local (Asia/Shanghai) time, as a resident means it."""
    if value is None:
        return dt.datetime.now(LOCAL)
    return value.replace(tzinfo=LOCAL) if value.tzinfo is None else value


def calendar_is_provisional(calendar: WorkCalendar, at: dt.datetime) -> bool:
    """Whether opening states at ``at`` (and the look-ahead after it) rest on a provisional calendar.

    A time outside the calendar's range is the client's mistake: CalendarOutOfRange, a 422
    naming the range.
    """
    first, last = calendar.bounds()
    try:
        day = at.astimezone(LOCAL).date()
    except OverflowError:  # year 1 or 9999 with an offset: out of range in any zone
        day = at.date()
    if not first <= day <= last:
        raise CalendarOutOfRange(day, first, last)
    return calendar.provisional_between(day, min(day + dt.timedelta(days=LOOK_AHEAD_DAYS), last))


@router.get("/nearby", response_class=Response,
            responses=geojson_responses("Facilities near the point, nearest first"))
def find_nearby(
    request: Request, session: SessionDep, settings: SettingsDep,
    lon: Annotated[float, Query()], lat: Annotated[float, Query()],
    crs: CrsQuery = Crs.wgs84,
    kind: Annotated[list[str] | None, Query(description="car_park, sports_ground, toilet (repeatable)")] = None,
    open_at: Annotated[IsoDateTime | None, Query(description="ISO time; default now; no offset means Asia/Shanghai")] = None,
    radius_m: Annotated[float, Query(gt=0, le=MAX_RADIUS_M)] = 1000.0,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    min_free: Annotated[int | None, Query(ge=0)] = None,
    include_closed: bool = False,
) -> Response:
    """Facilities near a point, nearest first, with opening state, free spaces and access."""
    check_range(lon, lat)
    check_facility_kinds(session, kind)
    x, y = to_wgs84_xy(lon, lat, parse_crs(crs))
    query = NearbyQuery(float(x), float(y), local_time(open_at), radius_m, tuple(kind or ()), limit, min_free, include_closed)
    calendar = request.app.state.clock.calendar_for(session)
    provisional = calendar_is_provisional(calendar, query.at)
    items = nearby(session, query, calendar, settings.occupancy_max_age_seconds)
    body = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": item["id"], "geometry": {"type": "Point", "coordinates": [item["lon"], item["lat"]]},
             "properties": item}
            for item in items
        ],
        "numberReturned": len(items),
        "open_at": query.at.isoformat(),
        # PH and make-up working days in a year whose official notice is not loaded are by rule.
        "calendar_provisional": provisional,
    }
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/geo+json")


FACILITY_FIELDS = ["code", "kind", "name", "operator", "access", "capacity", "shared_spaces", "fee", "opening_hours"]


@router.get("", response_class=Response, responses=geojson_responses("Facilities as points"))
def list_facilities(
    session: SessionDep,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (WGS84)")] = None,
    kind: Annotated[list[str] | None, Query(description="car_park, sports_ground, toilet (repeatable)")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 5_000,
) -> Response:
    """Facilities as GeoJSON points (a polygon's representative point), for planners' maps.

    The opening hours are the OSM expression as stored; ``/nearby`` answers whether a
    place is open at a time.
    """
    table = Facility.__table__
    query = select(table.c.id, *(table.c[c] for c in FACILITY_FIELDS),
                   func.ST_X(func.ST_PointOnSurface(table.c.geom)), func.ST_Y(func.ST_PointOnSurface(table.c.geom)))
    box = parse_bbox(bbox)
    check_facility_kinds(session, kind)
    if box is not None:
        query = query.where(dialect_for(session).bbox_filter(table, box))
    if kind:
        query = query.where(table.c.kind.in_(kind))
    rows = session.execute(query.order_by(table.c.code).limit(limit)).all()
    features = [
        {"type": "Feature", "id": row[0], "geometry": {"type": "Point", "coordinates": [row[-2], row[-1]]},
         "properties": dict(zip(FACILITY_FIELDS, row[1:-2], strict=True))}
        for row in rows
    ]
    body = {"type": "FeatureCollection", "features": features, "numberReturned": len(features)}
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/geo+json")


class OccupancyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is refused, not dropped

    occupied: int = Field(ge=0, le=MAX_ID, description="Spaces in use now")
    at: dt.datetime | None = Field(None, description="When the gate counted (default: now)")


@router.put("/{facility_id}/occupancy")
def put_occupancy(facility_id: Annotated[int, id_path("facility")], body: OccupancyIn, session: SessionDep, staff: CurrentStaff) -> dict[str, Any]:
    """A gate system reports how many spaces are in use (role gate).

    A reading older than the one on record (a gate sending late) is acknowledged with 200
    but not applied: ``applied`` is false and the figure shown is the newer one kept. A
    2xx, not a 409, because a gate that got an error would resend the same stale reading.
    """
    if staff is None or staff.role not in ("gate", "admin"):
        raise cases.Forbidden("send occupancy with a gate token (gridmap users add NAME --role gate)")
    at = local_time(body.at) if body.at else None
    facility, applied = record_occupancy(session, facility_id, body.occupied, at)
    session.commit()
    answer = {"id": facility.id, "code": facility.code, "capacity": facility.capacity,
              "occupied": facility.occupied, "free_spaces": facility.capacity - facility.occupied,
              "occupied_at": facility.occupied_at.isoformat(), "applied": applied}
    if not applied:
        answer["note"] = (f"this reading (at {at.isoformat() if at else 'now'}) is older than the one on record "
                          f"(at {facility.occupied_at.isoformat()}); kept the newer reading")
    return answer
