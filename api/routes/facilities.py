"""Shared parking and open facilities: nearby search and live occupancy."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from api.deps import SessionDep, SettingsDep
from api.errors import BadRequest
from api.routes.areas import parse_bbox
from api.routes.locate import API_CRS, check_range
from api.security import CurrentStaff
from data import cases
from data.facilities import MAX_RADIUS_M, NearbyQuery, nearby, record_occupancy
from data.models import Facility
from data.repository import dialect_for
from geo.crs import parse_crs, to_wgs84_xy

router = APIRouter(prefix="/api/v1/facilities", tags=["facilities"])
LOCAL = ZoneInfo("Asia/Shanghai")


def local_time(value: dt.datetime | None) -> dt.datetime:
    """A time without an offset is local (Asia/Shanghai) time, as a resident means it."""
    if value is None:
        return dt.datetime.now(LOCAL)
    return value.replace(tzinfo=LOCAL) if value.tzinfo is None else value


@router.get("/nearby")
def find_nearby(
    request: Request, session: SessionDep, settings: SettingsDep,
    lon: Annotated[float, Query()], lat: Annotated[float, Query()],
    crs: Annotated[str, Query(description="wgs84, cgcs2000, gcj02 or bd09")] = "wgs84",
    kind: Annotated[list[str] | None, Query(description="car_park, sports_ground, toilet (repeatable)")] = None,
    open_at: Annotated[dt.datetime | None, Query(description="ISO time; default now; no offset means Asia/Shanghai")] = None,
    radius_m: Annotated[float, Query(gt=0, le=MAX_RADIUS_M)] = 1000.0,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    min_free: Annotated[int | None, Query(ge=0)] = None,
    include_closed: bool = False,
) -> Response:
    """Facilities near a point, nearest first, with opening state, free spaces and access."""
    if crs.lower() not in API_CRS:
        raise BadRequest(f"unknown crs {crs!r}: use one of {', '.join(API_CRS)}")
    check_range(lon, lat)
    x, y = to_wgs84_xy(lon, lat, parse_crs(crs))
    query = NearbyQuery(float(x), float(y), local_time(open_at), radius_m, tuple(kind or ()), limit, min_free, include_closed)
    items = nearby(session, query, request.app.state.clock.calendar, settings.occupancy_max_age_seconds)
    body = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": item["id"], "geometry": {"type": "Point", "coordinates": [item["lon"], item["lat"]]},
             "properties": item}
            for item in items
        ],
        "numberReturned": len(items),
        "open_at": query.at.isoformat(),
    }
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/geo+json")


FACILITY_FIELDS = ["code", "kind", "name", "operator", "access", "capacity", "shared_spaces", "fee", "opening_hours"]


@router.get("")
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
    occupied: int = Field(ge=0, description="Spaces in use now")
    at: dt.datetime | None = Field(None, description="When the gate counted (default: now)")


@router.put("/{facility_id}/occupancy")
def put_occupancy(facility_id: int, body: OccupancyIn, session: SessionDep, staff: CurrentStaff) -> dict[str, Any]:
    """A gate system reports how many spaces are in use (role gate)."""
    if staff is None or staff.role not in ("gate", "admin"):
        raise cases.Forbidden("send occupancy with a gate token (gridmap users add NAME --role gate)")
    at = local_time(body.at) if body.at else None
    facility = record_occupancy(session, facility_id, body.occupied, at)
    session.commit()
    return {"id": facility.id, "code": facility.code, "capacity": facility.capacity,
            "occupied": facility.occupied, "free_spaces": facility.capacity - facility.occupied,
            "occupied_at": facility.occupied_at.isoformat()}
