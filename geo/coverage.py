"""Grid coverage check: grids should tile their community, with no overlaps or gaps.

Real grid layers often break this (DOMAIN.md), so the importer reports each fault with
its geometry instead of refusing the layer. Overlaps are looked for across the whole
layer, whatever the grids' parents; gaps and grids outside their community need the
communities (and each grid's parent). What could not be checked is said, never passed
over: a layer of grids without parents gets no all-clear.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

# Metres per degree of latitude; good to 0.5 % anywhere, plenty for a sliver threshold.
_M_PER_DEG = 111_195.0
# Gaps are cut on a 1e-9° (0.1 mm) grid: GEOS's floating overlay, given a community and the
# union of its neighbouring grids in the demo city, lost the whole intersection and called
# the community one gap; snap-rounding is robust, and 0.1 mm is far below any fault.
_GAP_GRID_DEGREES = 1e-9


@dataclass(frozen=True)
class Cell:
    code: str
    parent_code: str | None
    geom: BaseGeometry


@dataclass(frozen=True)
class Fault:
    """One coverage fault. ``kind`` is 'overlap', 'gap' or 'outside'.

    ``community_code`` is None for an overlap between grids of different (or no) parents.
    """

    kind: str
    community_code: str | None
    grid_codes: tuple[str, ...]
    area_m2: float
    geom: BaseGeometry

    def describe(self) -> str:
        grids = ", ".join(self.grid_codes)
        where = f"community {self.community_code}"
        if self.kind == "overlap":
            within = f" in {where}" if self.community_code else ""
            return f"overlap of {self.area_m2:,.0f} m² between grids {grids}{within}"
        if self.kind == "gap":
            return f"gap of {self.area_m2:,.0f} m² in {where} covered by no grid"
        return f"grid {grids} extends {self.area_m2:,.0f} m² outside {where}"


ALL_CLEAR = "coverage: grids tile their communities (no overlaps, gaps or grids outside)"
_EXAMPLES = 5  # grid codes named in a message; the report file has them all


@dataclass(frozen=True)
class Coverage:
    """The faults found, and which checks could not be made."""

    faults: list[Fault]
    grids: int
    communities_loaded: bool
    unparented: tuple[str, ...]  # grids whose parent names no community of the layer

    @property
    def complete(self) -> bool:
        """Every check was made for every grid."""
        return self.grids > 0 and self.communities_loaded and not self.unparented

    def unchecked(self) -> list[str]:
        """One sentence per check that could not be made, saying how to make it possible."""
        if not self.grids:
            return ["coverage: no grid layer is in force, so nothing was checked"]
        if not self.communities_loaded:
            return [
                (
                    "coverage: gaps and grids outside their community were not checked: no "
                    "community layer is in force (import communities, then run gridmap check grids)"
                )
            ]
        if not self.unparented:
            return []
        count, examples = len(self.unparented), ", ".join(self.unparented[:_EXAMPLES])
        more = ", ..." if count > _EXAMPLES else ""
        return [
            (
                f"coverage: {count:,} of {self.grids:,} grids have no parent community in the "
                f"layer in force ({examples}{more}): whether they lie outside their community was "
                "not checked (import the grids with --parent-field, or --parent-field :spatial)"
            )
        ]

    def summary(self) -> list[str]:
        """What a person reads after an import or a check, when no fault was found or beside them."""
        if self.complete and not self.faults:
            return [ALL_CLEAR]
        lines = []
        if self.grids and not self.faults:
            checked = "no overlaps between grids"
            if self.communities_loaded:
                checked += " and no gaps in the communities"
            lines.append(f"coverage: {checked}")
        return lines + self.unchecked()

    def as_dict(self) -> dict[str, object]:
        return {
            "complete": self.complete,
            "grids": self.grids,
            "communities_loaded": self.communities_loaded,
            "grids_without_parent": list(self.unparented),
            "summary": self.summary(),
        }


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
    """Overlaps between grids, gaps in each community, and grids outside their community."""
    return check_coverage_report(communities, grids, min_area_m2).faults


def check_coverage_report(
    communities: dict[str, BaseGeometry] | None, grids: Iterable[Cell], min_area_m2: float = 1.0
) -> Coverage:
    """The coverage check, and what it could not check.

    ``communities`` is None when no community layer is loaded. Faults smaller than
    ``min_area_m2`` are floating-point slivers from clipping and are not reported.
    """
    cells = list(grids)
    known = communities or {}
    faults = _overlaps(cells, min_area_m2)
    if communities is not None and cells:  # with no grid layer there is nothing to check
        faults += _gaps(known, cells, min_area_m2)
        faults += _outside(known, cells, min_area_m2)
    unparented = tuple(sorted(c.code for c in cells if c.parent_code not in known))
    return Coverage(faults, len(cells), communities is not None, unparented)


def _overlaps(cells: list[Cell], min_area_m2: float) -> list[Fault]:
    """Every pair of grids sharing an area, whatever their parents."""
    if not cells:
        return []
    geoms = np.array([cell.geom for cell in cells], dtype=object)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pair = left < right  # each unordered pair once, and no self-pairs
    left, right = left[pair], right[pair]
    shared = shapely.intersection(geoms[left], geoms[right])
    # Neighbours that only touch share a line or a point, of no area: skip them early.
    real = shapely.area(shared) > 0
    faults = []
    for i, j, geom in zip(left[real], right[real], shared[real], strict=True):
        overlap = _areal(geom)
        if area_m2(overlap) >= min_area_m2:
            a, b = cells[i], cells[j]
            community = a.parent_code if a.parent_code == b.parent_code else None
            codes = tuple(sorted((a.code, b.code)))
            faults.append(Fault("overlap", community, codes, area_m2(overlap), overlap))
    return sorted(faults, key=lambda f: (f.community_code or "", f.grid_codes))


def _gaps(
    communities: dict[str, BaseGeometry], cells: list[Cell], min_area_m2: float
) -> list[Fault]:
    """Parts of each community that no grid covers, whatever the grids' parents."""
    geoms = np.array([cell.geom for cell in cells], dtype=object)
    tree = shapely.STRtree(geoms)
    faults = []
    for code in sorted(communities):
        community = communities[code]
        covered = shapely.union_all(geoms[tree.query(community, predicate="intersects")])
        uncovered = shapely.difference(community, covered, grid_size=_GAP_GRID_DEGREES)
        for gap in shapely.get_parts(_areal(uncovered)):
            if area_m2(gap) >= min_area_m2:
                faults.append(Fault("gap", code, (), area_m2(gap), gap))
    return faults


def _outside(
    communities: dict[str, BaseGeometry], cells: list[Cell], min_area_m2: float
) -> list[Fault]:
    """The part of each grid beyond its own community (grids with a known parent only)."""
    faults = []
    for cell in sorted(cells, key=lambda c: (c.parent_code or "", c.code)):
        community = communities.get(cell.parent_code or "")
        if community is None:
            continue
        outside = _areal(shapely.difference(cell.geom, community))
        if area_m2(outside) >= min_area_m2:
            faults.append(
                Fault("outside", cell.parent_code, (cell.code,), area_m2(outside), outside)
            )
    return faults


def _areal(geom: BaseGeometry) -> BaseGeometry:
    """Only the polygonal part: shared edges and vertices are not overlaps."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()
