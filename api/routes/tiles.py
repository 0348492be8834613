"""Polygon layers as Mapbox Vector Tiles, and a TileJSON 3.0.0 document per layer.

An empty tile is answered with 204 No Content (MapLibre and Mapbox GL treat it as a tile
with nothing in it), so that a client or proxy never stores a zero-byte body as a tile.
Every answer carries an ETag made of the layer version and a content stamp: a client
revalidates with If-None-Match and gets 304 until an import changes the layer.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from api.deps import IsoDate, SessionDep
from api.errors import BadRequest, problem, problem_responses
from data.importer import today
from data.tiles import (
    LAYERS,
    MAX_ZOOM,
    MEDIA_TYPE,
    TILE_CRS,
    Tile,
    TileAddressError,
    TileCache,
    TileLayer,
    TileSource,
    TileStore,
    cache_key,
    render_tile,
    seed_tiles,
    tile_reaches,
    tile_source,
)

router = APIRouter(prefix="/tiles", tags=["tiles"])

# Short, because "today's" version changes when a new one comes into force or is imported;
# the ETag makes the revalidation after it cheap (a 304 with no rendering).
CACHE_CONTROL = "public, max-age=60"

FIELD_DESCRIPTIONS: dict[str, str] = {
    "code": "Code of the area or compound",
    "name": "Name",
    "parent_code": "Code of the area one level up (absent for districts)",
    "community_code": "Code of the community the compound belongs to",
}

AtQuery = Annotated[
    IsoDate | None,
    Query(description="Area layers: the layer version in force on this date (default today). "
          "Compounds have no versions and ignore it."),
]

CrsQuery = Annotated[
    Literal["wgs84", "gcj02"],
    Query(description="The system to draw in: wgs84 (OSM-style base maps) or gcj02 "
          "(AMap/Gaode and Tencent base maps, so that the overlay lines up)"),
]

# An unknown layer is a 422 naming the layers, as every unknown value is (issue 11); the
# schema lists them too.
LayerPath = Annotated[str, Path(description="A tile layer", json_schema_extra={"enum": list(LAYERS)})]

_cache_lock = threading.Lock()


def tile_cache(app: FastAPI) -> TileCache:
    """The app's tile cache, made on first use (one per app, hence one per database)."""
    with _cache_lock:
        cache: TileCache | None = getattr(app.state, "tile_cache", None)
        if cache is None:
            settings = app.state.settings
            store = TileStore(settings.data_dir / "tiles", max_bytes=settings.tile_disk_mb * 1024 * 1024)
            cache = app.state.tile_cache = TileCache(store=store)
        return cache


def seed_in_background(app: FastAPI) -> threading.Thread | None:
    """Draw the first views' tiles in a thread, so that the server answers at once."""
    settings = app.state.settings
    if not settings.tile_seed_zoom:
        return None

    def run() -> None:
        started = time.perf_counter()
        try:
            with app.state.sessions() as session:
                drawn = seed_tiles(session, tile_cache(app), today(), settings.tile_seed_zoom, settings.tile_crs)
            logging.getLogger("gridmap").info("drew %d tiles up to zoom %d in %.1f s", drawn,
                                              settings.tile_seed_zoom, time.perf_counter() - started)
        except Exception:  # the tiles are then drawn on request, as without seeding
            logging.getLogger("gridmap").exception("seeding tiles failed")

    thread = threading.Thread(target=run, name="gridmap-tile-seed", daemon=True)
    thread.start()
    return thread


def _unknown_layer(layer: str) -> JSONResponse:
    names = list(LAYERS)
    return problem(422, "Invalid request", f"unknown layer {layer!r}: use one of {', '.join(names)}",
                   layers=names, allowed=names)


def _not_modified(request: Request, etag: str) -> bool:
    """If-None-Match per RFC 9110: a list of tags, weak comparison, or '*'."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


def _cached_render(app: FastAPI, session: Session, source: TileSource, tile: Tile, crs: str) -> bytes:
    cache = tile_cache(app)
    key = cache_key(source, tile, crs)
    data = cache.get(key)
    if data is None:  # b"" is a cached empty tile
        data = render_tile(session, source, tile, crs)
        cache.put(key, data)
    return data


@router.get(
    "/{layer}/{z}/{x}/{y}.mvt",
    response_class=Response,
    responses={
        200: {"content": {MEDIA_TYPE: {}}, "description": "The tile, one layer named as in the URL"},
        204: {"description": "No feature reaches this tile"},
        304: {"description": "The tile is unchanged since the ETag given in If-None-Match"},
        **problem_responses(422),  # unknown layer; z/x/y names no tile
    },
)
def vector_tile(
    layer: LayerPath, z: int, x: int, y: int, request: Request, session: SessionDep, at: AtQuery = None,
    crs: CrsQuery = "wgs84",
) -> Response:
    """One Mapbox Vector Tile (extent 4096, buffer 64) of a polygon layer."""
    tile_layer = LAYERS.get(layer)
    if tile_layer is None:
        return _unknown_layer(layer)
    if crs not in TILE_CRS:
        raise BadRequest(f"unknown crs {crs!r}: use {' or '.join(TILE_CRS)}")
    try:
        tile = Tile.checked(z, x, y)
    except TileAddressError as exc:
        raise BadRequest(str(exc)) from None
    source = tile_source(session, tile_layer, at or today())
    etag = source.etag if crs == "wgs84" else source.etag[:-1] + f'-{crs}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    # A tile away from the data, or of a layer with no rows, is empty: answered without
    # drawing it or storing anything, so that requests for such tiles, however many,
    # leave neither a cache entry nor a file behind.
    if not tile_reaches(tile_cache(request.app).bounds(session, source), tile, crs):
        return Response(status_code=204, headers=headers)
    data = _cached_render(request.app, session, source, tile, crs)
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MEDIA_TYPE, headers=headers)


@router.get("/{layer}.json")
def tilejson(layer: LayerPath, request: Request, session: SessionDep, at: AtQuery = None) -> Response:
    """A TileJSON 3.0.0 document for a layer; with ``at`` its tile URLs pin that date."""
    tile_layer = LAYERS.get(layer)
    if tile_layer is None:
        return _unknown_layer(layer)
    source = tile_source(session, tile_layer, at or today())
    return JSONResponse(
        _tilejson_body(request, tile_layer, tile_cache(request.app).bounds(session, source), at),
        headers={"ETag": source.etag, "Cache-Control": CACHE_CONTROL},
    )


def _tilejson_body(
    request: Request,
    layer: TileLayer,
    bounds: tuple[float, float, float, float] | None,
    at: dt.date | None,
) -> dict[str, Any]:
    query = f"?at={at.isoformat()}" if at else ""
    url = f"{str(request.base_url).rstrip('/')}/tiles/{layer.name}/{{z}}/{{x}}/{{y}}.mvt{query}"
    box = bounds or (-180.0, -85.0511287798066, 180.0, 85.0511287798066)
    body: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": layer.name,
        "scheme": "xyz",
        "tiles": [url],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": list(box),
        "vector_layers": [{
            "id": layer.name,
            "fields": {name: FIELD_DESCRIPTIONS[name] for name in layer.fields},
            "minzoom": 0,
            "maxzoom": MAX_ZOOM,
        }],
    }
    if bounds is not None:
        # Zoom 12 shows a whole city of some 20 km on a typical screen.
        body["center"] = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, 12]
    return body
