"""Grid coverage check: grids should tile their community, with no overlaps or gaps.

Real grid layers often break this (DOMAIN.md), so the importer reports each fault with
its geometry instead of refusing the layer.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

# Metres per degree of latitude; good to 0.5 % anywhere, plenty for a sliver threshold.
_M_PER_DEG = 111_195.0


@dataclass(frozen=True)
class Cell:
    code: str
    parent_code: str | None
    geom: BaseGeometry


@dataclass(frozen=True)
class Fault:
    """One coverage fault. ``kind`` is 'overlap', 'gap' or 'outside'."""

    kind: str
    community_code: str
    grid_codes: tuple[str, ...]
    area_m2: float
    geom: BaseGeometry

    def describe(self) -> str:
        grids = ", ".join(self.grid_codes)
        where = f"community {self.community_code}"
        if self.kind == "overlap":
            return f"overlap of {self.area_m2:,.0f} m² between grids {grids} in {where}"
        if self.kind == "gap":
            return f"gap of {self.area_m2:,.0f} m² in {where} covered by no grid"
        return f"grid {grids} extends {self.area_m2:,.0f} m² outside {where}"


def area_m2(geom: BaseGeometry) -> float:
    """Approximate area in square metres of a lon/lat geometry (local equirectangular)."""
    if geom.is_empty:
        return 0.0
    lat0 = shapely.centroid(geom).y
    scale = _M_PER_DEG * _M_PER_DEG * math.cos(math.radians(lat0))
    return float(shapely.area(geom)) * scale


def check_coverage(
    communities: dict[str, BaseGeometry], grids: Iterable[Cell], min_area_m2: float = 1.0
) -> list[Fault]:
    """Overlaps and gaps between the grids of each community, and grids outside it.

    Faults smaller than ``min_area_m2`` are floating-point slivers from clipping and are
    not reported. Grids whose community is unknown are skipped: the importer reports a
    missing parent separately.
    """
    by_parent: dict[str, list[Cell]] = defaultdict(list)
    for cell in grids:
        if cell.parent_code in communities:
            by_parent[cell.parent_code].append(cell)
    faults: list[Fault] = []
    for code in sorted(by_parent):
        faults.extend(_community_faults(code, communities[code], by_parent[code], min_area_m2))
    return faults


def _community_faults(
    code: str, community: BaseGeometry, cells: list[Cell], min_area_m2: float
) -> list[Fault]:
    faults: list[Fault] = []
    geoms = np.array([cell.geom for cell in cells], dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    for i, j in zip(left, right, strict=True):
        if i >= j:
            continue  # each unordered pair once, and no self-pairs
        shared = _areal(shapely.intersection(geoms[i], geoms[j]))
        if area_m2(shared) >= min_area_m2:
            pair = tuple(sorted((cells[i].code, cells[j].code)))
            faults.append(Fault("overlap", code, pair, area_m2(shared), shared))
    covered = shapely.union_all(geoms)
    for gap in shapely.get_parts(_areal(shapely.difference(community, covered))):
        if area_m2(gap) >= min_area_m2:
            faults.append(Fault("gap", code, (), area_m2(gap), gap))
    for cell in cells:
        outside = _areal(shapely.difference(cell.geom, community))
        if area_m2(outside) >= min_area_m2:
            faults.append(Fault("outside", code, (cell.code,), area_m2(outside), outside))
    return faults


def _areal(geom: BaseGeometry) -> BaseGeometry:
    """Only the polygonal part: shared edges and vertices are not overlaps."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()
