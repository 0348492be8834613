"""Fast point-in-polygon for one layer of areas (grids, communities, compounds, ...).

Answers, for many points at once, which area covers each point and whether the point
lies on that area's boundary. Ties (a point on a shared edge or vertex, or in an overlap
of bad data) go to the area with the smallest code, so every code path agrees; a point
in an overlap is flagged as such.

Why a raster in front of the exact test: almost every point lies well inside one area.
A fine raster over the layer marks every cell that an area boundary passes through; the
remaining cells form connected regions that each lie entirely inside one area (or in
none), so a point in such a cell is answered by a table lookup. Only points in boundary
cells, typically a few percent, go through the exact GEOS predicate. This is what makes
bulk assignment several times faster than a spatial join (benchmarks/assign.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import shapely
from scipy import ndimage
from shapely.geometry.base import BaseGeometry

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

NO_AREA = -1
_EXACT = -2  # raster cell that a boundary crosses: test points there exactly
# Cells per average area: ~24 x 24 keeps the boundary cells to a few percent of the area.
_CELLS_PER_AREA = 1200
_MAX_CELLS = 16_000_000  # 64 MB of int32 at most
# A sample this close to a cell edge (in cells) marks the neighbouring cell too, so that
# floating-point rounding can never leave a boundary out of the cells it touches.
_EPS = 1e-6
_SHORT = 3  # a segment whose cell box is at most this many cells each way is "short"

# WGS84 ellipsoid, for metric distances near a point (snapping).
_A = 6_378_137.0
_E2 = 0.00669437999014


class AreaIndex:
    """Which area covers each point; ``codes`` and ``geoms`` in any order."""

    def __init__(self, codes: Sequence[str], geoms: Sequence[BaseGeometry]) -> None:
        if len(codes) != len(geoms):
            raise ValueError(f"{len(codes)} codes for {len(geoms)} geometries")
        order = np.argsort(np.asarray(codes, dtype=object).astype(str), kind="stable")
        # Sorted by code: the smallest index is the smallest code, which is the tie-break.
        self.codes: npt.NDArray[np.str_] = np.asarray(codes, dtype=object)[order].astype(str)
        self.geoms = np.asarray(list(geoms), dtype=object)[order]
        shapely.prepare(self.geoms)
        self.tree = shapely.STRtree(self.geoms)
        self._build_raster()

    def __len__(self) -> int:
        return len(self.codes)

    def __setstate__(self, state: dict[str, object]) -> None:
        # Prepared geometries do not survive pickling (a persisted or shipped index).
        self.__dict__.update(state)
        shapely.prepare(self.geoms)

    # --- the raster ------------------------------------------------------------------------

    def _build_raster(self) -> None:
        if len(self.geoms) == 0:
            self.cell, self.origin, self.shape = 1.0, (0.0, 0.0), (1, 1)
            self.lookup = np.full((1, 1), NO_AREA, dtype=np.int32)
            return
        minx, miny, maxx, maxy = shapely.total_bounds(self.geoms)
        width, height = max(maxx - minx, 1e-9), max(maxy - miny, 1e-9)
        cells = min(_MAX_CELLS, max(1024, _CELLS_PER_AREA * len(self.geoms)))
        self.cell = float(np.sqrt(width * height / cells))
        self.origin = (minx - self.cell, miny - self.cell)  # one cell of margin on each side
        self.shape = (int(height / self.cell) + 3, int(width / self.cell) + 3)
        boundary = self._boundary_cells()
        regions, count = ndimage.label(~boundary)  # 4-connected: a diagonal cannot leak
        owner = self._region_owners(regions, count)
        # Where areas overlap (faulty data) every point goes to the exact test, which also
        # tells that the point lies in an overlap; such regions are rare.
        self.lookup = np.where(boundary | (owner[regions] == _EXACT), _EXACT, owner[regions]).astype(np.int32)

    def _to_cells(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        return (x - self.origin[0]) / self.cell, (y - self.origin[1]) / self.cell

    def _boundary_cells(self) -> npt.NDArray[np.bool_]:
        """Every cell whose closed square meets an area boundary (a few extra are harmless).

        Marking a cell too many only sends its points to the exact test; missing one would
        give a wrong answer. So short segments (the vast majority) mark their whole cell
        bounding box, a cheap superset, and only long ones are traversed cell by cell.
        """
        lines = shapely.get_parts(shapely.boundary(self.geoms))
        coords, line = shapely.get_coordinates(lines, return_index=True)
        u, v = self._to_cells(coords[:, 0], coords[:, 1])
        same = line[1:] == line[:-1]  # consecutive vertices of one ring form a segment
        au, av, bu, bv = u[:-1][same], v[:-1][same], u[1:][same], v[1:][same]
        marked = np.zeros(self.shape, dtype=bool)
        col0 = np.floor(np.minimum(au, bu) - _EPS).astype(np.int64)
        row0 = np.floor(np.minimum(av, bv) - _EPS).astype(np.int64)
        width = np.floor(np.maximum(au, bu) + _EPS).astype(np.int64) - col0 + 1
        height = np.floor(np.maximum(av, bv) + _EPS).astype(np.int64) - row0 + 1
        short = (width <= _SHORT) & (height <= _SHORT)
        for dr in range(_SHORT):
            for dc in range(_SHORT):
                take = short & (dr < height) & (dc < width)
                self._mark(marked, row0[take] + dr, col0[take] + dc)
        long = ~short
        self._mark_traversed(marked, au[long], av[long], bu[long], bv[long])
        return marked

    def _mark(self, marked: npt.NDArray[np.bool_], rows: IntArray, cols: IntArray) -> None:
        rows = np.clip(rows, 0, self.shape[0] - 1)
        cols = np.clip(cols, 0, self.shape[1] - 1)
        marked[rows, cols] = True

    def _mark_traversed(
        self, marked: npt.NDArray[np.bool_], au: FloatArray, av: FloatArray, bu: FloatArray, bv: FloatArray
    ) -> None:
        """Cells along long segments.

        A segment enters every cell it visits, except its first, through a grid line. So
        marking the cells on both sides of every crossing (the point nudged by ±eps on
        each axis), plus the cells of both end points, marks every cell it touches; no
        sorting of crossings is needed.
        """
        ids = [np.arange(len(au)), np.arange(len(au))]
        ts = [np.zeros_like(au), np.ones_like(au)]
        for a, b in ((au, bu), (av, bv)):
            crossing_ids, t = _grid_crossings(a, b)
            ids.append(crossing_ids)
            ts.append(t)
        seg, t = np.concatenate(ids), np.concatenate(ts)
        su = au[seg] + t * (bu[seg] - au[seg])
        sv = av[seg] + t * (bv[seg] - av[seg])
        for du in (-_EPS, _EPS):
            for dv in (-_EPS, _EPS):
                self._mark(marked, np.floor(sv + dv).astype(np.int64), np.floor(su + du).astype(np.int64))

    def _region_owners(self, regions: npt.NDArray[np.int32], count: int) -> IntArray:
        """The area covering each boundary-free region (region 0 is the boundary cells);
        _EXACT for a region covered by two or more areas."""
        owner = np.full(count + 1, NO_AREA, dtype=np.int64)
        if count == 0:
            return owner
        # Any one cell of each region will do: the first one in the top row of its box.
        rows = np.empty(count, dtype=np.int64)
        cols = np.empty(count, dtype=np.int64)
        for i, (row_slice, col_slice) in enumerate(ndimage.find_objects(regions)):
            top = regions[row_slice.start, col_slice]
            rows[i] = row_slice.start
            cols[i] = col_slice.start + int(np.argmax(top == i + 1))
        keep = np.arange(1, count + 1)
        x = np.asarray(self.origin[0] + (cols + 0.5) * self.cell, dtype=np.float64)
        y = np.asarray(self.origin[1] + (rows + 0.5) * self.cell, dtype=np.float64)
        found, _, overlap = self._exact(x, y)
        owner[keep] = np.where(overlap, _EXACT, found)
        return owner

    # --- queries ---------------------------------------------------------------------------

    def _exact(
        self, x: FloatArray, y: FloatArray
    ) -> tuple[IntArray, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """GEOS covers test, smallest index on ties; whether the point is on that area's
        boundary; and whether it lies in an overlap (covered by two or more areas and
        inside at least one: an edge that areas merely share is no overlap)."""
        n = len(x)
        result = np.full(n, len(self.codes), dtype=np.int64)
        on_edge = np.zeros(n, dtype=bool)
        overlap = np.zeros(n, dtype=bool)
        if n and len(self.codes):
            points, areas = self.tree.query(shapely.points(x, y), predicate="intersects")
            np.minimum.at(result, points, areas)
            inside = shapely.contains_xy(self.geoms[areas], x[points], y[points])
            covering = np.bincount(points, minlength=n)
            interior = np.bincount(points, weights=inside, minlength=n)
            overlap = (covering >= 2) & (interior >= 1)
            chosen = areas == result[points]
            on_edge[points[chosen]] = ~inside[chosen]
        result[result == len(self.codes)] = NO_AREA
        return result, on_edge, overlap

    def cover(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        """Index of the covering area (NO_AREA if none) and whether the point is on its boundary."""
        found, on_edge, _ = self.cover_flagged(x, y)
        return found, on_edge

    def cover_flagged(
        self, x: npt.ArrayLike, y: npt.ArrayLike
    ) -> tuple[IntArray, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """As ``cover``, and whether each point lies where areas overlap."""
        x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
        u, v = self._to_cells(x, y)
        rows, cols = np.floor(v), np.floor(u)
        inside = (rows >= 0) & (rows < self.shape[0]) & (cols >= 0) & (cols < self.shape[1])
        inside &= np.isfinite(x) & np.isfinite(y)
        found = np.full(len(x), NO_AREA, dtype=np.int64)
        found[inside] = self.lookup[rows[inside].astype(np.int64), cols[inside].astype(np.int64)]
        on_edge = np.zeros(len(x), dtype=bool)
        overlap = np.zeros(len(x), dtype=bool)
        exact = found == _EXACT
        found[exact], on_edge[exact], overlap[exact] = self._exact(x[exact], y[exact])
        return found, on_edge, overlap

    def nearest_within(
        self, x: npt.ArrayLike, y: npt.ArrayLike, metres: float
    ) -> tuple[IntArray, FloatArray]:
        """The nearest area within ``metres`` of each point, and the distance (NaN if none).

        Distances are measured on the WGS84 ellipsoid's local tangent plane at the point,
        good to a millimetre or so at snapping range.
        """
        x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
        best = np.full(len(x), NO_AREA, dtype=np.int64)
        dist = np.full(len(x), np.nan)
        if not len(x) or not len(self.codes) or metres <= 0:
            return best, dist
        kx, ky = metres_per_degree(y)
        boxes = shapely.box(x - metres / kx, y - metres / ky, x + metres / kx, y + metres / ky)
        points, areas = self.tree.query(boxes, predicate="intersects")
        if not len(points):
            return best, dist
        candidates = self.geoms[areas]
        _, owner = shapely.get_coordinates(candidates, return_index=True)
        px, py, sx, sy = x[points][owner], y[points][owner], kx[points][owner], ky[points][owner]
        local = shapely.transform(
            candidates, lambda c: np.column_stack(((c[:, 0] - px) * sx, (c[:, 1] - py) * sy))
        )
        d = shapely.distance(local, shapely.Point(0, 0))
        # Nearest first, then the smallest code among equally near areas.
        order = np.lexsort((areas, d, points))
        first = np.ones(len(order), dtype=bool)
        first[1:] = points[order][1:] != points[order][:-1]
        chosen = order[first]
        near = d[chosen] <= metres
        best[points[chosen][near]] = areas[chosen][near]
        dist[points[chosen][near]] = d[chosen][near]
        return best, dist


def _grid_crossings(a: FloatArray, b: FloatArray) -> tuple[IntArray, FloatArray]:
    """Segment ids and parameters t where segments a->b cross integer grid lines."""
    lo, hi = np.floor(np.minimum(a, b)), np.floor(np.maximum(a, b))
    count = (hi - lo).astype(np.int64)
    ids = np.repeat(np.arange(len(a)), count)
    if not len(ids):
        return ids, np.zeros(0)
    offsets = np.cumsum(count) - count
    k = lo[ids] + 1 + (np.arange(len(ids)) - offsets[ids])
    return ids, (k - a[ids]) / (b[ids] - a[ids])


def metres_per_degree(lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Metres per degree of longitude and latitude at each latitude (WGS84)."""
    phi = np.radians(lat)
    w = np.sqrt(1 - _E2 * np.sin(phi) ** 2)
    meridional = _A * (1 - _E2) / w**3
    prime_vertical = _A / w
    return prime_vertical * np.cos(phi) * np.pi / 180, meridional * np.pi / 180
