"""Mapbox Vector Tiles of the polygon layers, the same tiles from both backends.

PostGIS builds a tile in SQL (``ST_AsMVTGeom`` + ``ST_AsMVT``). SpatiaLite has no MVT
functions, so the rows are found through its spatial index and then projected, clipped,
snapped and encoded in Python with the same extent, buffer and attributes, which is what
ST_AsMVTGeom does: project to Web Mercator, scale to tile units, clip to the tile plus
the buffer, snap to the integer grid and keep the result valid.

A tile depends on the database, the layer version in force and the rows in it;
``TileSource`` captures them (identity, content stamp or generation: data/stamps.py),
which keys the cache and makes the ETag, so that an import never leaves stale tiles
behind and two databases sharing a data directory never see each other's tiles.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, Table, func, select, text
from sqlalchemy.orm import Session

from data.models import Area, Compound
from data.repository import dialect_for, geom_column, load_geom, version_in_force
from data.stamps import content_stamp, database_key, generation, version_stamp
from geo.areas import LAYER_ALIASES
from geo.crs import geometry_from_wgs84

EXTENT = 4096  # tile units per side, the MVT default
BUFFER = 64  # tile units drawn beyond each edge, so that strokes meet across tiles
MAX_ZOOM = 22  # below a millimetre per unit at 22; deeper tiles would only repeat data
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"

# The systems tiles can be drawn in: WGS84 lines up with OSM-style base maps, GCJ-02
# with AMap/Gaode and Tencent ones (geo/crs.py).
TILE_CRS = ("wgs84", "gcj02")
# GCJ-02 moves a point by at most about 700 m; a tile drawn in GCJ-02 searches the stored
# WGS84 rows in its own box grown by this much, so no feature near an edge is missed.
_GCJ_MARGIN_DEGREES = 0.01

_EARTH_RADIUS = 6378137.0  # the sphere of EPSG:3857
_HALF_WORLD = math.pi * _EARTH_RADIUS  # Web Mercator x/y of the world's edge


class TileAddressError(ValueError):
    """A z/x/y that names no tile; the message says which part is wrong."""


@dataclass(frozen=True)
class TileLayer:
    """A layer that can be tiled: its URL (and in-tile) name, table and attributes."""

    name: str
    table: Table
    level: str | None  # the area level, or None for a table without layer versions
    fields: tuple[str, ...]


_AREA_FIELDS = ("code", "name", "parent_code")
LAYERS: dict[str, TileLayer] = {
    **{
        plural: TileLayer(plural, Area.__table__, level, _AREA_FIELDS)
        for plural, level in LAYER_ALIASES.items()
    },
    "compounds": TileLayer("compounds", Compound.__table__, None, ("code", "name", "community_code")),
}


# --- tile addresses ---------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    """One tile of the Web Mercator (XYZ, y down from the north) tiling."""

    z: int
    x: int
    y: int

    @classmethod
    def checked(cls, z: int, x: int, y: int) -> Tile:
        if not 0 <= z <= MAX_ZOOM:
            raise TileAddressError(f"zoom {z} is out of range: use 0 to {MAX_ZOOM}")
        last = 2**z - 1
        for axis, value in (("x", x), ("y", y)):
            if not 0 <= value <= last:
                raise TileAddressError(f"{axis}={value} is out of range at zoom {z}: use 0 to {last}")
        return cls(z, x, y)

    @property
    def size(self) -> float:
        """The side of the tile in Web Mercator metres."""
        return 2 * _HALF_WORLD / 2**self.z

    def mercator_bounds(self, margin_units: float = 0) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in EPSG:3857, grown by ``margin_units`` tile units."""
        grow = self.size * margin_units / EXTENT
        minx = -_HALF_WORLD + self.x * self.size
        maxy = _HALF_WORLD - self.y * self.size
        return minx - grow, maxy - self.size - grow, minx + self.size + grow, maxy + grow

    def lonlat_bounds(self, margin_units: float = 0) -> tuple[float, float, float, float]:
        """The same box in EPSG:4326. Exact: Mercator maps meridians and parallels to lines."""
        minx, miny, maxx, maxy = self.mercator_bounds(margin_units)
        return _lon(minx), _lat(miny), _lon(maxx), _lat(maxy)


def _lon(x: float) -> float:
    return math.degrees(x / _EARTH_RADIUS)


def _lat(y: float) -> float:
    return math.degrees(math.atan(math.sinh(y / _EARTH_RADIUS)))


