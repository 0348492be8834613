"""The service area: where the city takes reports, and how far outside it a point is.

A report far from the city (a point in Beijing sent to Wuzhou, a test message at 0,0) is
a mistake to refuse, not a case to route to whoever comes first. A point a little outside
(a river bank, a new estate not yet in any grid) is a real case for a command centre.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
import shapely.ops
from pyproj import Geod

from geo.area_index import metres_per_degree

# Distances up to this are measured exactly (in the tangent plane at the point, as
# snapping is); beyond it a geodesic to the nearest vertex in degrees is close enough to
# say "about N km", and no margin is that wide.
EXACT_WITHIN_M = 20_000.0
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class ServiceArea:
    """A WGS84 (multi)polygon and what it was made from (said in refusals)."""

    geom: Any
    source: str

    def __post_init__(self) -> None:
        shapely.prepare(self.geom)  # point-in-area tests on every report

    @classmethod
    def from_polygons(cls, polygons: list[Any], source: str) -> ServiceArea:
        return cls(
            shapely.union_all(shapely.make_valid(np.asarray(polygons, dtype=object))), source
        )

    @classmethod
    def from_bbox(cls, box: tuple[float, float, float, float], source: str) -> ServiceArea:
        return cls(shapely.box(*box), source)

    def covers(self, lon: float, lat: float) -> bool:
        return bool(shapely.intersects_xy(self.geom, lon, lat))

    def distance_m(self, lon: float, lat: float) -> float:
        """Metres from the point to the area (0 inside): exact near it, approximate far away."""
        if self.covers(lon, lat):
            return 0.0
        kx, ky = (float(v[0]) for v in metres_per_degree(np.array([lat])))
        reach = EXACT_WITHIN_M * 1.01
        near = shapely.clip_by_rect(
            self.geom, lon - reach / kx, lat - reach / ky, lon + reach / kx, lat + reach / ky
        )
        if not near.is_empty:
            local = shapely.transform(
                near, lambda c: np.column_stack(((c[:, 0] - lon) * kx, (c[:, 1] - lat) * ky))
            )
            exact = float(shapely.distance(local, shapely.Point(0, 0)))
            if exact <= EXACT_WITHIN_M:
                return exact
        # Anything outside the box is farther than EXACT_WITHIN_M, which is all a caller needs.
        nearest = shapely.ops.nearest_points(self.geom, shapely.Point(lon, lat))[0]
        return float(_GEOD.inv(lon, lat, nearest.x, nearest.y)[2])
