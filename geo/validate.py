"""Checks on incoming features: geometry validity, coordinate ranges, swapped axes.

Pure shapely/numpy so that importers, the API and tests share one set of rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True)
class Problem:
    """Something wrong with one feature; ``index`` is its 0-based position in the file."""

    index: int
    message: str
    label: str = ""

    def describe(self) -> str:
        if self.index < 0:  # about the file or the layer as a whole
            return self.message
        who = f"feature #{self.index + 1}" + (f" ({self.label})" if self.label else "")
        return f"{who}: {self.message}"


@dataclass(frozen=True)
class Repair:
    """How one invalid polygon was made valid."""

    index: int
    reason: str
    result: str
    label: str = ""

    def describe(self) -> str:
        who = f"feature #{self.index + 1}" + (f" ({self.label})" if self.label else "")
        return f"{who}: repaired {self.reason} -> {self.result}"


def coordinate_problem(geom: BaseGeometry) -> str | None:
    """Why a WGS84 geometry's coordinates cannot be right, or None.

    A longitude in [-90, 90] paired with a "latitude" beyond ±90 is the tell-tale of
    swapped axes (e.g. 23.5, 111.3 for Wuzhou), so it gets its own message.
    """
    coords = shapely.get_coordinates(geom)
    if coords.size == 0:
        return None
    if not np.isfinite(coords).all():
        return "coordinates are not finite numbers (is the CRS right?)"
    lon, lat = coords[:, 0], coords[:, 1]
    lon_ok = (np.abs(lon) <= 180).all()
    lat_ok = (np.abs(lat) <= 90).all()
    if lon_ok and lat_ok:
        return None
    if (np.abs(lat) <= 180).all() and (np.abs(lon) <= 90).all():
        return (
            f"latitude {_worst(lat, 90):.6g} is out of range; longitude and latitude "
            "appear to be swapped (x must be longitude, y latitude)"
        )
    if not lon_ok:
        return f"longitude {_worst(lon, 180):.6g} is out of range [-180, 180] (wrong CRS?)"
    return f"latitude {_worst(lat, 90):.6g} is out of range [-90, 90] (wrong CRS?)"


def _worst(values: np.ndarray, limit: float) -> float:
    return float(values[np.argmax(np.abs(values) - limit)])


def polygon_problem(geom: BaseGeometry | None) -> str | None:
    """Why a geometry is not a usable (Multi)Polygon, or None."""
    if geom is None or geom.is_empty:
        return "has no geometry"
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        return f"is a {geom.geom_type}, expected a Polygon or MultiPolygon"
    if not geom.is_valid:
        return f"invalid polygon: {shapely.is_valid_reason(geom)}"
    return None


def repair_polygon(geom: BaseGeometry) -> BaseGeometry:
    """A valid MultiPolygon from an invalid polygon, keeping only its areal parts.

    make_valid can return lines or points beside the polygons (collapsed spikes); a
    boundary layer has no use for them.
    """
    fixed = shapely.make_valid(geom)
    return to_multipolygon(fixed)


def to_multipolygon(geom: BaseGeometry) -> BaseGeometry:
    """The polygonal parts of any geometry as one MultiPolygon (possibly empty)."""
    parts = [
        part
        for part in shapely.get_parts(geom)
        if part.geom_type in ("Polygon", "MultiPolygon") and not part.is_empty
    ]
    polygons: list[shapely.Polygon] = []
    for part in parts:
        polygons.extend(shapely.get_parts(part) if part.geom_type == "MultiPolygon" else [part])
    return shapely.MultiPolygon(polygons)


def point_or_polygon_problem(geom: BaseGeometry | None) -> str | None:
    """Why a facility geometry is unusable, or None. Facilities may be points or polygons."""
    if geom is None or geom.is_empty:
        return "has no geometry"
    if geom.geom_type == "Point":
        return None
    return polygon_problem(geom)