# --- what a tile depends on ---------------------------------------------------------------


@dataclass(frozen=True)
class TileSource:
    """The rows a layer's tiles are drawn from: a layer version (areas), a content stamp,
    and the database they live in."""

    layer: TileLayer
    version_id: int | None
    stamp: str  # changes whenever the rows may have changed; "" when there are no rows
    database: str = ""  # data.stamps.database_key: tiles of two databases never mix

    @property
    def empty(self) -> bool:
        return not self.stamp

    @property
    def etag(self) -> str:
        return f'"{self.layer.name}-{self.version_id or 0}-{self.stamp or "empty"}-{self.database[:12]}"'


# The stamp of a version without rows.
_EMPTY_STAMP = content_stamp([])


def tile_source(session: Session, layer: TileLayer, on: date) -> TileSource:
    """Which rows ``layer`` shows on ``on``, stamped so that any change changes the stamp.

    Single-row reads only, made on every request: an area layer's version in force and
    the content stamp written with it (``--replace`` reloads a version under the same id,
    but its stamp changes); for compounds, their generation, bumped by a trigger on any
    change. Never an aggregate over the layer.
    """
    database = database_key(session)
    if layer.level is not None:
        version = version_in_force(session, layer.level, on)
        if version is None:
            return TileSource(layer, None, "", database)
        stamp = version_stamp(session, version)
        empty = stamp.removeprefix("unstamped-") == _EMPTY_STAMP
        return TileSource(layer, version.id, "" if empty else stamp, database)
    table = layer.table
    if session.execute(select(table.c.id).limit(1)).first() is None:
        return TileSource(layer, None, "", database)
    return TileSource(layer, None, f"g{generation(session, table.name)}", database)


def _row_filter(table: Table, version_id: int | None) -> list[ColumnElement[bool]]:
    return [] if version_id is None else [table.c.layer_version_id == version_id]


# --- rendering ----------------------------------------------------------------------------


def render_tile(session: Session, source: TileSource, tile: Tile, crs: str = "wgs84") -> bytes:
    """The encoded tile; b"" when no feature reaches it.

    ``crs="gcj02"`` draws the features shifted into GCJ-02, for base maps in that system.
    PostGIS has no GCJ-02 function, so such tiles are drawn in Python on both backends.
    """
    if crs not in TILE_CRS:
        raise ValueError(f"tiles are drawn in {' or '.join(TILE_CRS)}, not {crs!r}")
    if source.empty:
        return b""
    if crs == "wgs84" and dialect_for(session).name == "postgis":
        return _render_postgis(session, source, tile)
    return _render_python(session, source, tile, crs)


def _render_postgis(session: Session, source: TileSource, tile: Tile) -> bytes:
    sql, params = postgis_tile_query(source, tile)
    data = session.execute(text(sql), params).scalar()
    return bytes(data) if data else b""


def postgis_tile_query(source: TileSource, tile: Tile) -> tuple[str, dict[str, Any]]:
    """The SQL that builds one tile in PostGIS, and its parameters."""
    layer = source.layer
    columns = ", ".join(f"s.{name}" for name in layer.fields)
    version = "s.layer_version_id = :version AND " if source.version_id is not None else ""
    # The search box is the tile plus its buffer, taken back to EPSG:4326 so that `&&`
    # meets the stored geometries' GiST index; transforming every row instead would not.
    # No "geom IS NOT NULL" filter: ST_AsMVT skips the rows ST_AsMVTGeom clipped away,
    # and the filter would make the planner run ST_AsMVTGeom twice per row.
    sql = f"""
        SELECT ST_AsMVT(t.*, :name, :extent, 'geom') FROM (
            SELECT {columns}, ST_AsMVTGeom(
                ST_Transform(s.geom, 3857), ST_TileEnvelope(:z, :x, :y), :extent, :buffer, true
            ) AS geom
            FROM {layer.table.name} AS s
            WHERE {version}s.geom && ST_Transform(
                ST_TileEnvelope(:z, :x, :y, margin => :margin), 4326)
        ) AS t
        """
    params: dict[str, Any] = {
        "name": layer.name, "extent": EXTENT, "buffer": BUFFER, "margin": BUFFER / EXTENT,
        "z": tile.z, "x": tile.x, "y": tile.y,
    }
    if source.version_id is not None:
        params["version"] = source.version_id
    return sql, params


