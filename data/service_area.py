"""The service area in force: from the setting, or the union of the top area layer loaded.

Built once per database and layer content, and kept in memory: the union of a city's
districts takes a moment, and every report is checked against it. The key is checked on
each call with single-row reads (the database identity, the version in force and its
content stamp), so a re-imported district layer takes effect with the next report.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import shapely.geometry
from sqlalchemy.orm import Session

from data import repository as repo
from data.settings import Settings
from data.stamps import database_identity, version_stamp
from geo.assign import CHAIN
from geo.service_area import ServiceArea

# From the widest level down: the area is the district layer, else the widest one loaded.
LEVELS = tuple(reversed(CHAIN))
_cache: dict[tuple[Any, ...], ServiceArea] = {}
_lock = threading.Lock()


class ServiceAreaSettingInvalid(ValueError):
    """GRIDMAP_SERVICE_AREA is neither a bounding box nor a readable GeoJSON file."""


def service_area(session: Session, settings: Settings, on: dt.date) -> ServiceArea | None:
    """The area reports are taken in on ``on``; None when nothing is loaded to define it."""
    if settings.service_area:
        return configured_area(settings.service_area)
    for level in LEVELS:
        version = repo.version_in_force(session, level, on)
        if version is not None:
            break
    else:
        return None
    key = (database_identity(session), version.id, version_stamp(session, version))
    with _lock:
        found = _cache.get(key)
        if found is None:
            source = f"the {level} layer in force (effective {version.effective_from})"
            found = ServiceArea.from_polygons(
                [a.geom for a in repo.areas(session, version.id)], source
            )
            if len(_cache) > 8:  # a few databases or dates at once is plenty
                _cache.clear()
            _cache[key] = found
        return found


def configured_area(value: str) -> ServiceArea:
    """GRIDMAP_SERVICE_AREA: "minlon,minlat,maxlon,maxlat" (WGS84) or a GeoJSON file's path."""
    parts = value.split(",")
    if len(parts) == 4:
        try:
            box = tuple(float(p) for p in parts)
        except ValueError:
            box = ()
        if len(box) == 4 and box[0] < box[2] and box[1] < box[3]:
            return _cached(
                ("bbox", box), lambda: ServiceArea.from_bbox(box, f"GRIDMAP_SERVICE_AREA {value}")
            )  # type: ignore[arg-type]
    path = Path(value)
    try:
        stat = path.stat()
    except OSError:
        raise ServiceAreaSettingInvalid(
            f"GRIDMAP_SERVICE_AREA={value!r} is neither minlon,minlat,maxlon,maxlat nor a file that exists"
        ) from None
    return _cached(
        ("file", str(path.resolve()), stat.st_mtime_ns, stat.st_size), lambda: _read_geojson(path)
    )


def _cached(key: tuple[Any, ...], build: Any) -> ServiceArea:
    with _lock:
        if key not in _cache:
            _cache[key] = build()
        return _cache[key]


def _read_geojson(path: Path) -> ServiceArea:
    """Every polygon of a GeoJSON file (a geometry, a Feature or a FeatureCollection), in WGS84."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ServiceAreaSettingInvalid(
            f"GRIDMAP_SERVICE_AREA file {path}: not readable GeoJSON ({exc})"
        ) from None
    items = data.get("features", [data]) if isinstance(data, dict) else []
    geoms = [shapely.geometry.shape(f.get("geometry", f)) for f in items if isinstance(f, dict)]
    polygons = [g for g in geoms if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polygons:
        raise ServiceAreaSettingInvalid(f"GRIDMAP_SERVICE_AREA file {path} holds no polygon")
    return ServiceArea.from_polygons(polygons, f"GRIDMAP_SERVICE_AREA {path.name}")
