"""Area layers as GeoJSON FeatureCollections (RFC 7946)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api.deps import AreaLevel, IsoDate, SessionDep, geojson_responses
from api.errors import BadRequest
from data.importer import today
from data.places import area_sizes_km2, coverage_collection, layer_versions, search_places
from data.repository import areas_frame
from data.tiles import LAYERS, tile_source
from geo.areas import LAYER_ALIASES

PLURALS = {level: plural for plural, level in LAYER_ALIASES.items()}

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


@router.get("/areas/{level}", response_class=Response,
            responses=geojson_responses("The level's areas in force on the date"))
def area_layer(
    level: AreaLevel,
    session: SessionDep,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (WGS84)")] = None,
    at: Annotated[IsoDate | None, Query(description="Layer version in force on this date")] = None,
) -> Response:
    """One level's areas in force on a date, as GeoJSON."""
    name = LAYER_ALIASES.get(level, level)
    frame = areas_frame(session, name, at or today(), parse_bbox(bbox))
    body = json.loads(frame.to_json(drop_id=True)) if not frame.empty else {"type": "FeatureCollection", "features": []}
    body["numberReturned"] = len(frame)
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/geo+json")


# --- for the map pages: small answers, never whole layers -----------------------------------


def _derived(request: Request, session: Session, level: str, on: dt.date, what: str, build: Callable[[], Any]) -> Any:
    """A figure derived from a layer, kept per layer version and content stamp (as tiles are).

    The coverage faults depend on the communities too, so their key names both layers.
    """
    layers = [level, "community"] if what == "faults" else [level]
    sources = [tile_source(session, LAYERS[PLURALS[name]], on) for name in layers]
    cache: dict[tuple[Any, ...], Any] = request.app.state.__dict__.setdefault("derived_cache", {})
    key = (what, level, *((s.database, s.version_id, s.stamp) for s in sources))
    if key not in cache:
        if len(cache) > 32:  # old versions' entries are never asked for again
            cache.clear()
        cache[key] = build()
    return cache[key]


def layer_key(session: Session, level: str, on: dt.date) -> tuple[Any, ...]:
    """What a figure over ``level``'s areas in force on ``on`` depends on (single-row reads)."""
    source = tile_source(session, LAYERS[PLURALS[level]], on)
    return (source.database, source.version_id, source.stamp)


def area_sizes(request: Request, session: Session, level: str, on: dt.date) -> dict[str, float]:
    return _derived(request, session, level, on, "sizes", lambda: area_sizes_km2(session, level, on))


@router.get("/search")
def search(
    session: SessionDep,
    q: Annotated[str, Query(min_length=1, max_length=100, description="A code (or its start) or part of a name")],
    at: Annotated[IsoDate | None, Query(description="Areas of the versions in force on this date")] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> dict[str, Any]:
    """Grids, communities, sub-districts, districts and compounds by code or name, with boxes to zoom to."""
    places = search_places(session, q, at or today(), limit)
    return {"q": q, "numberReturned": len(places), "places": [p.as_dict() for p in places]}


@router.get("/areas/{level}/versions")
def versions(level: AreaLevel, session: SessionDep) -> dict[str, Any]:
    """The dated versions of a level's boundaries, oldest first (use a date with ``at=``)."""
    name = LAYER_ALIASES.get(level, level)
    return {"level": name, "versions": layer_versions(session, name)}


@router.get("/coverage/faults", response_class=Response,
            responses=geojson_responses("Overlaps, gaps and grids outside their community"))
def faults(
    request: Request, session: SessionDep,
    at: Annotated[IsoDate | None, Query(description="Check the grid version in force on this date")] = None,
) -> Response:
    """The grid coverage check as GeoJSON: overlaps, gaps and grids outside their community.

    ``coverage.complete`` is false, and ``coverage.summary`` says why, when some checks could
    not be made (no community layer, grids without a parent): no faults is then no all-clear.
    """
    on = at or today()
    body = _derived(request, session, "grid", on, "faults", lambda: coverage_collection(session, on))
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/geo+json")