def _render_python(session: Session, source: TileSource, tile: Tile, crs: str = "wgs84") -> bytes:
    layer = source.layer
    table = layer.table
    minx, miny, maxx, maxy = tile.lonlat_bounds(BUFFER)
    if crs != "wgs84":
        grow = _GCJ_MARGIN_DEGREES
        minx, miny, maxx, maxy = minx - grow, miny - grow, maxx + grow, maxy + grow
    query = select(*(table.c[name] for name in layer.fields), geom_column(table)).where(
        *_row_filter(table, source.version_id),
        dialect_for(session).bbox_filter(table, (minx, miny, maxx, maxy)),
    )
    rows = session.execute(query).all()
    if not rows:
        return b""
    shapes = np.array([load_geom(row[-1]) for row in rows], dtype=object)
    if crs != "wgs84":
        shapes = geometry_from_wgs84(shapes, crs)
    geoms = tile_geometries(shapes, tile)
    features = []
    for row, geom in zip(rows, geoms, strict=True):
        if geom is not None:
            # MVT has no null: leave the attribute out, as ST_AsMVT does.
            properties = {k: v for k, v in zip(layer.fields, row[:-1], strict=True) if v is not None}
            features.append({"geometry": geom, "properties": properties})
    if not features:
        return b""
    # Rings are already snapped to integers and oriented (below), so the encoder's own
    # per-ring check, most of its time, would change nothing.
    return mapbox_vector_tile.encode(
        {"name": layer.name, "features": features},
        default_options={"extents": EXTENT, "y_coord_down": True, "check_winding_order": False},
    )


def tile_geometries(geoms: np.ndarray, tile: Tile) -> list[BaseGeometry | None]:
    """Lon/lat polygons in integer tile units (y down), clipped to tile + buffer; None where
    nothing is left. Each step runs over the whole array in GEOS: at city scale a low-zoom
    tile holds thousands of grids, and a Python loop per polygon was most of its time."""
    minx, _, _, maxy = tile.mercator_bounds()
    scale = EXTENT / tile.size

    def to_units(lonlat: np.ndarray) -> np.ndarray:
        x = np.radians(lonlat[:, 0]) * _EARTH_RADIUS
        y = np.log(np.tan(np.pi / 4 + np.radians(lonlat[:, 1]) / 2)) * _EARTH_RADIUS
        return np.column_stack([(x - minx) * scale, (maxy - y) * scale])

    present = np.array([g is not None and not g.is_empty for g in geoms], dtype=bool)
    out: np.ndarray = np.full(len(geoms), None, dtype=object)
    if not present.any():
        return list(out)
    projected = shapely.transform(geoms[present], to_units)
    invalid = ~shapely.is_valid(projected)
    if invalid.any():  # importers check shapes, but one bad row must not fail a tile
        projected[invalid] = shapely.make_valid(projected[invalid])
    clipped = _polygonal_all(shapely.clip_by_rect(projected, -BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER))
    # Snapping to the grid can fold a thin part onto itself; set_precision keeps the
    # output valid and drops what collapses, as ST_AsMVTGeom does.
    snapped = _polygonal_all(shapely.set_precision(clipped, 1.0))
    kept = ~shapely.is_empty(snapped) & (shapely.area(snapped) > 0)
    # MVT wants exterior rings clockwise on screen: with y down, that is a positive
    # signed area, which GEOS calls counter-clockwise.
    snapped[kept] = shapely.orient_polygons(snapped[kept], exterior_cw=False)
    out[np.flatnonzero(present)[kept]] = snapped[kept]
    return list(out)


def _polygonal_all(geoms: np.ndarray) -> np.ndarray:
    types = shapely.get_type_id(geoms)
    mixed = (types != 3) & (types != 6)  # not Polygon or MultiPolygon
    if mixed.any():
        geoms = geoms.copy()
        geoms[mixed] = [_polygonal(g) for g in geoms[mixed]]
    return geoms


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Only the polygon parts: clipping at a corner may leave lines or points behind."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in getattr(geom, "geoms", []) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


# --- TileJSON -------------------------------------------------------------------------------


def layer_bounds(session: Session, source: TileSource) -> tuple[float, float, float, float] | None:
    """The lon/lat box of the source's rows, or None when there are none."""
    if source.empty:
        return None
    table = source.layer.table
    # Envelopes are tiny (5 points): fetching them is cheap and needs no dialect split.
    result = session.scalars(
        select(func.ST_AsBinary(func.ST_Envelope(table.c.geom))).where(
            *_row_filter(table, source.version_id)
        )
    )
    boxes = [load_geom(wkb) for wkb in result]
    minx, miny, maxx, maxy = shapely.total_bounds(boxes)
    return float(minx), float(miny), float(maxx), float(maxy)


