"""Area layers as GeoJSON FeatureCollections (RFC 7946)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import SessionDep
from api.errors import BadRequest
from data.importer import today
from data.repository import areas_frame
from geo.areas import LAYER_ALIASES, LEVELS

router = APIRouter(prefix="/api/v1", tags=["areas"])


def parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    """'minlon,minlat,maxlon,maxlat' as in OGC API - Features."""
    if bbox is None:
        return None
    try:
        values = tuple(float(v) for v in bbox.split(","))
    except ValueError:
        raise BadRequest(f"bbox {bbox!r}: give four numbers minlon,minlat,maxlon,maxlat") from None
    if len(values) != 4:
        raise BadRequest(f"bbox {bbox!r}: give four numbers minlon,minlat,maxlon,maxlat")
    minx, miny, maxx, maxy = values
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise BadRequest(f"bbox {bbox!r}: need -180 ≤ minlon ≤ maxlon ≤ 180 and -90 ≤ minlat ≤ maxlat ≤ 90")
    return values  # type: ignore[return-value]


@router.get("/areas/{level}")
def area_layer(
    level: str,
    session: SessionDep,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (WGS84)")] = None,
    at: Annotated[dt.date | None, Query(description="Layer version in force on this date")] = None,
) -> Response:
    """One level's areas in force on a date, as GeoJSON."""
    name = LAYER_ALIASES.get(level, level)
    if name not in LEVELS:
        raise BadRequest(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
    frame = areas_frame(session, name, at or today(), parse_bbox(bbox))
    body = json.loads(frame.to_json(drop_id=True)) if not frame.empty else {"type": "FeatureCollection", "features": []}
    body["numberReturned"] = len(frame)
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/geo+json")