# --- the cache --------------------------------------------------------------------------------

TileKey = tuple[str, str, int | None, str, str, int, int, int]
Bounds = tuple[float, float, float, float]

# What an entry costs beyond its bytes: in memory, the key and the dict's node; on disk,
# the block a file takes however small it is. Counted so that empty tiles, b"" or a
# zero-byte file, still fill the bound and get evicted (issue 12: 30,000 requests for
# empty tiles left 30,020 files that nothing ever removed).
ENTRY_OVERHEAD = 256
DISK_BLOCK = 4096


def cache_key(source: TileSource, tile: Tile, crs: str = "wgs84") -> TileKey:
    return (source.database, source.layer.name, source.version_id, source.stamp, crs, tile.z, tile.x, tile.y)


def tile_reaches(bounds: Bounds | None, tile: Tile, crs: str = "wgs84") -> bool:
    """Whether any row of a layer with these lon/lat bounds can show in ``tile``.

    False for every tile away from the data: such a tile is empty, and is answered
    without drawing or caching anything. The test uses the same buffered box as the
    drawing (and the GCJ-02 margin), so a tile it rules out could hold no feature.
    """
    if bounds is None:
        return False
    minx, miny, maxx, maxy = tile.lonlat_bounds(BUFFER)
    grow = _GCJ_MARGIN_DEGREES if crs != "wgs84" else 0.0
    grow += 1e-9  # float noise at the edges must never drop a feature
    west, south, east, north = bounds
    return minx - grow <= east and west <= maxx + grow and miny - grow <= north and south <= maxy + grow


def _disk_cost(size: int) -> int:
    return max(1, -(-size // DISK_BLOCK)) * DISK_BLOCK


class TileStore:
    """Rendered tiles on disk, under a folder per database, layer version and content stamp.

    A low-zoom tile of a city's 10,000 grids takes the better part of a second to draw
    on SpatiaLite; kept on disk, it is drawn once per layer version, not once per start.
    A new import makes a new stamp, hence a new folder; old folders are never read again.

    The store is bounded by ``max_bytes`` (each file counted in whole disk blocks): past
    it, the least recently written tiles are deleted, so old folders age out too. The
    files already there are counted on the first write, oldest first by mtime, so a
    restarted server keeps its seeded tiles and still holds the bound.
    """

    def __init__(self, root: Path, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._files: OrderedDict[Path, int] = OrderedDict()  # oldest write first
        self._bytes = 0
        self._counted = False
        self._lock = threading.Lock()

    def path(self, key: TileKey) -> Path:
        database, layer, version, stamp, crs, z, x, y = key
        return (self.root / (database or "unknown") / layer / f"{version or 0}-{stamp or 'empty'}"
                / crs / str(z) / str(x) / f"{y}.mvt")

    def get(self, key: TileKey) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except OSError:
            return None

    def put(self, key: TileKey, data: bytes) -> None:
        if _disk_cost(len(data)) > self.max_bytes:
            return  # it could only be kept by breaking the bound
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside and renamed: a reader never sees half a tile.
            partial = path.with_name(f"{path.name}.{threading.get_ident()}.part")
            partial.write_bytes(data)
            partial.replace(path)
        except OSError:
            return  # a full or read-only disk costs speed, never an answer
        with self._lock:
            self._count_existing()
            self._forget(path)
            self._files[path] = _disk_cost(len(data))
            self._bytes += self._files[path]
            self._evict()

    def disk_bytes(self) -> int:
        """What the store counts against its bound."""
        with self._lock:
            self._count_existing()
            return self._bytes

    def _count_existing(self) -> None:
        if self._counted:
            return
        self._counted = True
        found = []
        for path in self.root.rglob("*.mvt") if self.root.is_dir() else ():
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((stat.st_mtime, path, _disk_cost(stat.st_size)))
        for _, path, cost in sorted(found):
            if path not in self._files:
                self._files[path] = cost
                self._bytes += cost

    def _forget(self, path: Path) -> None:
        cost = self._files.pop(path, None)
        self._bytes -= cost or 0

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._files:
            path, cost = self._files.popitem(last=False)
            self._bytes -= cost
            try:
                path.unlink(missing_ok=True)
            except OSError:
                continue
            self._prune(path.parent)

    def _prune(self, folder: Path) -> None:
        """Remove the folders an eviction left empty, up to the store's root."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return  # not empty (or gone): the folders above are not empty either
            folder = folder.parent


class TileCache:
    """A thread-safe LRU of encoded tiles, bounded by total bytes, over an optional store.

    Keys carry the database and the source stamp, so entries of a replaced version are
    never hit again and simply age out, and version ids that coincide in two databases
    never share a tile. Each entry costs its bytes plus ``ENTRY_OVERHEAD``, so that empty
    tiles count too. It also remembers each source's bounds, which only change with the
    stamp that keys them.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, store: TileStore | None = None) -> None:
        self.max_bytes = max_bytes
        self.store = store
        self._tiles: OrderedDict[TileKey, bytes] = OrderedDict()
        self._bytes = 0
        self._bounds: OrderedDict[tuple[str, str, int | None, str], Bounds | None] = OrderedDict()
        self._lock = threading.Lock()

    def bounds(self, session: Session, source: TileSource) -> Bounds | None:
        """``layer_bounds`` of the source, read once per source stamp (a few dozen kept)."""
        key = (source.database, source.layer.name, source.version_id, source.stamp)
        with self._lock:
            if key in self._bounds:
                self._bounds.move_to_end(key)
                return self._bounds[key]
        bounds = layer_bounds(session, source)
        with self._lock:
            self._bounds[key] = bounds
            while len(self._bounds) > 64:
                self._bounds.popitem(last=False)
        return bounds

    def get(self, key: TileKey) -> bytes | None:
        with self._lock:
            data = self._tiles.get(key)
            if data is not None:
                self._tiles.move_to_end(key)
                return data
        if self.store is not None:
            data = self.store.get(key)
            if data is not None:
                self._remember(key, data)
        return data

    def put(self, key: TileKey, data: bytes) -> None:
        if self.store is not None:
            self.store.put(key, data)
        self._remember(key, data)

    def _remember(self, key: TileKey, data: bytes) -> None:
        with self._lock:
            old = self._tiles.pop(key, None)
            self._bytes -= len(old) + ENTRY_OVERHEAD if old is not None else 0
            self._tiles[key] = data
            self._bytes += len(data) + ENTRY_OVERHEAD
            while self._bytes > self.max_bytes and len(self._tiles) > 1:
                _, dropped = self._tiles.popitem(last=False)
                self._bytes -= len(dropped) + ENTRY_OVERHEAD

    def clear(self) -> None:
        with self._lock:
            self._tiles.clear()
            self._bounds.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._tiles)


# --- seeding --------------------------------------------------------------------------------

# The area layers a page shows first; compounds are drawn from zoom 13 only.
SEED_LAYERS = ("districts", "subdistricts", "communities", "grids")


def tiles_covering(bounds: tuple[float, float, float, float], z: int) -> Iterator[Tile]:
    """The tiles of zoom ``z`` that meet a lon/lat box."""
    minx, miny, maxx, maxy = bounds
    n = 2**z

    def column(lon: float) -> int:
        return min(n - 1, max(0, int((lon + 180) / 360 * n)))

    def row(lat: float) -> int:
        lat = max(-85.0511, min(85.0511, lat))
        return min(n - 1, max(0, int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)))

    for x in range(column(minx), column(maxx) + 1):
        for y in range(row(maxy), row(miny) + 1):
            yield Tile(z, x, y)


def seed_tiles(
    session: Session, cache: TileCache, on: date, max_zoom: int, crs: str = "wgs84",
    layers: tuple[str, ...] = SEED_LAYERS, progress: Callable[[str], None] | None = None,
) -> int:
    """Draw every tile up to ``max_zoom`` over each layer's extent into ``cache``; returns
    how many were drawn (tiles already cached are skipped)."""
    drawn = 0
    for name in layers:
        source = tile_source(session, LAYERS[name], on)
        bounds = layer_bounds(session, source)
        if bounds is None:
            continue
        for z in range(max_zoom + 1):
            for tile in tiles_covering(bounds, z):
                key = cache_key(source, tile, crs)
                if cache.get(key) is None:
                    cache.put(key, render_tile(session, source, tile, crs))
                    drawn += 1
        if progress:
            progress(f"tiles of {name} drawn to zoom {max_zoom}")
    return drawn
